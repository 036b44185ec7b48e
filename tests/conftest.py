"""One local SparkSession for the whole test run: local[2], few shuffle partitions, Delta on."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession

from lakehouse.config import Settings, load_settings


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    from lakehouse.spark import build_session

    warehouse = tmp_path_factory.mktemp("catalog")
    settings = load_settings("local")
    conf = {
        **settings.spark.conf,
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        "spark.sql.warehouse.dir": str(warehouse),
        "spark.driver.memory": "2g",
    }
    spark_settings = settings.spark.model_copy(update={"master": "local[2]", "conf": conf})
    session = build_session(settings.model_copy(update={"spark": spark_settings}))
    yield session
    session.stop()


@pytest.fixture()
def settings_for(tmp_path, monkeypatch):
    """Settings whose landing and warehouse live in a fresh temporary folder."""

    def make(landing: str | os.PathLike | None = None) -> Settings:
        monkeypatch.setenv("LAKEHOUSE_LANDING", str(landing or tmp_path / "landing"))
        monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", str(tmp_path / "warehouse"))
        return load_settings("local")

    return make
