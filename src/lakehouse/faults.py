"""Crash points: a way to SIGKILL a job at an exact moment of its writes, for crash-recovery tests.

`LAKEHOUSE_CRASH_AT=<job>:<n>:<stage>` makes the process kill its whole process group (itself and
its Spark JVM, as an operator's `kill -9` or a lost node would) at the n-th table write of job
`<job>`:

- `before`: just before the write starts, after everything the job computed up to it;
- `during[:<ms>]`: the write starts and the kill comes <ms> milliseconds later (default 300),
  while Spark is writing data files or Delta is committing. A write that commits sooner is killed
  at its commit, one that fails before the process writes again, so the kill never drifts into
  another write;
- `after`: just after the write committed, before the job's next step.

Unset (always, outside tests) it costs one dictionary lookup per write. A spec that does not parse
is an error, so a typo cannot quietly test nothing.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from dataclasses import dataclass

ENV = "LAKEHOUSE_CRASH_AT"
STAGES = ("before", "during", "after")

_current_job: str | None = None
_writes = 0
_timer: threading.Timer | None = None
# Writes per job in this process (the last run of each), and what each of them wrote: a crash
# test picks its points from them and checks that a kill hit the write it was meant for.
writes_by_job: dict[str, int] = {}
write_targets: dict[str, list[str]] = {}


@dataclass(frozen=True)
class CrashPoint:
    job: str
    write: int
    stage: str
    delay_ms: int = 300

    @classmethod
    def parse(cls, spec: str) -> CrashPoint:
        parts = spec.split(":")
        try:
            job, write, stage, *rest = parts
            point = cls(job, int(write), stage, int(rest[0]) if rest else 300)
        except ValueError:
            raise ValueError(
                f"{ENV}={spec!r}: expected <job>:<n>:<before|during[:ms]|after>"
            ) from None
        if point.stage not in STAGES or point.write < 1 or len(rest) > 1:
            raise ValueError(f"{ENV}={spec!r}: expected <job>:<n>:<before|during[:ms]|after>")
        if rest and point.stage != "during":
            raise ValueError(f"{ENV}={spec!r}: only `during` takes a delay")
        return point


def _point() -> CrashPoint | None:
    spec = os.environ.get(ENV)
    return CrashPoint.parse(spec) if spec else None


def job_started(job: str) -> None:
    """Called by the runtime: writes are counted per job."""
    global _current_job, _writes
    _kill_if_a_during_write_failed()
    _current_job, _writes = job, 0
    write_targets[job] = []


def _kill(where: str) -> None:
    sys.stderr.write(f"{ENV}: SIGKILL {where}\n")
    sys.stderr.flush()
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _kill_if_a_during_write_failed() -> None:
    """A `during` write that ended without a commit (it raised) and a process that goes on (the
    job's FAILED run-log row, the next job): kill now, not somewhere in what comes next."""
    if _timer is not None and _timer.is_alive():
        _timer.cancel()
        _kill(f"during write {_writes} of {_current_job}, which ended without a commit")


def before_write(target: str) -> None:
    """Called by Tables before each write of `target`."""
    global _writes, _timer
    _kill_if_a_during_write_failed()
    _writes += 1
    if _current_job is not None:
        writes_by_job[_current_job] = _writes
        write_targets.setdefault(_current_job, []).append(target)
    point = _point()
    if point is None or point.job != _current_job:
        return
    if _writes != point.write:
        return
    where = f"{point.stage} write {_writes} ({target}) of {_current_job}"
    if point.stage == "before":
        _kill(where)
    elif point.stage == "during":
        _timer = threading.Timer(point.delay_ms / 1000, _kill, args=(where,))
        _timer.daemon = True
        _timer.start()


def after_write(target: str) -> None:
    """Called by Tables after each write of `target` committed."""
    point = _point()
    if point is None or point.job != _current_job or _writes != point.write:
        return
    if point.stage == "after":
        _kill(f"after write {_writes} ({target}) of {_current_job}")
    elif point.stage == "during" and _timer is not None:
        _timer.cancel()
        _kill(f"during write {_writes} ({target}) of {_current_job} at its commit")
