"""Crash points kill exactly where they say, and a bad spec is an error, never a silent no-op."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

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


def _run(spec: str | None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin"}
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
