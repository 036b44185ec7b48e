"""A real Spark standalone cluster on 127.0.0.1 runs a day's bronze layer through spark-submit, as
in production, and ends with the same tables as local mode.

The master and two workers (1 core, 1 GiB each) come from the installed pyspark distribution
(`<pyspark>/bin/spark-class ...deploy.master.Master` / `...deploy.worker.Worker`; the pip package
has no start-master.sh) and are stopped in the fixture's teardown, also when the test fails.
The day runs as `spark-submit jobs/run_all.py --run-date D --env cluster --layers bronze` with the
Delta jars of the local jar cache (`--jars`), the freshly built wheel (`--py-files`) and the paths
in LAKEHOUSE_* variables for driver and executors. Every bronze job must succeed, and every table
must hold the same rows as a local-mode run of the same landing, run ids and run times aside.

Why bronze only: it is the one layer whose Python runs on the executors (the parsing of the
delivered files, `rdd.flatMap` in bronze/ingest.py), so it is what needs the wheel shipped with
`--py-files`, the executors' Python and their LAKEHOUSE_* variables; it also writes and commits
Delta tables from executors, reads the landing zone from them and runs the gates, as every later
layer does. Silver, One ID and gold are DataFrame plans run by the JVM, the same in local mode
(every test) and on a cluster. The whole day on the cluster took 28 minutes of a 75-minute suite
on a slow machine (2.6 times local mode), and pushed CI past its limit.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lakehouse.config import load_settings
from lakehouse.registry import build_registry, in_order
from lakehouse.spark import cached_jars, delta_package
from lakehouse.tables import Tables
from tests.integration.compare import data_tables, differences
from tests.integration.conftest import (
    ROOT,
    TINY_DAY,
    TINY_SALT,
    run_tiny_reference,
    tiny_landing,
)

pytestmark = pytest.mark.cluster

HOST = "127.0.0.1"


@dataclass
class BronzeDay:
    """The tiny day's landing, its copy of conf/ and the local run of its bronze layer."""

    landing: Path
    conf: Path
    reference: Path
    jobs: set[str]


@pytest.fixture(scope="module")
def bronze_day(spark, tmp_path_factory) -> BronzeDay:
    root = tmp_path_factory.mktemp("bronze_day")
    landing, conf = tiny_landing(root)
    reference = root / "reference"
    settings, summary, _ = run_tiny_reference(spark, landing, conf, reference, ("bronze",))
    jobs = {job.name for job in in_order(build_registry(settings), ("bronze",))}
    assert {o.job for o in summary.outcomes} == jobs
    return BronzeDay(landing, conf, reference, jobs)


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


def test_a_days_bronze_on_a_standalone_cluster_equals_local_mode(
    cluster, spark, bronze_day, tmp_path
):
    cluster_wh = tmp_path / "cluster_warehouse"
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path)]
    subprocess.run([*build, str(ROOT)], check=True, timeout=600)
    (wheel,) = tmp_path.glob("lakehouse-*.whl")

    paths = {
        "LAKEHOUSE_ENV": "cluster",
        "LAKEHOUSE_CONF": str(bronze_day.conf),
        "LAKEHOUSE_EXPECTATIONS": str(ROOT / "expectations"),
        "LAKEHOUSE_LANDING": str(bronze_day.landing),
        "LAKEHOUSE_WAREHOUSE": str(cluster_wh),
        # gold.member_portrait pseudonymises PII with a secret salt from the environment.
        "LAKEHOUSE_PII_SALT": TINY_SALT,
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
        "--run-date", TINY_DAY.isoformat(), "--env", "cluster", "--layers", "bronze",
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
    print(f"cluster run {time.monotonic() - started:.0f}s")
    (tmp_path / "spark-submit.log").write_text(submitted.stdout + submitted.stderr)
    assert submitted.returncode == 0, submitted.stdout[-3000:] + submitted.stderr[-3000:]

    # The day ran on the cluster: one application, granted the two workers' cores.
    status = _status(cluster.webui)
    apps = status.get("completedapps", []) + status.get("activeapps", [])
    assert len(apps) == 1 and apps[0]["cores"] == 2, apps

    # Every bronze job succeeded there, as in the local run (the fixture asserts that one).
    cluster_log = Tables(spark, str(cluster_wh)).read("ops", "run_log")
    succeeded = {r["job"] for r in cluster_log.where("status = 'SUCCEEDED'").collect()}
    assert succeeded == bronze_day.jobs

    # Every table holds the same rows as the local run's (run ids aside).
    tables = data_tables(spark, str(bronze_day.reference))
    assert {layer for layer, _ in tables} == {"bronze"} and len(tables) > len(bronze_day.jobs)
    assert not differences(spark, str(bronze_day.reference), str(cluster_wh))
