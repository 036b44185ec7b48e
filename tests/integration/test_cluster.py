"""A real Spark standalone cluster on 127.0.0.1 runs a day through spark-submit, as in production,
and ends with the same tables as local mode.

The master and two workers (1 core, 1 GiB each) come from the installed pyspark distribution
(`<pyspark>/bin/spark-class ...deploy.master.Master` / `...deploy.worker.Worker`; the pip package
has no start-master.sh) and are stopped in the fixture's teardown, also when the test fails.
The day runs as `spark-submit jobs/run_all.py --run-date D --env cluster` with the Delta jars of
the local jar cache (`--jars`), the freshly built wheel (`--py-files`) and the paths in
LAKEHOUSE_* variables for driver and executors; then the same day runs in local mode in this
process, into a second warehouse, and every table of the local warehouse (bronze to gold, as far
as the jobs work) must hold the same rows in both, run ids and run times aside.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lakehouse.config import Paths, load_settings
from lakehouse.datagen import generate
from lakehouse.maintenance import warehouse_tables
from lakehouse.orchestrate import run_days
from lakehouse.spark import cached_jars, delta_package
from lakehouse.tables import Tables

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
DAY = date(2026, 3, 1)
HOST = "127.0.0.1"
PII_SALT = "cluster-test-salt-0123456789abcdef"
# Columns that say when or by which run a row was written, not what it holds.
RUN_COLUMNS = {
    "_run_id",
    "run_id",
    "_ingest_time",
    "ingest_time",
    "ingested_at",
    "_ingested_at",
    "loaded_at",
    "_loaded_at",
    "updated_run_id",
    "_updated_at",
    "run_time",
    "start_time",
    "end_time",
    "seconds",
    "checked_at",
    "computed_at",
    "built_at",
    "generated_at",
}
RUN_COLUMN_SUFFIXES = ("_run_id", "_ingest_time")


@dataclass
class Cluster:
    master_url: str
    webui: str
    logs: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def _spark_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "PYSPARK_"))}
    env.update(SPARK_HOME=str(_spark_home()), SPARK_LOCAL_IP=HOST, SPARK_NO_DAEMONIZE="1")
    return env


def _status(webui: str) -> dict:
    with urllib.request.urlopen(f"{webui}/json/", timeout=5) as response:
        return json.load(response)


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in reversed(processes):
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
    deadline = time.monotonic() + 20
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("standalone")
    spark_class = str(_spark_home() / "bin" / "spark-class")
    port, webui_port = _free_port(), _free_port()
    master_url, webui = f"spark://{HOST}:{port}", f"http://{HOST}:{webui_port}"
    processes: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> None:
        log = (root / f"{name}.log").open("wb")
        processes.append(
            subprocess.Popen(
                [spark_class, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_spark_env(),
                cwd=root,
                start_new_session=True,  # its own process group: killed whole in teardown
            )
        )

    try:
        start(
            "master",
            "org.apache.spark.deploy.master.Master",
            "--host", HOST, "--port", str(port), "--webui-port", str(webui_port),
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while True:
            try:
                _status(webui)
                break
            except OSError:
                if time.monotonic() > deadline or processes[0].poll() is not None:
                    raise RuntimeError(
                        "the Spark master did not start: "
                        + (root / "master.log").read_text(errors="replace")[-2000:]
                    ) from None
                time.sleep(1)
        for i in (1, 2):
            work = root / f"worker{i}"
            work.mkdir()
            start(
                f"worker{i}",
                "org.apache.spark.deploy.worker.Worker", master_url,
                "--host", HOST, "--cores", "1", "--memory", "1g",
                "--webui-port", str(_free_port()), "--work-dir", str(work),
            )  # fmt: skip
        while True:
            workers = [w for w in _status(webui).get("workers", []) if w["state"] == "ALIVE"]
            if len(workers) == 2:
                break
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                logs = "".join(
                    p.read_text(errors="replace")[-1500:] for p in sorted(root.glob("*.log"))
                )
                raise RuntimeError(f"the two workers did not register: {logs}")
            time.sleep(1)
        yield Cluster(master_url, webui, root)
    finally:
        _stop(processes)


def _table_rows(spark, path: str) -> tuple[list[str], list[tuple]]:
    df = spark.read.format("delta").load(path)
    keep = [c for c in df.columns if c not in RUN_COLUMNS and not c.endswith(RUN_COLUMN_SUFFIXES)]
    # Compare values as text: maps and structs sort and compare as their JSON.
    as_text = [F.to_json(F.struct(F.col(f"`{c}`"))).alias(c) for c in keep]
    return keep, sorted(tuple(r) for r in df.select(*as_text).collect())


def test_a_day_on_a_standalone_cluster_equals_local_mode(cluster, spark, tmp_path, monkeypatch):
    landing, cluster_wh, local_wh = (
        tmp_path / "landing",
        tmp_path / "cluster_warehouse",
        tmp_path / "local_warehouse",
    )
    generate(landing, scale=0.01, days=1, start=DAY, seed=5)

    # The configuration both runs read is a copy of conf/ (LAKEHOUSE_CONF, as the bundle's
    # would be) with two changes for a tiny landing on 2 cores: fewer shuffle partitions than
    # cluster.yml's 64 (minutes of empty tasks), and a higher unmapped-SKU threshold (the
    # generator's few unknown SKUs among a dozen order lines are far above 5 %).
    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", conf)
    for name, old, new in (
        ("cluster.yml", 'spark.sql.shuffle.partitions: "64"', 'spark.sql.shuffle.partitions: "4"'),
        ("silver.yml", "unmapped_rate_threshold: 0.05", "unmapped_rate_threshold: 0.5"),
    ):
        text = (conf / name).read_text(encoding="utf-8")
        assert old in text, (name, old)
        (conf / name).write_text(text.replace(old, new), encoding="utf-8")
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path)]
    subprocess.run([*build, str(ROOT)], check=True, timeout=600)
    (wheel,) = tmp_path.glob("lakehouse-*.whl")

    paths = {
        "LAKEHOUSE_ENV": "cluster",
        "LAKEHOUSE_CONF": str(conf),
        "LAKEHOUSE_EXPECTATIONS": str(ROOT / "expectations"),
        "LAKEHOUSE_LANDING": str(landing),
        "LAKEHOUSE_WAREHOUSE": str(cluster_wh),
        # gold.member_portrait pseudonymises PII with a secret salt from the environment.
        "LAKEHOUSE_PII_SALT": PII_SALT,
    }
    jars = cached_jars(load_settings("local"))
    jar_args = ["--jars", ",".join(jars)] if jars else ["--packages", delta_package()]
    command = [
        str(_spark_home() / "bin" / "spark-submit"),
        "--master", cluster.master_url,
        "--deploy-mode", "client",
        "--name", "lakehouse cluster test",
        *jar_args,
        "--py-files", str(wheel),
        "--driver-memory", "1536m",
        "--executor-memory", "900m",
        "--total-executor-cores", "2",
        "--conf", f"spark.driver.host={HOST}",
        "--conf", f"spark.driver.bindAddress={HOST}",
        "--conf", f"spark.pyspark.python={sys.executable}",
        "--conf", f"spark.pyspark.driver.python={sys.executable}",
        *[arg for k, v in paths.items() for arg in ("--conf", f"spark.executorEnv.{k}={v}")],
        str(ROOT / "jobs" / "run_all.py"),
        "--run-date", DAY.isoformat(), "--env", "cluster",
    ]  # fmt: skip
    started = time.monotonic()
    submitted = subprocess.run(
        command,
        env={**_spark_env(), **paths},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    cluster_seconds = time.monotonic() - started
    (tmp_path / "spark-submit.log").write_text(submitted.stdout + submitted.stderr)

    # The same day in local mode, in this process, into a second warehouse.
    monkeypatch.setenv("LAKEHOUSE_CONF", str(conf))
    monkeypatch.setenv("LAKEHOUSE_PII_SALT", PII_SALT)
    monkeypatch.setenv("LAKEHOUSE_EXPECTATIONS", str(ROOT / "expectations"))
    settings = load_settings("local", conf).model_copy(
        update={"paths": Paths(landing=str(landing), warehouse=str(local_wh))}
    )
    started = time.monotonic()
    local = run_days(settings, spark, [DAY], resume=False)
    local_seconds = time.monotonic() - started
    print(f"cluster run {cluster_seconds:.0f}s, local run {local_seconds:.0f}s")

    # The day ran on the cluster: one application, granted the two workers' cores.
    status = _status(cluster.webui)
    apps = status.get("completedapps", []) + status.get("activeapps", [])
    assert len(apps) == 1 and apps[0]["cores"] == 2, apps

    # Both fail (or succeed) on the same jobs: run_all exits non-zero exactly when one failed.
    cluster_log = Tables(spark, str(cluster_wh)).read("ops", "run_log")
    cluster_failed = {r["job"] for r in cluster_log.where("status = 'FAILED'").collect()}
    local_failed = {o.job for o in local.outcomes if o.status == "FAILED"}
    assert cluster_failed == local_failed, submitted.stderr[-4000:]
    assert (submitted.returncode == 0) == (not local_failed and local.ok), (
        submitted.stdout[-3000:] + submitted.stderr[-3000:]
    )
    succeeded = {r["job"] for r in cluster_log.where("status = 'SUCCEEDED'").collect()}
    assert {"bronze.pos_sales", "silver.sales", "oneid.link", "oneid.golden"} <= succeeded

    local_tables = [t for t in warehouse_tables(spark, str(local_wh)) if t[0] != "ops"]
    cluster_tables = [t for t in warehouse_tables(spark, str(cluster_wh)) if t[0] != "ops"]
    assert local_tables == cluster_tables
    assert {layer for layer, _ in local_tables} >= {"bronze", "silver", "oneid"}
    different = []
    for layer, name in local_tables:
        local_cols, local_rows = _table_rows(spark, f"{local_wh}/{layer}/{name}")
        cluster_cols, cluster_rows = _table_rows(spark, f"{cluster_wh}/{layer}/{name}")
        assert local_cols == cluster_cols, f"{layer}.{name}"
        if local_rows != cluster_rows:
            only_local = sorted(set(local_rows) - set(cluster_rows))[:3]
            only_cluster = sorted(set(cluster_rows) - set(local_rows))[:3]
            different.append(
                f"{layer}.{name}: {len(local_rows)} local rows, {len(cluster_rows)} cluster rows; "
                f"only local {only_local}; only cluster {only_cluster}"
            )
    print(f"compared {len(local_tables)} tables: {', '.join(f'{a}.{b}' for a, b in local_tables)}")
    assert not different, "\n".join(different)
