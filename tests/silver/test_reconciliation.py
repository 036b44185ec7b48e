"""Reconciliation: every delivered bronze row is accepted, a duplicate or quarantined, once."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakehouse.silver.sales_job import (
    _bronze_amounts,
    _map_skus,
    _mismatch,
    accepted_side,
    bronze_side,
    reconciliation_counts,
    superseded_lines,
    with_totals,
)

COORDS_DDL = "_source_file string, _line_no int"
SIDE_DDL = (
    "dataset string, _source_file string, _line_no int, _duplicate boolean, _amount decimal(18,2)"
)
COUNTS_DDL = (
    "dataset string, bronze_rows long, duplicate_rows long, quarantined_rows long, "
    "accepted_rows long, bronze_amount decimal(28,2), accepted_amount decimal(28,2), "
    "quarantined_amount decimal(28,2)"
)


def _d(text: str) -> Decimal:
    return Decimal(text)


def test_bronze_side_marks_exact_duplicates_and_superseded_lines(spark):
    bronze = spark.createDataFrame(
        [("f", 1, None, "10.00"), ("f", 2, 1, "10.00"), ("f", 3, None, "x"), ("f", 4, None, "5")],
        "_source_file string, _line_no int, _duplicate_of int, paid string",
    )
    superseded = spark.createDataFrame([("f", 3), ("f", 3)], COORDS_DDL)
    got = bronze_side(
        bronze,
        "tmall_orders",
        superseded=superseded,
        amount=F.col("paid").try_cast("decimal(18,2)"),
    )
    expected = spark.createDataFrame(
        [
            ("tmall_orders", "f", 1, False, _d("10.00")),
            ("tmall_orders", "f", 2, True, _d("10.00")),
            ("tmall_orders", "f", 3, True, None),
            ("tmall_orders", "f", 4, False, _d("5.00")),
        ],
        SIDE_DDL,
    )
    assert_df_equality(got.orderBy("_line_no"), expected, ignore_nullable=True)


def test_counts_split_bronze_into_accepted_duplicates_and_quarantined(spark):
    bronze = spark.createDataFrame(
        [
            ("orders", "o", 1, False, _d("10.00")),
            ("orders", "o", 2, True, _d("10.00")),  # exact duplicate of line 1
            ("orders", "o", 3, False, _d("-4.50")),  # quarantined
            ("orders", "o", 4, False, None),  # unreadable amount, quarantined
            ("members", "m", 1, False, None),
            ("members", "m", 2, False, None),
        ],
        SIDE_DDL,
    )
    accepted = spark.createDataFrame(
        [("orders", _d("10.00")), ("members", None)], "dataset string, _amount decimal(18,2)"
    )
    # The same line may be quarantined by several rules; a duplicate's coordinates never count.
    removed = spark.createDataFrame([("o", 3), ("o", 3), ("o", 4), ("o", 2), ("m", 2)], COORDS_DDL)
    got = reconciliation_counts(
        bronze, accepted, removed, {"orders": True, "members": False, "empty": True}
    )
    expected = spark.createDataFrame(
        [
            ("empty", 0, 0, 0, 0, _d("0.00"), _d("0.00"), _d("0.00")),
            ("members", 2, 0, 1, 1, None, None, None),
            ("orders", 4, 1, 2, 1, _d("15.50"), _d("10.00"), _d("5.50")),
        ],
        COUNTS_DDL,
    )
    assert_df_equality(got.orderBy("dataset"), expected, ignore_nullable=True)


def test_a_row_lost_before_the_merge_does_not_reconcile(spark):
    bronze = spark.createDataFrame(
        [("orders", "o", 1, False, _d("10.00")), ("orders", "o", 2, False, _d("3.00"))], SIDE_DDL
    )
    accepted = accepted_side(
        spark.createDataFrame([(_d("10.00"),)], "paid_amount decimal(18,2)"),
        "orders",
        "paid_amount",
    )
    removed = spark.createDataFrame([], COORDS_DDL)
    got = with_totals(reconciliation_counts(bronze, accepted, removed, {"orders": True}))
    [row] = got.collect()
    assert (row.bronze_rows, row.accounted_rows) == (2, 1)
    assert (row.bronze_amount, row.accounted_amount) == (_d("13.00"), _d("10.00"))
    assert _mismatch(row) == (
        "orders: bronze 2 rows != accepted 1 + duplicates 0 + quarantined 0 (1); "
        "bronze amount 13.00 != accepted 10.00 + quarantined 0.00"
    )


def test_totals_leave_datasets_without_amounts_null(spark):
    counts = spark.createDataFrame([("members", 3, 1, 1, 1, None, None, None)], COUNTS_DDL)
    [row] = with_totals(counts).collect()
    assert (row.accounted_rows, row.accounted_amount) == (3, None)
    assert _mismatch(row) is None


def test_superseded_lines_are_the_delivered_lines_a_model_collapsed(spark):
    unique = spark.createDataFrame(
        [("f", 1, "A"), ("f", 2, "A"), ("f", 3, "B")], "_source_file string, _line_no int, k string"
    )
    conformed = spark.createDataFrame(
        [("f", 2, "A"), ("f", 3, "B")], "_source_file string, _line_no int, k string"
    )
    expected = spark.createDataFrame([("f", 1)], COORDS_DDL)
    assert_df_equality(superseded_lines(unique, conformed), expected, ignore_nullable=True)


def test_a_jd_line_stays_one_line_when_its_product_has_two_versions(spark):
    lines = spark.createDataFrame(
        [("JD:1", "1", "JD", "100012345", "SKU-1"), ("JD:1", "2", "JD", "nope", "nope")],
        "order_key string, line_id string, platform string, platform_sku_code string, "
        "outer_sku_id string",
    )
    v1, v2 = date(2026, 3, 1), date(2026, 3, 2)
    products = spark.createDataFrame(
        [("SKU-1", "6901234567892", v1, v2, False), ("SKU-1", "6901234567892", v2, None, True)],
        "sku_id string, barcode string, valid_from date, valid_to date, is_current boolean",
    )
    sku_map = spark.createDataFrame(
        [], "platform string, platform_sku_code string, sku_id string, snapshot_date date"
    )
    got = _map_skus(lines, sku_map, products.where("is_current"), products)
    expected = spark.createDataFrame(
        [("JD:1", "1", "SKU-1", True), ("JD:1", "2", None, False)],
        "order_key string, line_id string, sku_id string, sku_mapped boolean",
    )
    assert_df_equality(
        got.select("order_key", "line_id", "sku_id", "sku_mapped").orderBy("line_id"),
        expected,
        ignore_nullable=True,
    )


def test_a_delisted_product_maps_only_when_no_current_product_does(spark):
    """OLD-1 left the product snapshots on D2. JD line 1's platform code maps to it, but its
    outerSkuId names current NEW-1: NEW-1 (a current product always wins). Line 2 has no outer
    id: OLD-1, the last of its stock. POS line 3 scans OLD-1's barcode: OLD-1. Before the past
    products counted, lines 2 and 3 were unknown SKUs."""
    v1, v2 = date(2026, 3, 1), date(2026, 3, 2)
    lines = spark.createDataFrame(
        [
            ("JD:1", "1", "JD", "100099", "NEW-1"),
            ("JD:1", "2", "JD", "100099", None),
            ("POS:S1:1", "3", "POS", "6900000000001", None),
        ],
        "order_key string, line_id string, platform string, platform_sku_code string, "
        "outer_sku_id string",
    )
    products = spark.createDataFrame(
        [("OLD-1", "6900000000001", v1, v2, False), ("NEW-1", "6900000000002", v1, None, True)],
        "sku_id string, barcode string, valid_from date, valid_to date, is_current boolean",
    )
    sku_map = spark.createDataFrame(
        [("JD", "100099", "OLD-1", v2)],
        "platform string, platform_sku_code string, sku_id string, snapshot_date date",
    )
    got = _map_skus(lines, sku_map, products.where("is_current"), products)
    assert sorted((r.line_id, r.sku_id, r.sku_mapped) for r in got.collect()) == [
        ("1", "NEW-1", True),
        ("2", "OLD-1", True),
        ("3", "OLD-1", True),
    ]


def test_a_bronze_line_amount_beyond_the_money_type_is_null_not_an_error(spark):
    """Bronze's Tmall line amount is quantity x price; at the edge of decimal(18,2) the product
    overflows. Null (the line is quarantined by its price rule, and null adds to neither side)
    rather than an ANSI cast error that fails the job."""
    df = spark.createDataFrame(
        [("2", "9999999999999999.99"), ("3", "10.00")], "quantity string, unit_price string"
    )
    got = [r[0] for r in df.select(_bronze_amounts()["tmall_line"]).collect()]
    assert got == [None, _d("30.00")]
