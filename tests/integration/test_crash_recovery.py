"""SIGKILL two days' runs at many points of their writes, resume them each time, and end with
exactly the tables of an uninterrupted run: no partial state visible, no row lost, none doubled.

20+ kills across every layer, marked `long`: `make test-long` runs it and CI runs that too
(each kill is a fresh child process with a cold JVM: about fifty seconds each on two cores, too
long for the everyday suite). A three-kill form in `make test` ran the whole day once more on top
of its reference run and was dropped: every point it had (a bronze landing killed while it
writes, silver.sales before a middle write, a gold job after its run-log entry) is among these.

The days are `tiny_day`'s (its uninterrupted local run is the reference). Day 1 creates every
table, so its kills hit first commits (a table that does not exist yet, or exists with data files
no commit names); day 2 writes into existing tables, so its kills hit what a first day never
does: a MERGE of orders that moves a payment, appends to bronze, SCD2 versions, the marts'
incremental branch and `delete_matching`. Most points are on day 2.

`lakehouse run-all --run-date D` runs in a child process with
`LAKEHOUSE_CRASH_AT=<job>:<n>:<stage>` (src/lakehouse/faults.py), which kills the child's process
group (Python and its Spark JVM) just before, during (a timer while Spark writes or Delta commits,
or at the commit if the write is quicker) or just after the n-th table write of that job. Each
kill is followed by another `run-all`, which resumes from ops.run_log: jobs that succeeded are
skipped, the killed job runs again from the start. The points run in the registry's order, so
every child gets further than the last, bronze to gold, and a last child without a crash point
finishes the day; the warehouse must then equal the reference's as that day left it.

The points are picked from the reference run's own write counts (the first write of each killed
job, the last too for four of them (a job's last write is its ops.run_log entry), the middle one
for silver.sales and gold.store_marts, both writes of silver.members to its table on a day
members leave the CRM), so they stay valid as the jobs change; and each kill must name
the table the reference's write of that number wrote, so a point cannot drift onto another
write unnoticed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import date

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from lakehouse.registry import build_registry, in_order
from lakehouse.tables import Tables
from tests.integration.compare import differences
from tests.integration.conftest import ROOT, TINY_SALT, relative_target

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


# silver.sales, the MERGE of orders and their lines (six writes), and gold.store_marts, whose
# incremental branch recomputes the days and months silver changed (four writes), get a point in
# the middle too. (oneid.link's middle was another.)
MIDDLE_TOO = ("silver.sales", "gold.store_marts")
# Their last write (the ops.run_log entry) is killed for these jobs only: killed before it, a job
# runs again over every table it already wrote (MERGEs of moved payments, departures, golden
# records, the marts' incremental branch); killed during or after it, the run log decides, the
# same for every job. The stages fall so that the run-log write is killed in all three. 17 kills
# on day 2: each kill is a cold child of ~45 s, and the last writes of six more jobs (2026-12-07:
# 23 on day 2) cost ~5 minutes of CI for what these and the "rerun changes nothing" tests check.
LAST_TOO = ("silver.sales", "silver.members", "oneid.golden", "gold.store_marts")
# Day 1 kills only these jobs' first writes, each while it creates its table (Spark writing the
# first data files or Delta committing version 0: what a rerun finds is files no commit names):
# a bronze landing, the orders and a mart.
FIRST_DAY_KILLED = ("bronze.pos_sales", "silver.sales", "gold.store_marts")
# On a day members leave the CRM (the generator's day 2 has a merged and a closed record),
# silver.members writes its own table twice, as its first two writes: the departures, then the
# upsert of the snapshot. Both are killed (a rerun must judge the departures as the first try
# did), besides its last write; on a day no one leaves, its first write (the upsert) is.
OWN_TABLE_WRITES = {"silver.members": "silver.members"}

Point = tuple[date, str, int, str]  # day, job, write, stage


def crash_points(
    writes_by_day: dict[date, dict[str, int]],
    order: list[str],
    targets_by_day: dict[date, dict[str, list[str]]],
) -> list[Point]:
    """On the first day, the first write of FIRST_DAY_KILLED's jobs, `during`; on the others, the
    first write of each killed job, the last of LAST_TOO's (its ops.run_log entry), the middle
    one of MIDDLE_TOO's jobs and every write of OWN_TABLE_WRITES' jobs to their table (instead of
    the first), the stage rotating over the day's points; in run order."""
    points: list[Point] = []
    first_day = min(writes_by_day)
    for day, writes_by_job in sorted(writes_by_day.items()):
        first_point = len(points)
        for job in order:
            if job not in (FIRST_DAY_KILLED if day == first_day else KILLED_JOBS):
                continue
            n = writes_by_job[job]
            own = {
                i + 1
                for i, target in enumerate(targets_by_day[day][job])
                if target == OWN_TABLE_WRITES.get(job)
            }
            picks = {1} if day == first_day else (own or {1}) | ({n} if job in LAST_TOO else set())
            picks |= {(n + 1) // 2} if job in MIDDLE_TOO and day != first_day else set()
            for write in sorted(picks):
                stage = (
                    "during"
                    if day == first_day
                    else STAGES[(len(points) - first_point) % len(STAGES)]
                )
                points.append((day, job, write, stage))
    return points


def _run_all(tiny_day, day: date, warehouse, crash: str | None, log) -> subprocess.CompletedProcess:
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
    command += ["--run-date", day.isoformat(), "--env", "local"]
    done = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        start_new_session=True,  # the crash point kills this process group, not pytest's
    )
    log.write(f"--- {day} {crash}: exit {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}\n")
    return done


def forget_cached_table_states(spark) -> None:
    """Drop this session's cached Delta logs. The children write the tables; a log this session
    looked at before a child's first commit would go on answering "no table" (isDeltaTable does
    not refresh a cached log), which is a stale view of this test's, not a state on disk."""
    spark.sparkContext._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()


KILLED = re.compile(r"LAKEHOUSE_CRASH_AT: SIGKILL (\w+) write (\d+) \(([^)]*)\) of (\S+)(.*)")


def kill_and_resume(spark, tiny_day, tmp_path, points: list[Point]) -> list[str]:
    """One child `run-all` per point, each SIGKILLed there, then one that finishes the day;
    checks after every kill, and at the end of each day that every table equals the
    uninterrupted run's as that day left it. Returns what each kill hit, as faults.py said."""
    order = [job.name for job in in_order(build_registry(tiny_day.settings))]
    warehouse = tmp_path / "warehouse"
    tables = Tables(spark, str(warehouse))
    killed = []
    with (tmp_path / "children.log").open("w") as log:
        for day, reference in tiny_day.days.items():
            for _, job, write, stage in (p for p in points if p[0] == day):
                spec = f"{job}:{write}:{stage}"
                done = _run_all(tiny_day, day, warehouse, spec, log)
                forget_cached_table_states(spark)
                assert done.returncode == -signal.SIGKILL, (
                    day,
                    spec,
                    done.stdout[-2000:],
                    done.stderr[-3000:],
                )
                hit = KILLED.search(done.stderr)
                assert hit, done.stderr[-2000:]
                # The kill hit the write the reference's run made as that job's n-th: the same
                # table (a point counted from another sequence of writes would name another).
                assert hit.group(1, 2, 4) == (stage, str(write), job), hit.group(0)
                target = hit.group(3)
                want = reference.targets_by_job[job][write - 1]
                assert relative_target(target, warehouse) == want, (day, spec, hit.group(0))
                killed.append(hit.group(0).split("SIGKILL ", 1)[1])
                # A job killed before its run-log entry committed is not recorded as done, so the
                # next run-all runs it again; killed just after, it is done and is not run again.
                last = write == reference.writes_by_job[job]
                if tables.exists("ops", "run_log") and not (last and stage == "during"):
                    log_rows = tables.read("ops", "run_log").where(
                        (F.col("job") == job) & (F.col("run_date") == F.lit(day))
                    )
                    recorded = log_rows.where("status = 'SUCCEEDED'").count()
                    assert recorded == (1 if last and stage == "after" else 0), (day, spec)
                # What the child was writing when it died is readable at its last commit, or,
                # when its first commit never happened, is no table at all (data files without a
                # commit are invisible).
                path = target if target.startswith("/") else tables.path(*target.split(".", 1))
                if DeltaTable.isDeltaTable(spark, path):
                    spark.read.format("delta").load(path).count()
            done = _run_all(tiny_day, day, warehouse, None, log)
            forget_cached_table_states(spark)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

            # Every job succeeded once that day, and every table equals the uninterrupted run's
            # as that day left it.
            log_rows = tables.read("ops", "run_log").where(
                (F.col("status") == "SUCCEEDED") & (F.col("run_date") == F.lit(day))
            )
            assert {r.job for r in log_rows.collect()} == set(order), day
            assert not differences(spark, str(reference.warehouse), str(warehouse)), day
    return killed


@pytest.mark.long
def test_two_days_killed_at_twenty_points_and_resumed_equal_an_uninterrupted_run(
    spark, tiny_day, tmp_path
):
    """20 kills across every layer: 17 on day 2, into existing tables, and three first commits
    on day 1; among them a bronze landing killed while it writes, a MERGE of silver.sales just
    before a write in its middle, and a job killed just after its run-log entry committed (done:
    not run again)."""
    order = [job.name for job in in_order(build_registry(tiny_day.settings))]
    writes = {day: written.writes_by_job for day, written in tiny_day.days.items()}
    targets = {day: written.targets_by_job for day, written in tiny_day.days.items()}
    points = crash_points(writes, order, targets)
    day_2 = max(writes)
    assert len(points) >= 20, points
    # The run log's own write killed before, during and after it (LAST_TOO's jobs' last writes).
    last_writes = {p[3] for p in points if p[0] == day_2 and p[2] == writes[day_2][p[1]]}
    assert last_writes == set(STAGES), points
    # A middle point of its own (silver.sales 6 writes, gold.store_marts 4, 2026-12-06): with
    # two writes or fewer it would fall on the first or the last and the test would not say so.
    assert all(writes[day_2][job] >= 3 for job in MIDDLE_TOO), writes[day_2]
    # Day 2's departures and upsert of silver.members (a generator whose tiny day 2 lost no
    # member would leave the departures' MERGE unkilled, and say so here).
    members_writes = [p[2] for p in points if p[:2] == (day_2, "silver.members")]
    assert targets[day_2]["silver.members"].count("silver.members") == 2, targets[day_2]
    assert len(members_writes) == 3, members_writes
    killed = kill_and_resume(spark, tiny_day, tmp_path, points)
    assert len(killed) == len(points)
    assert {KILLED.search(f"LAKEHOUSE_CRASH_AT: SIGKILL {k}").group(4) for k in killed} == set(
        KILLED_JOBS
    )
    assert {k.split(" ")[0] for k in killed} == set(STAGES)
    during = [k for k in killed if k.startswith("during")]
    at_commit = sum("at its commit" in k for k in during)
    print(f"{len(during)} `during` kills, {at_commit} of them at the write's commit")
    # Some kill must land while a write runs (all 9 of 9 did, 2026-12-06): were every write
    # quicker than its timer, `during` would have become `after` and tested nothing of its own.
    assert at_commit < len(during), killed
