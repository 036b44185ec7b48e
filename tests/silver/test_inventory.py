"""Inventory snapshot on hand-built bronze rows: typing, valuation, flags, one row per key."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from chispa import assert_df_equality

from lakehouse.config import load_settings
from lakehouse.quality.gate import run_gate
from lakehouse.runtime import JobContext
from lakehouse.silver.entity_jobs import parameters
from lakehouse.silver.inventory import INVENTORY_COLUMNS, INVENTORY_KEY, inventory_daily

D1 = date(2026, 3, 1)
FIELDS = [
    "snapshot_date",
    "location_code",
    "location_type",
    "sku_id",
    "on_hand_qty",
    "reserved_qty",
    "in_transit_qty",
    "unit_cost",
]
LINEAGE_DDL = "_delivery_date date, _source_file string, _line_no int, _record_hash string"
SRC = "file:/landing/inventory/dt=2026-03-01/inventory_20260301.csv"


def test_inventory_daily_types_values_and_flags(spark):
    rows = [
        ("2026-03-01", "WH-01", "WAREHOUSE", "SKU-1", "24", "2", "0", "63.79"),
        ("2026-03-01", " s0001 ", "store", " sku-1", "-30", "0", "", "59.92"),  # negative
        ("2026-03-01", "S9999", "STORE", "SKU-1", "3.0", "0", "1", "10.00"),  # unknown store
        ("2026-03-01", "WH-02", "WAREHOUSE", "SKU-404", "x", "0", "0", "abc"),  # unknown sku
        ("2026-03-01", "S0001", "WAREHOUSE", "SKU-2", "1", "0", "0", "1.00"),  # type mismatch
        ("2026-03-01", "WH-01", "WAREHOUSE", "SKU-1", "25", "2", "0", "63.79"),  # later line wins
    ]
    bronze = spark.createDataFrame(
        [(*r, D1, SRC, i + 2, f"h{i}") for i, r in enumerate(rows)],
        ", ".join(f"{c} string" for c in FIELDS) + ", " + LINEAGE_DDL,
    )
    skus = spark.createDataFrame([("SKU-1",), ("SKU-2",)], "sku_id string")
    stores = spark.createDataFrame([("S0001",)], "store_code string")
    got = inventory_daily(bronze, skus, stores)
    assert got.columns == INVENTORY_COLUMNS
    expected = spark.createDataFrame(
        [
            (
                D1,
                "WH-01",
                "SKU-1",
                "WAREHOUSE",
                25,
                2,
                0,
                Decimal("63.79"),
                Decimal("1594.75"),
                False,
                True,
                True,
                7,
            ),
            (
                D1,
                "S0001",
                "SKU-1",
                "STORE",
                -30,
                0,
                None,
                Decimal("59.92"),
                Decimal("-1797.60"),
                True,
                True,
                True,
                3,
            ),
            (
                D1,
                "S9999",
                "SKU-1",
                "STORE",
                3,
                0,
                1,
                Decimal("10.00"),
                Decimal("30.00"),
                False,
                True,
                False,
                4,
            ),
            (D1, "WH-02", "SKU-404", "WAREHOUSE", None, 0, 0, None, None, False, False, True, 5),
            (
                D1,
                "S0001",
                "SKU-2",
                "WAREHOUSE",
                1,
                0,
                0,
                Decimal("1.00"),
                Decimal("1.00"),
                False,
                True,
                False,
                6,
            ),
        ],
        "snapshot_date date, location_code string, sku_id string, location_type string, "
        "on_hand_qty int, reserved_qty int, in_transit_qty int, unit_cost decimal(18,2), "
        "value_at_cost decimal(18,2), negative_on_hand boolean, sku_known boolean, "
        "location_known boolean, _line_no int",
    )
    assert_df_equality(
        got.select(*expected.columns), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_a_warehouse_holds_more_than_a_store_before_its_stock_is_absurd(spark, tmp_path):
    """The plausibility limits of conf/silver.yml per location type: before, one limit (5,000
    units of a SKU) quarantined a warehouse's normal 12,000 units of a best seller."""
    rows = [
        ("WH-01", "WAREHOUSE", "SKU-1", "12000", "3000", "20000"),  # a best seller: kept
        ("WH-02", "WAREHOUSE", "SKU-1", "50000000", "0", "0"),  # absurd
        ("WH-02", "WAREHOUSE", "SKU-2", "10", "0", "-1"),  # negative in transit
        ("S0001", "STORE", "SKU-1", "40", "2", "6000"),  # absurd for a store
        ("S0001", "STORE", "SKU-2", "6000", "0", "0"),  # absurd for a store
        ("S0002", "STORE", "SKU-2", "12", "0", "0"),
    ]
    bronze = spark.createDataFrame(
        [("2026-03-01", *r, "10.00", D1, SRC, i + 2, f"h{i}") for i, r in enumerate(rows)],
        ", ".join(f"{c} string" for c in FIELDS) + ", " + LINEAGE_DDL,
    )
    skus = spark.createDataFrame([("SKU-1",), ("SKU-2",)], "sku_id string")
    stores = spark.createDataFrame([("S0001",), ("S0002",)], "store_code string")
    settings = load_settings("local")
    ctx = JobContext(spark=spark, settings=settings, run_date=D1, run_id="r", tables=None)
    gate = run_gate(
        inventory_daily(bronze, skus, stores),
        "silver.inventory_daily",
        key_columns=INVENTORY_KEY,
        run_id="r",
        run_date=D1,
        parameters=parameters(ctx),
        references={"silver.products": skus, "silver.stores": stores},
    )
    try:
        held = {
            (json.loads(r.record)["location_code"], json.loads(r.record)["sku_id"], r.expectation)
            for r in gate.quarantined.collect()
        }
        kept = {(r.location_code, r.sku_id) for r in gate.good.collect()}
    finally:
        gate.release()
    assert kept == {("WH-01", "SKU-1"), ("S0002", "SKU-2")}
    assert held == {
        ("WH-02", "SKU-1", "warehouse_on_hand_plausible"),
        ("WH-02", "SKU-2", "warehouse_in_transit_plausible"),
        ("S0001", "SKU-1", "in_transit_plausible"),
        ("S0001", "SKU-2", "on_hand_plausible"),
    }
