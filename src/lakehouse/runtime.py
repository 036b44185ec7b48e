"""Jobs, their context, and the run log every run leaves behind."""

from __future__ import annotations

import json
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DateType,
    DoubleType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from lakehouse import faults
from lakehouse.config import Settings
from lakehouse.spark import session_conf, small_frame
from lakehouse.tables import Tables

RUN_LOG = ("ops", "run_log")
RUN_LOG_SCHEMA = StructType(
    [
        StructField("job", StringType(), False),
        StructField("run_date", DateType(), False),
        StructField("run_id", StringType(), False),
        StructField("env", StringType(), False),
        StructField("start_time", TimestampType(), False),
        StructField("end_time", TimestampType(), False),
        StructField("seconds", DoubleType(), False),
        StructField("status", StringType(), False),
        StructField("rows_read", LongType(), True),
        StructField("rows_written", LongType(), True),
        StructField("rows_quarantined", LongType(), True),
        StructField("versions", MapType(StringType(), LongType()), True),
        StructField("error", StringType(), True),
        StructField("details", StringType(), True),
    ]
)


class JobError(RuntimeError):
    """A job refused its input or configuration; the message is meant for the person running it.

    `partial`: what the job did before it failed (a JobResult), logged with the failure.
    """

    def __init__(self, message: str, partial: JobResult | None = None) -> None:
        super().__init__(message)
        self.partial = partial


@dataclass(frozen=True)
class JobContext:
    settings: Settings
    spark: SparkSession
    tables: Tables
    run_date: date
    run_id: str


@dataclass
class JobResult:
    rows_read: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    versions: dict[str, int] = field(default_factory=dict)
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    name: str
    layer: str
    description: str
    run: Callable[[JobContext], JobResult]
    depends_on: tuple[str, ...] = ()


def last_success(tables: Tables, job: str, before: date) -> date | None:
    """The latest run date before `before` on which `job` succeeded (ops.run_log), or None.

    Why: a job that takes only what is new since its last run (One ID) must catch up on a day
    whose run failed and was never rerun, not take only its own run date's share.
    """
    if not tables.exists(*RUN_LOG):
        return None
    latest = (
        tables.read(*RUN_LOG)
        .where(
            (F.col("job") == job)
            & (F.col("status") == "SUCCEEDED")
            & (F.col("run_date") < F.lit(before))
        )
        .agg(F.max("run_date"))
        .first()
    )
    return latest[0] if latest else None


def since_last_success(column: str, since: date | None, run_date: date) -> Column:
    """`column` (a date) after `since` (the last successful run; None: ever) up to `run_date`."""
    until = F.col(column) <= F.lit(run_date)
    return until if since is None else until & (F.col(column) > F.lit(since))


def new_run_id() -> str:
    return uuid.uuid4().hex


# Delta's commit metadata (DESCRIBE HISTORY's userMetadata), set for the whole of a job's run.
COMMIT_TAG_CONF = "spark.databricks.delta.commitInfo.userMetadata"


def commit_tag(job: str, run_date: date, run_id: str) -> str:
    """What every Delta commit of a job's run carries in its userMetadata (JSON)."""
    return json.dumps({"job": job, "run_date": run_date.isoformat(), "run_id": run_id})


@contextmanager
def tagged_commits(spark: SparkSession, tag: str) -> Iterator[None]:
    """Every Delta commit of this session carries `tag` until the block ends.

    Why: the commit itself then says which job and which day made it, also when the job was
    killed before its ops.run_log row was written; a later job can find "the table before
    this day's first run" in the table's history (gold.marts.common._dates_before_the_run).
    """
    with session_conf(spark, {COMMIT_TAG_CONF: tag}):
        yield


def run_job(job: Job, settings: Settings, spark: SparkSession, run_date: date) -> JobResult:
    """Run one job for one logical date and append its outcome to ops.run_log.

    A failure is logged with its error and re-raised, so callers decide the exit code. Every
    Delta commit of the run, its run-log row included, is tagged with `commit_tag`.
    """
    run_id = new_run_id()
    with tagged_commits(spark, commit_tag(job.name, run_date, run_id)):
        return _run_job(job, settings, spark, run_date, run_id)


def _run_job(
    job: Job, settings: Settings, spark: SparkSession, run_date: date, run_id: str
) -> JobResult:
    tables = Tables(spark, settings.warehouse)
    ctx = JobContext(settings, spark, tables, run_date, run_id)
    start = datetime.now(UTC)
    clock = time.monotonic()
    result: JobResult | None = None
    error: BaseException | None = None
    spark.sparkContext.setJobGroup(ctx.run_id, f"{job.name} {run_date}")
    faults.job_started(job.name)
    from lakehouse.quality.results import batched_results  # quality imports this module

    try:
        with batched_results():  # the job's gate results: one ops.dq_results commit
            result = job.run(ctx)
    except BaseException as exc:  # logged, then re-raised
        error = exc
    end = datetime.now(UTC)
    seconds = round(time.monotonic() - clock, 3)
    outcome = result or getattr(error, "partial", None) or JobResult()
    message = None
    if error is not None:
        message = f"{type(error).__name__}: {error}"
        if not isinstance(error, (JobError, FileNotFoundError, ValueError)):
            message += "\n" + "".join(traceback.format_exception(error))[-4000:]
    row = (
        job.name,
        run_date,
        ctx.run_id,
        settings.env,
        # Aware datetimes: PySpark reads a naive one as the driver's local time.
        start,
        end,
        seconds,
        "FAILED" if error else "SUCCEEDED",
        outcome.rows_read,
        outcome.rows_written,
        outcome.rows_quarantined,
        outcome.versions,
        message,
        json.dumps(outcome.details, ensure_ascii=False, default=str),
    )
    try:
        tables.append(small_frame(spark, [row], RUN_LOG_SCHEMA), *RUN_LOG)
    except Exception:
        if error is None:
            raise
    if error is not None:
        raise error
    outcome.details.setdefault("seconds", seconds)
    outcome.details.setdefault("run_id", ctx.run_id)
    return outcome
