"""SIGKILL a day's run at many points of its writes, resume it each time, and end with exactly
the tables of an uninterrupted run: no partial state visible, no row lost, none doubled.

20+ kills across every layer, marked `long`: `make test-long` runs it and CI runs that too
(each kill is a fresh child process with a cold JVM: about a minute each on two cores, too long
for the everyday suite). A three-kill form in `make test` ran the whole day once more on top
of its reference run and was dropped: every point it had (a bronze landing killed while it
writes, silver.sales before a middle write, a gold job after its run-log entry) is among these.

The day is `tiny_day`'s (its uninterrupted local run is the reference). `lakehouse run-all
--run-date D` runs in a child process with `LAKEHOUSE_CRASH_AT=<job>:<n>:<stage>`
(src/lakehouse/faults.py), which kills the child's process group (Python and its Spark JVM)
just before, during (a timer while Spark writes or Delta commits) or just after the n-th table
write of that job. Each kill is followed by another `run-all`, which resumes from ops.run_log:
jobs that succeeded are skipped, the killed job runs again from the start. The points run in
the registry's order, so every child gets further than the last, bronze to gold, and a last
child without a crash point finishes the day.

The points are picked from the reference run's own write counts (the first and the last write
of each killed job, the middle one too for silver.sales; the last write of a job is its
ops.run_log entry), so they stay valid as the jobs change.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest
from delta.tables import DeltaTable

from lakehouse.registry import build_registry, in_order
from lakehouse.tables import Tables
from tests.integration.compare import differences
from tests.integration.conftest import ROOT, TINY_SALT

pytestmark = pytest.mark.integration

# Jobs killed, across every layer: a bronze landing, SCD2 history, a MERGE of orders, identities,
# the connected components, golden records, a mart and the portraits.
KILLED_JOBS = (
    "bronze.pos_sales",
    "bronze.crm_members",
    "silver.master",
    "silver.sales",
    "silver.members",
    "silver.identities",
    "oneid.link",
    "oneid.golden",
    "gold.store_marts",
    "gold.member_portrait",
)
STAGES = ("during", "before", "after")


# silver.sales, the MERGE of orders and their lines (six writes), gets a point in the middle too:
# 21 kills, one over the 20. (oneid.link's middle was a 22nd; each kill is a cold child of
# about a minute, and oneid.link's first and last writes are killed already.)
MIDDLE_TOO = ("silver.sales",)


def crash_points(writes_by_job: dict[str, int], order: list[str]) -> list[tuple[str, int, str]]:
    """The first and the last write of each killed job (the last is its ops.run_log entry), and
    the middle one of MIDDLE_TOO's jobs, in run order; the stage rotates over the points."""
    points = []
    for job in order:
        if job not in KILLED_JOBS:
            continue
        n = writes_by_job[job]
        picks = {1, n} | ({(n + 1) // 2} if job in MIDDLE_TOO else set())
        for write in sorted(picks):
            points.append((job, write, STAGES[len(points) % len(STAGES)]))
    return points


def _run_all(tiny_day, warehouse, crash: str | None, log) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "PYSPARK_"))}
    env.update(
        LAKEHOUSE_CONF=str(tiny_day.conf),
        LAKEHOUSE_EXPECTATIONS=str(ROOT / "expectations"),
        LAKEHOUSE_LANDING=str(tiny_day.landing),
        LAKEHOUSE_WAREHOUSE=str(warehouse),
        LAKEHOUSE_PII_SALT=TINY_SALT,
    )
    if crash:
        env["LAKEHOUSE_CRASH_AT"] = crash
    command = [sys.executable, "-m", "lakehouse.cli", "run-all"]
    command += ["--run-date", tiny_day.day.isoformat(), "--env", "local"]
    done = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        start_new_session=True,  # the crash point kills this process group, not pytest's
    )
    log.write(f"--- {crash}: exit {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}\n")
    return done


def forget_cached_table_states(spark) -> None:
    """Drop this session's cached Delta logs. The children write the tables; a log this session
    looked at before a child's first commit would go on answering "no table" (isDeltaTable does
    not refresh a cached log), which is a stale view of this test's, not a state on disk."""
    spark.sparkContext._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()


def kill_and_resume(spark, tiny_day, tmp_path, points: list[tuple[str, int, str]]) -> list[str]:
    """One child `run-all` per point, each SIGKILLed there, then one that finishes the day;
    checks after every kill, and at the end that every table equals the uninterrupted run's.
    Returns what each kill hit, as faults.py reported it."""
    order = [job.name for job in in_order(build_registry(tiny_day.settings))]
    warehouse = tmp_path / "warehouse"
    tables = Tables(spark, str(warehouse))
    killed = []
    with (tmp_path / "children.log").open("w") as log:
        for job, write, stage in points:
            spec = f"{job}:{write}:{stage}"
            done = _run_all(tiny_day, warehouse, spec, log)
            forget_cached_table_states(spark)
            assert done.returncode == -signal.SIGKILL, (
                spec,
                done.stdout[-2000:],
                done.stderr[-3000:],
            )
            where = re.search(r"LAKEHOUSE_CRASH_AT: SIGKILL (.*)", done.stderr)
            assert where and job in where.group(1), done.stderr[-2000:]
            killed.append(where.group(1))
            # A job killed before its run-log entry committed is not recorded as done, so the
            # next run-all runs it again; killed just after, it is done and is not run again.
            last = write == tiny_day.writes_by_job[job]
            if tables.exists("ops", "run_log") and not (last and stage == "during"):
                log_rows = tables.read("ops", "run_log").where(f"job = '{job}'")
                recorded = log_rows.where("status = 'SUCCEEDED'").count()
                assert recorded == (1 if last and stage == "after" else 0), spec
            # What the child was writing when it died is readable at its last commit, or, when
            # its first commit never happened, is no table at all (data files without a commit
            # are invisible).
            target = re.search(r"\(([^)]*)\)", where.group(1)).group(1)
            path = target if target.startswith("/") else tables.path(*target.split(".", 1))
            if DeltaTable.isDeltaTable(spark, path):
                spark.read.format("delta").load(path).count()
        done = _run_all(tiny_day, warehouse, None, log)
        forget_cached_table_states(spark)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    # Every job succeeded once in the end, and every table equals the uninterrupted run's.
    log_rows = tables.read("ops", "run_log").where("status = 'SUCCEEDED'")
    assert {r.job for r in log_rows.collect()} == set(order)
    assert not differences(spark, str(tiny_day.reference), str(warehouse))
    return killed


@pytest.mark.long
def test_a_day_killed_at_twenty_points_and_resumed_equals_an_uninterrupted_run(
    spark, tiny_day, tmp_path
):
    """20+ kills across every layer; among them a bronze landing killed while it writes, a MERGE
    of silver.sales just before a write in its middle, and a job killed just after its run-log
    entry committed (done: not run again)."""
    order = [job.name for job in in_order(build_registry(tiny_day.settings))]
    points = crash_points(tiny_day.writes_by_job, order)
    assert len(points) >= 20, points
    killed = kill_and_resume(spark, tiny_day, tmp_path, points)
    assert len(killed) >= 20
    assert {k.split(" of ")[-1] for k in killed} == set(KILLED_JOBS)
    assert {k.split(" ")[0] for k in killed} == set(STAGES)
