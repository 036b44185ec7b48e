"""Crash points kill exactly where they say, and a bad spec is an error, never a silent no-op."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from lakehouse import faults
from lakehouse.faults import CrashPoint

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from lakehouse import faults
    faults.job_started("other.job")
    faults.before_write("t0"); faults.after_write("t0")
    faults.job_started("silver.sales")
    for i in range(1, 4):
        print("before", i, flush=True)
        faults.before_write(f"t{i}")
        time.sleep(0.5)  # the write
        print("wrote", i, flush=True)
        faults.after_write(f"t{i}")
    print("done", flush=True)
    """
)


def _pythonpath() -> dict[str, str]:
    """The lakehouse under test, when it is not the installed one (PYTHONPATH)."""
    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}


def _run(spec: str | None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", **_pythonpath()}
    if spec is not None:
        env["LAKEHOUSE_CRASH_AT"] = spec
    return subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,  # the crash point kills its whole process group
    )


@pytest.mark.parametrize(
    ("spec", "last_line"),
    [
        ("silver.sales:2:before", "before 2"),
        ("silver.sales:2:during:100", "before 2"),
        ("silver.sales:2:after", "wrote 2"),
        ("silver.sales:1:after", "wrote 1"),
    ],
)
def test_the_process_dies_by_sigkill_at_the_point(spec, last_line):
    done = _run(spec)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert done.stdout.splitlines()[-1] == last_line
    assert "SIGKILL" in done.stderr and "silver.sales" in done.stderr


def test_a_write_that_commits_before_the_during_timer_is_killed_at_its_commit():
    """Never later: a 2 s timer on a 0.5 s write would otherwise fire during the next write, or
    not at all, and the crash test would have killed somewhere else than it says."""
    done = _run("silver.sales:2:during:2000")
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert done.stdout.splitlines()[-1] == "wrote 2"
    assert "SIGKILL during write 2 (t2) of silver.sales at its commit" in done.stderr


FAILING_WRITE = textwrap.dedent(
    """
    import time
    from lakehouse import faults
    faults.job_started("silver.sales")
    faults.before_write("t1")
    time.sleep(0.2)
    print("write 1 failed", flush=True)  # no after_write: the write raised
    faults.before_write("ops.run_log")  # the job's FAILED row
    time.sleep(2)
    print("wrote the run log", flush=True)
    """
)


def test_a_during_write_that_fails_is_killed_before_the_next_write():
    done = subprocess.run(
        [sys.executable, "-c", FAILING_WRITE],
        env={"LAKEHOUSE_CRASH_AT": "silver.sales:1:during:1000", **_pythonpath()},
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert done.stdout.splitlines()[-1] == "write 1 failed"
    assert "during write 1 of silver.sales, which ended without a commit" in done.stderr


def test_each_job_s_writes_and_their_targets_are_recorded(monkeypatch):
    monkeypatch.delenv("LAKEHOUSE_CRASH_AT", raising=False)
    monkeypatch.setattr(faults, "writes_by_job", {})
    monkeypatch.setattr(faults, "write_targets", {})
    monkeypatch.setattr(faults, "_current_job", None)
    monkeypatch.setattr(faults, "_writes", 0)
    for job, targets in (("bronze.pos_sales", ["a", "b"]), ("silver.sales", ["c"])):
        faults.job_started(job)
        for target in targets:
            faults.before_write(target)
            faults.after_write(target)
    faults.job_started("bronze.pos_sales")  # run again: its last run counts
    faults.before_write("d")
    assert faults.writes_by_job == {"bronze.pos_sales": 1, "silver.sales": 1}
    assert faults.write_targets == {"bronze.pos_sales": ["d"], "silver.sales": ["c"]}


def test_no_point_or_another_job_or_a_later_write_runs_to_the_end():
    for spec in (None, "gold.bundles:1:before", "silver.sales:9:before"):
        done = _run(spec)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == "done"


@pytest.mark.parametrize(
    "spec",
    ["silver.sales", "silver.sales:x:before", "silver.sales:0:before", "silver.sales:1:soon",
     "silver.sales:1:after:100", "silver.sales:1:during:1:2"],
)  # fmt: skip
def test_a_bad_spec_is_an_error(spec):
    with pytest.raises(ValueError, match="LAKEHOUSE_CRASH_AT"):
        CrashPoint.parse(spec)


def test_a_during_point_defaults_to_300_ms():
    assert CrashPoint.parse("oneid.link:3:during") == CrashPoint("oneid.link", 3, "during", 300)
