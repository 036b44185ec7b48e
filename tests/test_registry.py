"""The job registry: dependency order, and a spark-submit script for every job."""

from __future__ import annotations

import ast
from pathlib import Path

from lakehouse.config import load_settings
from lakehouse.registry import LAYER_ORDER, build_registry, in_order

JOBS_DIR = Path(__file__).resolve().parents[1] / "jobs"


def test_every_job_has_a_spark_submit_script_naming_it():
    jobs = build_registry(load_settings("local"))
    scripts = {}
    for path in JOBS_DIR.glob("*.py"):
        if path.name == "run_all.py":  # the whole day, not one job
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
