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
