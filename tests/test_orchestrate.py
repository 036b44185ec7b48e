"""Day-by-day orchestration: failures stop dependants only, reruns resume."""

from __future__ import annotations

from datetime import date

import pytest

from lakehouse.orchestrate import DONE, FAILED, SKIPPED, SUCCEEDED, run_days
from lakehouse.runtime import Job, JobError, JobResult

D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)


def _registry(calls: list[tuple[str, date]], broken: set[str]) -> dict[str, Job]:
    def make(name: str):
        def run(ctx) -> JobResult:
            calls.append((name, ctx.run_date))
            if name in broken:
                raise JobError(f"{name} could not read its input")
            return JobResult(rows_read=1, rows_written=1)

        return run

    shape = {
        "bronze.a": (),
        "bronze.c": (),
        "silver.b": ("bronze.a",),
        "gold.d": ("silver.b", "bronze.c"),
        "gold.e": ("bronze.c",),
    }
    return {
        name: Job(name, name.split(".")[0], name, make(name), deps) for name, deps in shape.items()
    }


def _status(summary) -> dict[tuple[str, date], str]:
    return {(o.job, o.run_date): o.status for o in summary.outcomes}


@pytest.fixture()
def settings(settings_for):
    return settings_for()


def test_a_failure_stops_its_dependants_for_the_rest_of_the_range_not_the_others(spark, settings):
    calls: list[tuple[str, date]] = []
    summary = run_days(
        settings,
        spark,
        [D1, D2],
        ("bronze", "silver", "gold"),
        registry=_registry(calls, {"silver.b"}),
    )
    status = _status(summary)
    assert not summary.ok
    assert status[("silver.b", D1)] == FAILED
    assert status[("gold.d", D1)] == SKIPPED
    assert status[("silver.b", D2)] == SKIPPED and status[("gold.d", D2)] == SKIPPED
    for day in (D1, D2):
        for job in ("bronze.a", "bronze.c", "gold.e"):
            assert status[(job, day)] == SUCCEEDED
    text = summary.describe()
    assert "FAILED   silver.b 2026-03-01: JobError: silver.b could not read its input" in text
    assert "SKIPPED  gold.d 2026-03-01: after failed silver.b" in text
    assert ("silver.b", D2) not in calls


def test_a_rerun_picks_up_where_it_failed(spark, settings):
    first: list[tuple[str, date]] = []
    run_days(
        settings, spark, [D1], ("bronze", "silver", "gold"), registry=_registry(first, {"silver.b"})
    )
    again: list[tuple[str, date]] = []
    summary = run_days(
        settings, spark, [D1], ("bronze", "silver", "gold"), registry=_registry(again, set())
    )
    assert summary.ok
    assert again == [("silver.b", D1), ("gold.d", D1)]
    status = _status(summary)
    assert status[("bronze.a", D1)] == DONE and status[("gold.e", D1)] == DONE


def test_a_job_reruns_when_a_dependency_ran_after_it(spark, settings):
    calls: list[tuple[str, date]] = []
    registry = _registry(calls, set())
    run_days(settings, spark, [D1], ("bronze", "silver", "gold"), registry=registry)
    # bronze.a alone again (e.g. `lakehouse run bronze.a`): what follows it is stale now
    only_a = {"bronze.a": registry["bronze.a"]}
    run_days(settings, spark, [D1], ("bronze",), registry=only_a, resume=False)
    calls.clear()
    run_days(settings, spark, [D1], ("bronze", "silver", "gold"), registry=registry)
    assert calls == [("silver.b", D1), ("gold.d", D1)]


def test_a_later_day_runs_again_after_an_earlier_day_was_rerun(spark, settings):
    calls: list[tuple[str, date]] = []
    registry = _registry(calls, set())
    layers = ("bronze", "silver", "gold")
    run_days(settings, spark, [D1, D2], layers, registry=registry)
    calls.clear()
    # days run in order stay done
    summary = run_days(settings, spark, [D1, D2], layers, registry=registry)
    assert calls == [] and set(_status(summary).values()) == {DONE}
    # a backfill reruns D1 (`run-all --run-date D1 --rerun`, or silver.b alone for D1): the
    # tables it rewound are as of D1 now, so D2's earlier success no longer counts
    run_days(settings, spark, [D1], ("silver",), registry=registry, resume=False)
    calls.clear()
    run_days(settings, spark, [D2], layers, registry=registry)
    assert calls == [("silver.b", D2), ("gold.d", D2)]
    calls.clear()
    run_days(settings, spark, [D2], layers, registry=registry)
    assert calls == []


def test_a_day_an_earlier_command_left_failed_stops_the_job_until_it_is_caught_up(spark, settings):
    """A cron's `run-all --run-date D` each day: D1's failure must not be run past on D2 (the
    per-day jobs read their run date's delivery only, so D1's rows would never arrive)."""
    layers = ("bronze", "silver", "gold")
    run_days(settings, spark, [D1], layers, registry=_registry([], {"silver.b"}))
    calls: list[tuple[str, date]] = []
    summary = run_days(settings, spark, [D2], layers, registry=_registry(calls, set()))
    status = _status(summary)
    assert not summary.ok
    assert status[("silver.b", D2)] == SKIPPED and status[("gold.d", D2)] == SKIPPED
    assert status[("bronze.a", D2)] == SUCCEEDED and status[("gold.e", D2)] == SUCCEEDED
    assert (
        "SKIPPED  silver.b 2026-03-02: failed on 2026-03-01 and has not succeeded for a later "
        "day since: catch up with run-all --from 2026-03-01 --to 2026-03-02" in summary.describe()
    )
    assert ("silver.b", D2) not in calls
    # the catch-up the message gives
    calls.clear()
    summary = run_days(settings, spark, [D1, D2], layers, registry=_registry(calls, set()))
    assert summary.ok
    assert calls == [("silver.b", D1), ("gold.d", D1), ("silver.b", D2), ("gold.d", D2)]


def test_a_later_day_run_with_rerun_gives_the_failed_day_up(spark, settings):
    layers = ("bronze", "silver", "gold")
    run_days(settings, spark, [D1], layers, registry=_registry([], {"silver.b"}))
    calls: list[tuple[str, date]] = []
    assert run_days(
        settings, spark, [D2], layers, registry=_registry(calls, set()), resume=False
    ).ok
    calls.clear()
    summary = run_days(settings, spark, [D3], layers, registry=_registry(calls, set()))
    assert summary.ok
    assert ("silver.b", D3) in calls and ("gold.d", D3) in calls


def test_a_failed_rerun_of_a_day_is_not_given_up_by_successes_made_before_it(spark, settings):
    """D1 to D3 loaded, then a `--rerun` of D1 for a corrected delivery failed: D2's and D3's
    successes are older than that failure, so the daily cron must not run past it."""
    layers = ("bronze", "silver", "gold")
    D4 = date(2026, 3, 4)
    assert run_days(settings, spark, [D1, D2, D3], layers, registry=_registry([], set())).ok
    rerun = run_days(
        settings, spark, [D1], layers, registry=_registry([], {"silver.b"}), resume=False
    )
    assert _status(rerun)[("silver.b", D1)] == FAILED
    calls: list[tuple[str, date]] = []
    summary = run_days(settings, spark, [D4], layers, registry=_registry(calls, set()))
    status = _status(summary)
    assert status[("silver.b", D4)] == SKIPPED and status[("gold.d", D4)] == SKIPPED
    assert status[("bronze.a", D4)] == SUCCEEDED and status[("gold.e", D4)] == SUCCEEDED
    assert (
        "SKIPPED  silver.b 2026-03-04: failed on 2026-03-01 and has not succeeded for a later "
        "day since: catch up with run-all --from 2026-03-01 --to 2026-03-04" in summary.describe()
    )
    # a success for a later day made after the failure gives D1 up, as before
    assert run_days(settings, spark, [D4], layers, registry=_registry([], set()), resume=False).ok
    assert run_days(settings, spark, [date(2026, 3, 5)], layers, registry=_registry([], set())).ok


def test_layers_alone_still_wait_for_an_upstream_day_left_failed(spark, settings):
    """`run-all --layers gold` after bronze.a failed on D1: gold.d reads silver.b, which never got
    D1's rows (it was skipped, so the run log holds no failure of its own). The reason names the
    root job and the catch-up command, though neither layer is selected."""
    run_days(
        settings, spark, [D1], ("bronze", "silver", "gold"), registry=_registry([], {"bronze.a"})
    )
    calls: list[tuple[str, date]] = []
    summary = run_days(settings, spark, [D2], ("gold",), registry=_registry(calls, set()))
    status = _status(summary)
    assert status[("gold.d", D2)] == SKIPPED and status[("gold.e", D2)] == SUCCEEDED
    assert calls == [("gold.e", D2)]
    assert (
        "SKIPPED  gold.d 2026-03-02: after bronze.a, which failed on 2026-03-01 and has not "
        "succeeded for a later day since: catch up with run-all --from 2026-03-01 --to 2026-03-02"
        in summary.describe()
    )


def test_without_resume_everything_runs_again(spark, settings):
    calls: list[tuple[str, date]] = []
    registry = _registry(calls, set())
    run_days(settings, spark, [D1], ("bronze", "silver", "gold"), registry=registry)
    calls.clear()
    run_days(settings, spark, [D1], ("bronze", "silver", "gold"), registry=registry, resume=False)
    assert len(calls) == 5


def test_run_all_arguments_are_checked_before_anything_runs(spark, settings, capsys):
    from lakehouse.cli import main

    assert main(["run-all", "--from", "2026-03-01"]) == 2
    assert "--from needs --to" in capsys.readouterr().err
    assert main(["run-all", "--run-date", "2026-03-01", "--to", "2026-03-02"]) == 2
    assert "--to goes with --from" in capsys.readouterr().err
    assert main(["run-all", "--from", "2026-03-02", "--to", "2026-03-01"]) == 2
    assert "before --from" in capsys.readouterr().err
    assert main(["run-all", "--run-date", "2026-03-01", "--layers", "bronze,platinum"]) == 2
    assert "unknown layer(s) platinum" in capsys.readouterr().err


@pytest.mark.parametrize("debug", [False, True])
def test_lakehouse_debug_shows_a_failed_job_s_traceback(monkeypatch, capsys, debug):
    """README: a failure prints one line, `LAKEHOUSE_DEBUG=1` shows the traceback. Before: a
    job's failure (run, run-all, every spark-submit script and Airflow task) was caught to go
    on with the others and printed its one line only, whatever LAKEHOUSE_DEBUG said."""
    import lakehouse.registry
    import lakehouse.runtime
    from lakehouse import cli, orchestrate

    def deep_inside(*_args) -> JobResult:
        raise KeyError("deep_inside_a_job")

    if debug:
        monkeypatch.setenv("LAKEHOUSE_DEBUG", "1")
    else:
        monkeypatch.delenv("LAKEHOUSE_DEBUG", raising=False)
    monkeypatch.setattr(orchestrate, "run_job", deep_inside)
    monkeypatch.setattr(lakehouse.runtime, "run_job", deep_inside)
    monkeypatch.setattr(lakehouse.registry, "get_job", lambda _settings, name: name)
    job = Job("silver.b", "silver", "silver.b", deep_inside, ())

    outcome = orchestrate._run(job, None, None, D1)
    assert (outcome.status, outcome.reason) == (FAILED, "KeyError: 'deep_inside_a_job'")
    assert cli._run_one(None, None, "silver.b", D1) is False
    err = capsys.readouterr().err
    assert "silver.b" in err and "FAILED  KeyError: 'deep_inside_a_job'" in err
    assert err.count("Traceback (most recent call last)") == (2 if debug else 0)
    assert ("in deep_inside" in err) is debug
