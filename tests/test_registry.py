"""The job registry: dependency order, and a spark-submit script for every job."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from lakehouse.config import load_settings
from lakehouse.registry import LAYER_ORDER, build_registry, in_order, spark_submit_script

JOBS_DIR = Path(__file__).resolve().parents[1] / "jobs"


def test_every_job_has_a_spark_submit_script_naming_it():
    jobs = build_registry(load_settings("local"))
    scripts = {}
    for path in JOBS_DIR.glob("*.py"):
        if path.name in ("run_all.py", "run_job.py"):  # the whole day; any job by name
            continue
        calls = [
            node.args[0].value
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "run_job_main"
            and isinstance(node.args[0], ast.Constant)
        ]
        assert len(calls) == 1, path
        scripts[calls[0]] = path.name
    assert set(scripts) == set(jobs)
    for name, file in scripts.items():
        assert file == name.replace(".", "_") + ".py"


def test_jobs_run_after_what_they_depend_on_layer_by_layer():
    jobs = build_registry(load_settings("local"))
    ordered = [j.name for j in in_order(jobs)]
    assert set(ordered) == {n for n, j in jobs.items() if j.layer in LAYER_ORDER}
    for job in ordered:
        for dependency in jobs[job].depends_on:
            assert ordered.index(dependency) < ordered.index(job), (dependency, job)
    layers = [jobs[n].layer for n in ordered]
    assert layers == sorted(layers, key=LAYER_ORDER.index)
    oneid = [n for n in ordered if jobs[n].layer == "oneid"]
    assert oneid == ["oneid.link", "oneid.golden"]


def test_a_job_without_its_own_script_runs_through_the_one_for_any_job():
    """Before: the DAG pointed a source added in conf/sources.yml at `jobs/bronze_<source>.py`,
    which does not exist, and the task failed every run."""
    assert spark_submit_script(JOBS_DIR, "silver.sales") == (JOBS_DIR / "silver_sales.py", [])
    script, first = spark_submit_script(JOBS_DIR, "bronze.douyin_orders")
    assert (script, first) == (JOBS_DIR / "run_job.py", ["bronze.douyin_orders"])
    shown = subprocess.run(
        [sys.executable, str(script), *first, "--help"], capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0 and "--run-date" in shown.stdout, shown.stderr
    bare = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert bare.returncode == 2 and "usage: run_job.py <job>" in bare.stderr
