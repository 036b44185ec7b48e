"""Inventory snapshot on hand-built bronze rows: typing, valuation, flags, one row per key."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from chispa import assert_df_equality

from lakehouse.silver.inventory import INVENTORY_COLUMNS, inventory_daily

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
