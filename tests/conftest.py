"""One local SparkSession per test process: local[2], few shuffle partitions, Delta on.

`make test` runs two pytest-xdist workers (`-n 2 --dist loadgroup`): most of a test's time is
the driver's own work (planning, Delta commits, Great Expectations), so two sessions keep both
cores busy. Each test module is one group (test_silver_jobs is two: its own marks), so its
module-scoped fixture is built once; the modules that share a session fixture of
tests/integration/conftest.py (the generated pipeline, the tiny day) are one group each, so it
is built once too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from pyspark import SparkContext
from pyspark.sql import SparkSession

from lakehouse.config import Settings, load_settings

# Modules that share a session fixture run on one worker, in this order (a module that changes
# the shared warehouse, as erasure does, comes last). The group is the longest chain of the
# suite: it goes first, to one worker, and everything else fills in on the other. (The tiny
# day's whole-day reference is built only by `make test-long`, whose one test uses it.)
SHARED_FIXTURE_GROUPS = {
    "pipeline": (
        "tests.integration.test_pipeline_generated",
        "tests.integration.test_gold_marts",
        "tests.integration.test_gold_people",
        "tests.integration.test_report",
        "tests.integration.test_erasure",
    ),
}
GROUP_OF = {m: g for g, modules in SHARED_FIXTURE_GROUPS.items() for m in modules}


def _module(item: pytest.Item) -> str:
    return item.module.__name__ if item.module else item.nodeid.split("::")[0]


# tryfirst: xdist's worker turns each item's xdist_group marker into its scope in its own
# collection hook; markers added after it would be ignored and a shared fixture built on both
# workers (the generated pipeline was, until this ran first).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        module = _module(item)
        item.add_marker(pytest.mark.xdist_group(GROUP_OF.get(module, module)))
    # xdist hands out groups in the order of their first test (with --no-loadscope-reorder).
    rank = {
        m: (g, i)
        for g, (_, modules) in enumerate(SHARED_FIXTURE_GROUPS.items())
        for i, m in enumerate(modules)
    }
    items.sort(key=lambda item: rank.get(_module(item), (len(rank), 0)))


# Tests run many small queries on a few hundred rows: compiling each plan to Java (whole-stage
# and expression codegen) and re-planning it at every stage (AQE) cost more than they save
# there. Measured on a tiny generated day through every job: 422 s as conf/local.yml has it,
# 327 s with these (2026-12-01). conf/local.yml keeps Spark's defaults: the demo and the
# benchmarks run in local mode on data where codegen pays. Results do not depend on them.
# PySpark 4 records the Python call site of every DataFrame call in the JVM (three Py4J round
# trips each, ~32,000 of a silver test's 182,000): kept for the jobs' error messages, off for
# tests (a silver test 145 s -> 129 s, the mean of three runs each, 2026-12-04).
# The parallel garbage collector instead of G1 was faster for two short sessions side by side and
# slower for the whole suite (some late tests 2-4x slower): not used (bench/RESULTS.md).
SMALL_DATA_CONF = {
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    "spark.sql.adaptive.enabled": "false",
    "spark.python.sql.dataFrameDebugging.enabled": "false",
}

# Spark's status store keeps the last 1,000 SQL executions with their plan graphs (and jobs,
# stages, tasks) for a UI the tests never open, in a JVM that lives the whole run: a few are
# enough.
STATUS_RETENTION = {
    "spark.sql.ui.retainedExecutions": "20",
    "spark.ui.retainedJobs": "50",
    "spark.ui.retainedStages": "50",
    "spark.ui.retainedTasks": "1000",
    "spark.ui.retainedDeadExecutors": "10",
}


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    from lakehouse.spark import build_session

    warehouse = tmp_path_factory.mktemp("catalog")
    settings = load_settings("local")
    conf = {
        **settings.spark.conf,
        **SMALL_DATA_CONF,
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        "spark.sql.warehouse.dir": str(warehouse),
        "spark.driver.memory": "3g",
        **STATUS_RETENTION,
    }
    spark_settings = settings.spark.model_copy(update={"master": "local[2]", "conf": conf})
    session = build_session(settings.model_copy(update={"spark": spark_settings}))
    yield session
    session.stop()


def _forget_delta_logs() -> None:
    """Drop Delta's cache of table logs (`DeltaLog.clearCache`, as Delta's own tests do).

    Delta keeps each table it opens for an hour, with its snapshots. A test JVM lives the whole
    run and opens thousands of tables in temporary folders. Measured after each test of
    tests/integration/test_silver_jobs.py (a full GC and the context cleaner's 5 s): 0.78-0.83
    GB of heap still live, 0.33-0.47 GB once the cache was dropped (2026-12-07). Kept, the
    cache filled a worker's 3 GB heap 22 minutes into `make test` ("Failed to allocate a page",
    then broadcast timeouts, then a stopped SparkContext) in two runs of a branch whose plans
    were a little larger.
    """
    context = SparkContext._active_spark_context  # the worker's session, if it has one yet
    if context is not None:
        context._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()


@pytest.fixture(autouse=True)
def _forget_tables_after_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test's tables are gone with its temporary folder; those of a shared fixture's modules
    are kept until the module ends (reopening them would cost each test a reload)."""
    yield
    if _module(request.node) not in GROUP_OF:
        _forget_delta_logs()


@pytest.fixture(autouse=True, scope="module")
def _forget_tables_after_module() -> Iterator[None]:
    yield
    _forget_delta_logs()


@pytest.fixture()
def settings_for(tmp_path, monkeypatch):
    """Settings whose landing and warehouse live in a fresh temporary folder."""

    def make(landing: str | os.PathLike | None = None) -> Settings:
        monkeypatch.setenv("LAKEHOUSE_LANDING", str(landing or tmp_path / "landing"))
        monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", str(tmp_path / "warehouse"))
        return load_settings("local")

    return make
