"""Airflow DAG `lakehouse_daily`: every daily job of the lakehouse registry for one day.

One SparkSubmitOperator task per job of the daily layers (bronze, silver, One ID, gold; not
`ops.maintenance`), named like the job, running its script `jobs/<layer>_<name>.py --run-date
{{ ds }} --env <env>` (`jobs/run_job.py <job> ...` for a job without one: a source added in
conf/sources.yml); the task dependencies are the registry's. The DAG is built by importing
`lakehouse.registry`, so the scheduler needs the lakehouse wheel installed (`pip install
lakehouse-<version>-py3-none-any.whl[airflow]`; it brings pyspark, which is imported, never
started) and the bundle's conf/ (bronze jobs come from conf/sources.yml). Nothing here needs a
checkout: conf/ is found through LAKEHOUSE_CONF, else beside the bundle this file lives in.

Settings: dags/lakehouse_daily.yml beside this file (LAKEHOUSE_AIRFLOW_CONF overrides).
"""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.timetables.interval import CronDataIntervalTimetable

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

from lakehouse.config import CONF_DIR_VAR, LANDING_VAR, WAREHOUSE_VAR, load_settings, load_yaml
from lakehouse.registry import LAYER_ORDER, build_registry, in_order, spark_submit_script

HERE = Path(__file__).resolve().parent
CONFIG_VAR = "LAKEHOUSE_AIRFLOW_CONF"
EXPECTATIONS_VAR = "LAKEHOUSE_EXPECTATIONS"
KEYS = {
    "dag_id",
    "schedule",
    "start_date",
    "catchup",
    "max_active_runs",
    "depends_on_past",
    "retries",
    "retry_delay_minutes",
    "conn_id",
    "lakehouse_home",
    "env",
    "packages",
    "py_files",
    "conf",
    "env_vars",
}


def load_config(path: Path | None = None) -> dict[str, Any]:
    path = path or Path(os.environ.get(CONFIG_VAR) or HERE / "lakehouse_daily.yml")
    with path.open(encoding="utf-8") as fh:
        config = load_yaml(fh) or {}
    unknown, missing = sorted(set(config) - KEYS), sorted(KEYS - set(config))
    if unknown or missing:
        raise ValueError(f"{path}: unknown keys {unknown}, missing keys {missing}")
    env = config["env"]
    if not isinstance(env, str) or not env.strip():
        raise ValueError(f"{path}: env must name an environment (conf/<env>.yml), not {env!r}")
    for key in ("conf", "env_vars"):
        if not isinstance(config[key] or {}, dict):
            raise ValueError(f"{path}: {key} must be a mapping of names to values")
        # A value left blank would reach spark-submit as the text "None": a warehouse folder
        # named None on the driver's disk, or a Spark setting of "None".
        blank = sorted(str(k) for k, v in (config[key] or {}).items() if v is None)
        if blank:
            raise ValueError(
                f"{path}: {key} {', '.join(blank)} has no value: give one, or remove the line "
                "(an environment variable then comes from the scheduler's own environment)"
            )
    return config


def _home(config: dict[str, Any]) -> Path:
    return Path(config["lakehouse_home"] or HERE.parent).resolve()


def _wheel(home: Path, configured: str | None) -> str | None:
    if configured:
        return str(home / configured)
    from importlib import metadata

    version = metadata.version("lakehouse")
    for folder in (home, home / "dist"):
        found = sorted(folder.glob(f"lakehouse-{version}-*.whl"))
        if found:
            return str(found[-1])
    return None  # executors must then have lakehouse installed


def _packages(configured: str | None) -> str:
    if configured:
        return configured
    from lakehouse.spark import delta_package

    return delta_package()


def _flag(config: dict[str, Any], key: str) -> bool:
    """A YAML boolean: `catchup: "false"` (a string) would be true under bool()."""
    value = config[key]
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, not {value!r}")
    return value


def build_dag(config: dict[str, Any]) -> DAG:
    home = _home(config)
    conf_dir = Path(os.environ.get(CONF_DIR_VAR) or home / "conf")
    env = config["env"]
    # The paths the tasks will run with (env_vars, else the scheduler's own environment) are
    # what load_settings checks: a cluster environment without them fails here, on import, with
    # the variable's name, not in every task.
    task_env = {str(k): str(v) for k, v in (config["env_vars"] or {}).items()}
    saved = {var: os.environ.get(var) for var in (LANDING_VAR, WAREHOUSE_VAR)}
    try:
        for var in saved:
            if var in task_env:
                os.environ[var] = task_env[var]
        settings = load_settings(env, conf_dir)
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
    jobs = in_order(build_registry(settings), LAYER_ORDER)
    daily = {job.name for job in jobs}
    env_vars = {
        CONF_DIR_VAR: str(conf_dir),
        EXPECTATIONS_VAR: os.environ.get(EXPECTATIONS_VAR) or str(home / "expectations"),
        "LAKEHOUSE_ENV": env,
        **task_env,
    }
    start = config["start_date"]
    if isinstance(start, str):
        start = date.fromisoformat(start)
    dag = DAG(
        dag_id=config["dag_id"],
        description="lakehouse: every daily job (bronze, silver, One ID, gold) for one day",
        schedule=CronDataIntervalTimetable(config["schedule"], timezone="UTC"),
        start_date=datetime(start.year, start.month, start.day),
        catchup=_flag(config, "catchup"),
        max_active_runs=int(config["max_active_runs"]),
        default_args={
            "retries": int(config["retries"]),
            "retry_delay": timedelta(minutes=float(config["retry_delay_minutes"])),
            "depends_on_past": _flag(config, "depends_on_past"),
        },
        tags=["lakehouse"],
    )
    py_files = _wheel(home, config["py_files"])
    packages = _packages(config["packages"])
    tasks = {}
    for job in jobs:
        script, first_args = spark_submit_script(home / "jobs", job.name)
        tasks[job.name] = SparkSubmitOperator(
            task_id=job.name,
            dag=dag,
            doc=job.description,
            application=str(script),
            application_args=[*first_args, "--run-date", "{{ ds }}", "--env", env],
            name=f"lakehouse {job.name} {{{{ ds }}}}",
            conn_id=config["conn_id"],
            packages=packages,
            py_files=py_files,
            conf={str(k): str(v) for k, v in (config["conf"] or {}).items()},
            env_vars=env_vars,
        )
    for job in jobs:
        for dependency in job.depends_on:
            if dependency in daily:
                tasks[dependency] >> tasks[job.name]
    return dag


dag = build_dag(load_config())
