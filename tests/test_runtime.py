"""run_job's own record of a run: ops.run_log."""

from __future__ import annotations

import time
from datetime import date

import pytest
from pyspark.sql import functions as F

from lakehouse.runtime import Job, JobResult, run_job
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
