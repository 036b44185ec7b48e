"""Run the registry's jobs for a range of days, in dependency order, in one session.

A failed job stops its dependants (their input would be missing or stale), for that day and the
later days of the range, and leaves unrelated jobs running. So does a failure left by an earlier
command: a job whose last run for an earlier day failed, with no success for a later day since,
is not run (the per-day jobs read their run date's delivery only, so that day's rows would never
arrive). A rerun resumes: a job whose last run
for the day succeeded, after the last successful run of each job it depends on and after its own
last success for any earlier day, is not run again (bronze to gold are idempotent per day, so
running it again would change nothing but the time).
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse.config import Settings
from lakehouse.registry import LAYER_ORDER, build_registry, in_order
from lakehouse.runtime import RUN_LOG, Job, run_job
from lakehouse.tables import Tables

SUCCEEDED, FAILED, SKIPPED, DONE = "SUCCEEDED", "FAILED", "SKIPPED", "DONE"


@dataclass(frozen=True)
class Outcome:
    job: str
    run_date: date
    status: str  # SUCCEEDED, FAILED, SKIPPED (a dependency failed), DONE (resumed: ran before)
    seconds: float = 0.0
    rows_read: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    reason: str | None = None


@dataclass
class RunSummary:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.status in (SUCCEEDED, DONE) for o in self.outcomes)

    def with_status(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    def describe(self) -> str:
        counts = {s: len(self.with_status(s)) for s in (SUCCEEDED, DONE, FAILED, SKIPPED)}
        seconds = sum(o.seconds for o in self.outcomes)
        lines = [
            f"{counts[SUCCEEDED]} ran, {counts[DONE]} already done, {counts[FAILED]} failed, "
            f"{counts[SKIPPED]} skipped, in {seconds:.1f}s of job time"
        ]
        for o in self.with_status(FAILED):
            lines.append(f"  FAILED   {o.job} {o.run_date}: {o.reason}")
        for o in self.with_status(SKIPPED):
            lines.append(f"  SKIPPED  {o.job} {o.run_date}: {o.reason}")
        return "\n".join(lines)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def traceback_when_debugging(exc: BaseException) -> None:
    """With LAKEHOUSE_DEBUG set, the whole traceback of a failed job on stderr, before its one
    line: a job's failure is caught to go on with the others, so it never reaches the
    command's own handler, the only other place that shows it."""
    if os.environ.get("LAKEHOUSE_DEBUG"):
        traceback.print_exception(exc, file=sys.stderr)


def last_successes(tables: Tables, run_date: date) -> dict[str, datetime]:
    """job → end time of its latest run for `run_date`, for the jobs whose latest run succeeded
    and that have not succeeded for an earlier day since.

    A job run for an earlier day after this one (a backfill, `run-all --run-date <earlier>
    --rerun`) rewinds what it keeps whole-table as of its run date (gold portraits and tags,
    One ID's state): the later day's success no longer describes the tables, so it runs again.
    """
    if not tables.exists(*RUN_LOG):
        return {}
    on_day = F.col("run_date") == F.lit(run_date)
    earlier = (F.col("run_date") < F.lit(run_date)) & (F.col("status") == SUCCEEDED)
    rows = (
        tables.read(*RUN_LOG)
        .where(F.col("run_date") <= F.lit(run_date))
        .groupBy("job")
        .agg(
            F.max_by(F.struct("status", "end_time"), F.when(on_day, F.col("end_time"))).alias(
                "last"
            ),
            F.max(F.when(earlier, F.col("end_time"))).alias("earlier_day_since"),
        )
        .where(F.col("last").isNotNull())
        .select("job", "last.status", "last.end_time", "earlier_day_since")
        .collect()
    )
    return {
        r["job"]: r["end_time"]
        for r in rows
        if r["status"] == SUCCEEDED
        and (r["earlier_day_since"] is None or r["earlier_day_since"] < r["end_time"])
    }


def unfinished_days(tables: Tables, before: date) -> dict[str, date]:
    """job → the earliest day before `before` whose last run failed and after which the job has
    not succeeded for a later day.

    Why: a cron that runs `run-all --run-date D` each day would otherwise go on after a failed
    day, exit 0, and never bring that day's deliveries in. A success for a later day that ended
    after the failure (say `run-all --run-date D --rerun`) is the operator's word that the failed
    day is given up; successes made before it (a failed `--rerun` of a day that had loaded, with
    later days loaded since) give nothing up.
    """
    if not tables.exists(*RUN_LOG):
        return {}
    log = tables.read(*RUN_LOG)
    failures = (
        log.where(F.col("run_date") < F.lit(before))
        .groupBy("job", "run_date")
        .agg(F.max_by(F.struct("status", "end_time"), "end_time").alias("last"))
        .where(F.col("last.status") == FAILED)
        .select("job", "run_date", F.col("last.end_time").alias("failed_at"))
    )
    successes = log.where(F.col("status") == SUCCEEDED).select(
        "job", F.col("run_date").alias("ok_date"), F.col("end_time").alias("ok_at")
    )
    given_up = (failures["job"] == successes["job"]) & (
        (successes["ok_date"] > failures["run_date"]) & (successes["ok_at"] > failures["failed_at"])
    )
    rows = (
        failures.join(successes, given_up, "left_anti")
        .groupBy("job")
        .agg(F.min("run_date").alias("day"))
        .collect()
    )
    return {r["job"]: r["day"] for r in rows}


def left_unfinished(
    registry: dict[str, Job], unfinished: dict[str, date], last_day: date
) -> dict[str, str]:
    """job → why it must not run: it, or a job it depends on however far up (in any layer, not
    only those selected), was left failed by an earlier command. The reason names the root job,
    its day and the catch-up command, which `--layers gold` alone could not otherwise show."""
    roots: dict[str, str] = {}  # job → the unfinished job it waits for (itself, or upstream)
    reasons: dict[str, str] = {}
    for job in in_order(registry):
        if job.name in unfinished:
            day = unfinished[job.name]
            roots[job.name] = job.name
            reasons[job.name] = (
                f"failed on {day} and has not succeeded for a later day since: catch up with "
                f"run-all --from {day} --to {last_day} (or give {day} up with --rerun)"
            )
        elif blocked := [d for d in job.depends_on if d in roots]:
            root = roots[blocked[0]]
            roots[job.name] = root
            reasons[job.name] = f"after {root}, which {reasons[root]}"
    return reasons


def already_done(job: Job, successes: dict[str, datetime], rerun: set[str]) -> bool:
    """The job's last run for the day succeeded, after every dependency's last success, and no
    dependency runs again now."""
    finished = successes.get(job.name)
    if finished is None:
        return False
    for dependency in job.depends_on:
        if dependency in rerun:
            return False
        if dependency in successes and successes[dependency] > finished:
            return False
    return True


def run_days(
    settings: Settings,
    spark: SparkSession,
    days: Iterable[date],
    layers: tuple[str, ...] = LAYER_ORDER,
    *,
    resume: bool = True,
    report: Callable[[Outcome], None] | None = None,
    registry: dict[str, Job] | None = None,
) -> RunSummary:
    """Run the layers' jobs day by day; `report` sees each outcome as it happens. `registry`
    defaults to the suite's own (lakehouse.registry)."""
    registry = registry if registry is not None else build_registry(settings)
    jobs = in_order(registry, layers)
    tables = Tables(spark, settings.warehouse)
    summary = RunSummary()
    failed: dict[str, str] = {}  # job → why it (or what it depends on) failed; kept across days
    days = list(days)
    if resume and days:
        failed.update(left_unfinished(registry, unfinished_days(tables, days[0]), days[-1]))
    for day in days:
        successes = last_successes(tables, day) if resume else {}
        ran: set[str] = set()
        for job in jobs:
            if job.name in failed:
                outcome = Outcome(job.name, day, SKIPPED, reason=failed[job.name])
            elif blocked := [d for d in job.depends_on if d in failed]:
                failed[job.name] = f"after failed {', '.join(blocked)}"
                outcome = Outcome(job.name, day, SKIPPED, reason=failed[job.name])
            elif resume and already_done(job, successes, ran):
                outcome = Outcome(job.name, day, DONE)
            else:
                ran.add(job.name)
                outcome = _run(job, settings, spark, day)
                if outcome.status == FAILED:
                    failed[job.name] = f"failed on {day}"
            summary.outcomes.append(outcome)
            if report:
                report(outcome)
    return summary


def _run(job: Job, settings: Settings, spark: SparkSession, day: date) -> Outcome:
    started = time.monotonic()
    try:
        result = run_job(job, settings, spark, day)
    except Exception as exc:
        traceback_when_debugging(exc)
        return Outcome(
            job.name, day, FAILED, round(time.monotonic() - started, 1), reason=one_line(exc)
        )
    return Outcome(
        job.name,
        day,
        SUCCEEDED,
        round(time.monotonic() - started, 1),
        result.rows_read,
        result.rows_written,
        result.rows_quarantined,
    )


def print_progress(outcome: Outcome) -> None:
    """One line per job: what a person follows while a day runs."""
    head = f"{outcome.job:<28} {outcome.run_date}"
    if outcome.status == SUCCEEDED:
        print(
            f"{head}  ok  read {outcome.rows_read:>8}  written {outcome.rows_written:>8}"
            f"  quarantined {outcome.rows_quarantined:>6}  {outcome.seconds:6.1f}s",
            flush=True,
        )
    elif outcome.status == DONE:
        print(f"{head}  done before, not rerun", flush=True)
    else:
        print(f"{head}  {outcome.status}  {outcome.reason}", file=sys.stderr, flush=True)
