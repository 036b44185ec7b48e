"""dags/lakehouse_daily.py loads in a real Airflow and mirrors the job registry.

Airflow does not belong in the project's venv (its pins fight great-expectations' and its own
resolver takes minutes), so the test keeps a separate venv in .venv-airflow/ (ignored by git):
created once with this project's wheel and the `airflow` extra, reused afterwards; each run
reinstalls only the freshly built wheel (not editable: the DAG must work from the wheel alone,
as on an Airflow host). Then that venv's python loads `DagBag("dags/")` and prints the DAG's
tasks and upstream edges as JSON, which are compared with the registry here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from lakehouse.config import load_settings
from lakehouse.registry import LAYER_ORDER, build_registry, in_order

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-airflow"
STAMP = VENV / ".lakehouse-requirements"

pytestmark = pytest.mark.airflow

LOAD_DAGS = r"""
import json, sys
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag
from airflow.timetables.base import TimeRestriction

bag = DagBag(dag_folder=sys.argv[1], include_examples=False)
dags = {}
for dag_id, dag in bag.dags.items():
    first = dag.timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=True),
    )
    dags[dag_id] = {
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "first_ds": first.logical_date.strftime("%Y-%m-%d"),
        "first_run_after": first.run_after.isoformat() if hasattr(first, "run_after") else None,
        "tasks": {
            t.task_id: {
                "upstream": sorted(t.upstream_task_ids),
                "operator": type(t).__name__,
                "application": t.application,
                "application_args": t.application_args,
                "conn_id": t.conn_id if hasattr(t, "conn_id") else t._conn_id,
                "packages": t.packages if hasattr(t, "packages") else t._packages,
                "retries": t.retries,
                "env_vars": t.env_vars if hasattr(t, "env_vars") else t._env_vars,
            }
            for t in dag.tasks
        },
    }

# What load_config refuses: a blank value, a key given twice (each once in a copy of the file).
import importlib.util, pathlib, tempfile
folder = pathlib.Path(sys.argv[1])
spec = importlib.util.spec_from_file_location("lakehouse_daily_copy", folder / "lakehouse_daily.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
original = (folder / "lakehouse_daily.yml").read_text(encoding="utf-8")
edits = {
    "blank": original.replace("LAKEHOUSE_WAREHOUSE: hdfs:///lakehouse/warehouse",
                              "LAKEHOUSE_WAREHOUSE:"),
    "twice": original + "\nretries: 5\n",
    "no_env": original.replace("\nenv: cluster\n", "\nenv:\n"),
}
refused = {}
for name, text in edits.items():
    assert text != original, name
    path = pathlib.Path(tempfile.mkdtemp()) / "lakehouse_daily.yml"
    path.write_text(text, encoding="utf-8")
    try:
        module.load_config(path)
        refused[name] = None
    except Exception as exc:
        refused[name] = f"{type(exc).__name__}: {exc}"
print("RESULT " + json.dumps({"import_errors": {str(k): str(v) for k, v in
                                                bag.import_errors.items()}, "dags": dags,
                              "refused": refused}))
"""


def _requirements() -> str:
    """What the cached venv was built for: the project's dependencies and its airflow extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    spec = {
        "python": sys.version_info[:2],
        "dependencies": project["dependencies"],
        "airflow": project["optional-dependencies"]["airflow"],
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _pip(*args: str) -> None:
    subprocess.run(
        [str(VENV / "bin" / "python"), "-m", "pip", "--quiet", *args],
        check=True,
        timeout=900,
    )


def _airflow_venv(wheel: Path) -> dict[str, float]:
    timings = {}
    wanted = _requirements()
    python = VENV / "bin" / "python"
    if not python.exists() or not STAMP.exists() or STAMP.read_text() != wanted:
        started = time.monotonic()
        if VENV.exists():
            shutil.rmtree(VENV)
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(VENV)], check=True, timeout=300)
        _pip("install", "--upgrade", "pip")
        _pip("install", f"{wheel}[airflow]")
        STAMP.write_text(wanted)
        timings["venv_created_s"] = round(time.monotonic() - started, 1)
    started = time.monotonic()
    _pip("install", "--no-deps", "--force-reinstall", str(wheel))
    timings["wheel_reinstalled_s"] = round(time.monotonic() - started, 1)
    return timings


def test_dag_has_one_task_per_daily_job_with_the_registry_dependencies(tmp_path):
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("lakehouse-*.whl")
    timings = {"wheel_built_s": round(time.monotonic() - started, 1), **_airflow_venv(wheel)}

    script = tmp_path / "load_dags.py"
    script.write_text(LOAD_DAGS, encoding="utf-8")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LAKEHOUSE_", "AIRFLOW", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(
        AIRFLOW_HOME=str(tmp_path / "airflow_home"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="True",
    )
    loaded = time.monotonic()
    out = subprocess.run(
        [str(VENV / "bin" / "python"), str(script), str(ROOT / "dags")],
        cwd=tmp_path,  # not the checkout: lakehouse comes from the installed wheel
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    timings["dagbag_s"] = round(time.monotonic() - loaded, 1)
    print("airflow venv timings:", timings)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert out.returncode == 0 and lines, out.stdout[-3000:] + out.stderr[-3000:]
    result = json.loads(lines[-1].removeprefix("RESULT "))

    assert result["import_errors"] == {}
    assert set(result["dags"]) == {"lakehouse_daily"}
    # Before: a blank env var reached spark-submit as the text "None" (a warehouse folder named
    # None), and the second of two equal keys silently won.
    refused = result["refused"]
    assert "env_vars LAKEHOUSE_WAREHOUSE has no value" in (refused["blank"] or ""), refused
    assert "found the key 'retries' twice" in (refused["twice"] or ""), refused
    assert "env must name an environment" in (refused["no_env"] or ""), refused
    dag = result["dags"]["lakehouse_daily"]

    jobs = build_registry(load_settings("local"))
    daily = {job.name: job for job in in_order(jobs, LAYER_ORDER)}
    assert "ops.maintenance" in jobs and "ops.maintenance" not in daily
    expected = {
        name: sorted(d for d in job.depends_on if d in daily) for name, job in daily.items()
    }
    assert {task: t["upstream"] for task, t in dag["tasks"].items()} == expected

    assert dag["catchup"] is True
    assert dag["max_active_runs"] == 1
    assert dag["first_ds"] == "2026-03-01"  # the first run is for the start date itself
    for name, task in dag["tasks"].items():
        assert task["operator"] == "SparkSubmitOperator"
        script_path = Path(task["application"])
        assert script_path == ROOT / "jobs" / (name.replace(".", "_") + ".py")
        assert script_path.is_file()
        assert task["application_args"] == ["--run-date", "{{ ds }}", "--env", "cluster"]
        assert task["conn_id"] == "spark_default"
        assert re.fullmatch(r"io\.delta:delta-spark_\d+\.\d+_2\.13:[\d.]+", task["packages"])
        assert task["retries"] == 2
        assert task["env_vars"]["LAKEHOUSE_CONF"] == str(ROOT / "conf")
        assert task["env_vars"]["LAKEHOUSE_EXPECTATIONS"] == str(ROOT / "expectations")
