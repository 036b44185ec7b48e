"""run_job's own record of a run: ops.run_log."""

from __future__ import annotations

import time
from datetime import date

import pytest
from pyspark.sql import functions as F

from lakehouse.runtime import Job, JobError, JobResult, last_success, run_job
from lakehouse.tables import Tables


@pytest.fixture()
def shanghai_driver(monkeypatch):
    """The Python process in Asia/Shanghai, as a driver in China often is (the JVM's session
    time zone stays UTC)."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_run_times_are_the_real_instants_whatever_the_drivers_time_zone(
    spark, settings_for, shanghai_driver
):
    """Before: now(UTC) stripped of its zone was read by PySpark as Shanghai local time, so the
    run log (and bronze's _ingest_time, a gate's checked_at) said 8 hours too early."""
    settings = settings_for()
    job = Job("ops.noop", "ops", "does nothing", lambda ctx: JobResult())
    before = time.time()
    run_job(job, settings, spark, date(2026, 3, 1))
    after = time.time()
    row = (
        Tables(spark, settings.warehouse)
        .read("ops", "run_log")
        .select(F.unix_micros("start_time").alias("start"), F.unix_micros("end_time").alias("end"))
        .first()
    )
    assert before - 1 <= row["start"] / 1e6 <= row["end"] / 1e6 <= after + 1


def test_last_success_is_the_latest_earlier_day_the_job_succeeded(spark, settings_for):
    settings = settings_for()
    tables = Tables(spark, settings.warehouse)
    assert last_success(tables, "ops.flaky", date(2026, 3, 9)) is None  # no run log yet

    def fails(ctx):
        raise JobError("down")

    ok = Job("ops.flaky", "ops", "succeeds", lambda ctx: JobResult())
    bad = Job("ops.flaky", "ops", "fails", fails)
    other = Job("ops.other", "ops", "another job", lambda ctx: JobResult())
    for job, day in ((ok, 1), (ok, 2), (other, 4), (ok, 6)):
        run_job(job, settings, spark, date(2026, 3, day))
    with pytest.raises(JobError, match="down"):
        run_job(bad, settings, spark, date(2026, 3, 3))
    assert last_success(tables, "ops.flaky", date(2026, 3, 5)) == date(2026, 3, 2)
    assert last_success(tables, "ops.flaky", date(2026, 3, 6)) == date(2026, 3, 2)
    assert last_success(tables, "ops.flaky", date(2026, 3, 7)) == date(2026, 3, 6)
    assert last_success(tables, "ops.flaky", date(2026, 3, 1)) is None


def test_every_commit_of_a_run_names_its_job_day_and_run_also_when_it_fails(spark, settings_for):
    """A job killed before its run-log row leaves its commits behind with nothing in
    ops.run_log to say whose they are; each commit says it itself (Delta's userMetadata), and
    the session's own setting is back once the job ends, failed or not."""
    import json

    from delta.tables import DeltaTable

    from lakehouse.runtime import COMMIT_TAG_CONF

    settings = settings_for()
    tables = Tables(spark, settings.warehouse)
    day = date(2026, 3, 1)

    def writes(ctx):
        ctx.tables.append(spark.range(1), "silver", "tagged")
        return JobResult()

    def writes_then_fails(ctx):
        writes(ctx)
        raise JobError("down")

    spark.conf.set(COMMIT_TAG_CONF, "the session's own")
    try:
        result = run_job(Job("silver.tagged", "silver", "writes", writes), settings, spark, day)
        with pytest.raises(JobError, match="down"):
            run_job(
                Job("silver.tagged", "silver", "fails", writes_then_fails), settings, spark, day
            )
        assert spark.conf.get(COMMIT_TAG_CONF) == "the session's own"
    finally:
        spark.conf.unset(COMMIT_TAG_CONF)
    history = DeltaTable.forPath(spark, tables.path("silver", "tagged")).history()
    tags = [json.loads(r.userMetadata) for r in history.orderBy("version").collect()]
    assert [(t["job"], t["run_date"]) for t in tags] == [("silver.tagged", "2026-03-01")] * 2
    assert tags[0]["run_id"] == result.details["run_id"] != tags[1]["run_id"]
    logged = tables.read("ops", "run_log").orderBy("start_time").collect()
    assert [r.run_id for r in logged] == [t["run_id"] for t in tags]
    run_log = DeltaTable.forPath(spark, tables.path("ops", "run_log")).history()
    assert {json.loads(r.userMetadata)["job"] for r in run_log.collect()} == {"silver.tagged"}
