"""ops.maintenance: compaction, Z-ORDER, table properties, VACUUM and its retention guard."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from delta.tables import DeltaTable

from lakehouse.config import ConfigError, default_conf_dir, load_settings
from lakehouse.maintenance import (
    RETENTION_CHECK,
    MaintenanceSettings,
    VacuumSettings,
    maintain_table,
    time_travel_properties,
)
from lakehouse.registry import LAYER_ORDER, build_registry, in_order
from lakehouse.runtime import JobError, run_job
from lakehouse.tables import Tables

DAY = date(2026, 3, 1)


def _small_files(spark, tables: Tables, layer: str, name: str, columns: str, appends: int = 30):
    """`appends` commits of one small file each."""
    for i in range(appends):
        df = spark.range(i * 20, i * 20 + 20).selectExpr(*columns.format(i=i).split(";"))
        tables.append(df.coalesce(1), layer, name)


def _rows(spark, path: str) -> list:
    return sorted(spark.read.format("delta").load(path).collect())


def _parquet_on_disk(path: str) -> int:
    return sum(1 for p in Path(path).rglob("*.parquet") if "_delta_log" not in p.parts)


@pytest.fixture(scope="module")
def template(spark, tmp_path_factory) -> Path:
    """silver.orders from 30 one-file appends, gold.store_daily as 10 files: written once."""
    root = tmp_path_factory.mktemp("maintenance") / "warehouse"
    tables = Tables(spark, str(root))
    _small_files(
        spark,
        tables,
        "silver",
        "orders",
        "concat('O', id) AS order_key;date_add(DATE'2026-03-01', {i} % 3) AS business_date;"
        "CAST(id AS DECIMAL(18,2)) AS net_sales",
    )
    store_daily = spark.range(200).selectExpr(
        "concat('S', id % 7) AS store_code",
        "date_add(DATE'2026-03-01', CAST(id % 5 AS INT)) AS business_date",
        "id * 2 AS paid_orders",
    )
    tables.append(store_daily.repartition(10), "gold", "store_daily")
    return root


@pytest.fixture()
def warehouse(spark, settings_for, template):
    """A fresh copy of the template (Delta tables are relocatable folders) per test."""
    settings = settings_for()
    shutil.copytree(template, settings.warehouse)
    return settings, Tables(spark, settings.warehouse)


def test_job_is_registered_outside_the_daily_layers():
    jobs = build_registry(load_settings("local"))
    assert jobs["ops.maintenance"].layer == "ops"
    assert "ops" not in LAYER_ORDER
    assert "ops.maintenance" not in [j.name for j in in_order(jobs)]


def test_compacts_zorders_and_sets_change_data_feed(spark, warehouse):
    settings, tables = warehouse
    orders, store_daily = tables.path("silver", "orders"), tables.path("gold", "store_daily")
    rows_before = {p: _rows(spark, p) for p in (orders, store_daily)}

    result = run_job(build_registry(settings)["ops.maintenance"], settings, spark, DAY)

    report = {t["table"]: t for t in result.details["tables"]}
    assert report["silver.orders"]["files_before"] == 30
    assert report["silver.orders"]["files_after"] < 30
    assert report["gold.store_daily"]["files_before"] == 10
    assert report["gold.store_daily"]["files_after"] < 10
    for path, rows in rows_before.items():
        assert _rows(spark, path) == rows
        assert DeltaTable.forPath(spark, path).detail().first()["numFiles"] < 10
    assert all(t["seconds"] >= 0 for t in report.values())

    # Z-ORDER by the configured columns, recorded in the table's history.
    assert report["gold.store_daily"]["optimize"] == "zorder"
    history = DeltaTable.forPath(spark, store_daily).history().collect()
    optimize = [h for h in history if h["operation"] == "OPTIMIZE"]
    assert len(optimize) == 1
    assert optimize[0]["operationParameters"]["zOrderBy"] == '["store_code","business_date"]'
    # silver.orders lists order_key: Z-ORDER too.
    assert report["silver.orders"]["zorder_by"] == ["order_key"]

    # Change data feed on silver.orders; set once, not re-committed on the next run.
    props = DeltaTable.forPath(spark, orders).detail().first()["properties"]
    assert props["delta.enableChangeDataFeed"] == "true"
    assert report["silver.orders"]["properties_set"] == {"delta.enableChangeDataFeed": "true"}
    assert report["gold.store_daily"]["properties_set"] == {}

    # Configured tables that do not exist are skipped with a note; the run log has it all.
    skipped = {s["table"] for s in result.details["skipped"]}
    assert {"silver.order_lines", "gold.product_daily"} <= skipped
    log = tables.read("ops", "run_log").where("job = 'ops.maintenance'").collect()
    assert len(log) == 1 and log[0]["status"] == "SUCCEEDED"
    assert '"files_before": 30' in log[0]["details"]

    # A second run sets no property again (no empty commit).
    again = maintain_table(
        spark,
        settings.maintenance.model_copy(
            update={"optimize": False, "vacuum": VacuumSettings(enabled=False)}
        ),
        "silver",
        "orders",
        orders,
    )
    assert again["properties_set"] == {}
    assert again["optimize"] == "off"


def test_short_retention_is_refused_in_the_configuration(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(default_conf_dir(), conf)
    text = (conf / "maintenance.yml").read_text(encoding="utf-8")
    (conf / "maintenance.yml").write_text(
        text.replace("retention_hours: 168", "retention_hours: 24"), encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings("local", conf)
    message = str(caught.value)
    assert "maintenance.vacuum.retention_hours is 24 hours" in message
    assert "below Delta's default retention of 168 hours" in message
    assert "allow_below_default_retention: true" in message


def test_a_table_keeps_its_own_retention_and_a_short_one_is_refused_too(spark, warehouse):
    """Before: one retention for every table, so the portrait's and the SCD2 histories' older
    versions (read by time travel, needed by RESTORE) lost their files after 7 days."""
    assert load_settings("local").maintenance.retention_hours("gold.member_portrait") == 720
    settings, tables = warehouse
    maintenance = MaintenanceSettings.model_validate(
        {
            "optimize": False,
            "tables": {"gold.store_daily": {"retention_hours": 720}},
        }
    )
    longer = settings.model_copy(update={"maintenance": maintenance})
    result = run_job(build_registry(longer)["ops.maintenance"], longer, spark, DAY)
    report = {t["table"]: t for t in result.details["tables"]}
    assert report["gold.store_daily"]["vacuum_retention_hours"] == 720
    assert report["silver.orders"]["vacuum_retention_hours"] == 168
    # Delta refuses time travel beyond the table's deletedFileRetentionDuration (7 days unless
    # set), whatever VACUUM keeps. Before: the 30 days' files were kept and unreadable.
    kept = {"delta.deletedFileRetentionDuration": "interval 720 hours"}
    assert report["gold.store_daily"]["properties_set"] == kept
    path = tables.path("gold", "store_daily")
    assert DeltaTable.forPath(spark, path).detail().first()["properties"].items() >= kept.items()
    assert "delta.deletedFileRetentionDuration" not in report["silver.orders"]["properties_set"]
    again = run_job(build_registry(longer)["ops.maintenance"], longer, spark, DAY)
    assert {t["table"]: t for t in again.details["tables"]}["gold.store_daily"][
        "properties_set"
    ] == {}
    with pytest.raises(ValueError, match=r"tables\.gold\.store_daily\.retention_hours is 24"):
        MaintenanceSettings.model_validate(
            {"tables": {"gold.store_daily": {"retention_hours": 24}}}
        )


def test_short_retention_built_in_code_fails_the_job_before_touching_tables(spark, warehouse):
    settings, tables = warehouse
    vacuum = VacuumSettings().model_copy(update={"retention_hours": 1.0})
    short = settings.model_copy(
        update={"maintenance": settings.maintenance.model_copy(update={"vacuum": vacuum})}
    )
    with pytest.raises(JobError, match="below Delta's default retention of 168 hours"):
        run_job(build_registry(short)["ops.maintenance"], short, spark, DAY)
    orders = tables.path("silver", "orders")
    assert DeltaTable.forPath(spark, orders).detail().first()["numFiles"] == 30
    assert tables.read("ops", "run_log").first()["status"] == "FAILED"


def test_short_retention_allowed_explicitly_vacuums_and_says_so(spark, warehouse):
    settings, tables = warehouse
    maintenance = MaintenanceSettings.model_validate(
        {
            "vacuum": {"retention_hours": 0, "allow_below_default_retention": True},
            "tables": {"gold.store_daily": {"optimize": False, "vacuum": False}},
        }
    )
    allowed = settings.model_copy(update={"maintenance": maintenance})
    orders = tables.path("silver", "orders")
    assert _parquet_on_disk(orders) == 30

    result = run_job(build_registry(allowed)["ops.maintenance"], allowed, spark, DAY)

    report = {t["table"]: t for t in result.details["tables"]}
    assert report["silver.orders"]["optimize"] == "compaction"
    # The compacted-away files are gone from disk at once (retention 0), the rows are not.
    assert _parquet_on_disk(orders) == report["silver.orders"]["files_after"]
    assert spark.read.format("delta").load(orders).count() == 600
    assert RETENTION_CHECK in " ".join(report["silver.orders"]["notes"])
    assert report["gold.store_daily"]["optimize"] == "off"
    assert report["gold.store_daily"]["vacuum_retention_hours"] is None
    # Delta's check is on again for everybody else.
    assert spark.conf.get(RETENTION_CHECK, "true") == "true"


def test_time_travel_reaches_as_far_back_as_vacuum_keeps_files():
    assert time_travel_properties(None) == time_travel_properties(168) == {}
    assert time_travel_properties(720) == {
        "delta.deletedFileRetentionDuration": "interval 720 hours"
    }
    # Beyond Delta's 30 days of log, the log is kept as long (a version needs its log entry).
    assert time_travel_properties(1000.5) == {
        "delta.deletedFileRetentionDuration": "interval 60030 minutes",
        "delta.logRetentionDuration": "interval 60030 minutes",
    }


def test_a_table_that_fails_leaves_what_was_done_to_the_others_in_the_run_log(
    spark, warehouse, monkeypatch
):
    """README: the run log's details list per table the files before and after. Before: one
    failed table made the job log `{}`, the other tables' work (and any VACUUM note) lost."""
    import json

    import lakehouse.maintenance as maintenance

    settings, tables = warehouse
    real = maintenance.maintain_table

    def store_daily_fails(spark, config, layer, name, path):
        if f"{layer}.{name}" == "gold.store_daily":
            raise RuntimeError("disk full")
        return real(spark, config, layer, name, path)

    monkeypatch.setattr(maintenance, "maintain_table", store_daily_fails)
    with pytest.raises(JobError, match=r"failed for 1 of .*gold\.store_daily \(RuntimeError"):
        run_job(build_registry(settings)["ops.maintenance"], settings, spark, DAY)
    [row] = tables.read("ops", "run_log").collect()
    details = json.loads(row["details"])
    assert row["status"] == "FAILED"
    assert details["failed"] == ["gold.store_daily (RuntimeError: disk full)"]
    done = {t["table"]: t for t in details["tables"]}
    assert "gold.store_daily" not in done
    assert done["silver.orders"]["files_before"] == 30
    assert done["silver.orders"]["files_after"] < 30
