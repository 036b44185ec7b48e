"""Exact duplicates within a file are marked; equal lines in different files are not. What a
corrected file no longer holds is dropped."""

from __future__ import annotations

from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakehouse.silver.dedup import (
    day_file,
    dropped_by_correction,
    mark_exact_duplicates,
    named_by_unreadable_lines,
)


def test_second_copy_in_the_same_file_points_at_the_first(spark):
    df = spark.createDataFrame(
        [("f1", 2, "h1"), ("f1", 5, "h1"), ("f1", 3, "h2"), ("f2", 2, "h1")],
        "_source_file string, _line_no int, _record_hash string",
    )
    got = mark_exact_duplicates(df).orderBy("_source_file", "_line_no")
    expected = spark.createDataFrame(
        [("f1", 2, "h1", None), ("f1", 3, "h2", None), ("f1", 5, "h1", 2), ("f2", 2, "h1", None)],
        "_source_file string, _line_no int, _record_hash string, _duplicate_of int",
    )
    assert_df_equality(got, expected, ignore_nullable=True)


def test_a_file_s_day_is_its_name_without_a_correction_s_number(spark):
    names = [
        "file:/l/pos_sales/dt=2026-03-03/pos_S001_20260301_2.csv",
        "file:/l/pos_sales/dt=2026-03-01/pos_S001_20260301.csv",
        "pos_S_12_20260301_10.csv",
        "pos_S_12_20260301.csv",
        "inventory_20260301_3.csv",
    ]
    got = spark.createDataFrame([(n,) for n in names], "f string").select(
        day_file(F.col("f")).alias("day")
    )
    assert [r.day for r in got.collect()] == [
        "pos_S001_20260301.csv",
        "pos_S001_20260301.csv",
        "pos_S_12_20260301.csv",
        "pos_S_12_20260301.csv",
        "inventory_20260301.csv",
    ]


def test_a_correction_drops_the_published_lines_of_its_store_day_that_no_file_holds(spark):
    """Only the corrected store-day's lines go, and only those no line of today holds (a line
    delivered again, even one today's gate quarantines, keeps its published version)."""
    published = spark.createDataFrame(
        [
            ("POS:S1:T1", "1", "file:/l/dt=2026-03-01/pos_S1_20260301.csv"),
            ("POS:S1:T1", "2", "file:/l/dt=2026-03-01/pos_S1_20260301.csv"),
            ("POS:S1:T2", "1", "file:/l/dt=2026-03-01/pos_S1_20260301.csv"),
            ("POS:S1:T3", "1", "file:/l/dt=2026-03-02/pos_S1_20260302.csv"),
            ("POS:S2:T1", "1", "file:/l/dt=2026-03-01/pos_S2_20260301.csv"),
        ],
        "order_key string, line_id string, _source_file string",
    )
    corrected = spark.createDataFrame(
        [("file:/l/dt=2026-03-03/pos_S1_20260301_2.csv",)], "source_file string"
    )
    delivered = spark.createDataFrame(
        [("POS:S1:T1", "1"), ("POS:S1:T2", "1"), ("POS:S2:T9", "1")],
        "order_key string, line_id string",
    )
    got = dropped_by_correction(published, corrected, delivered, ["order_key", "line_id"])
    assert [(r.order_key, r.line_id) for r in got.collect()] == [("POS:S1:T1", "2")]


def test_a_row_a_broken_line_of_the_correction_names_keeps_its_published_version(spark):
    """Before: a line of the correction bronze could not read (a field short, bad bytes) never
    reached `delivered`, so the row it still holds was dropped as taken back. A broken line
    keeps a row only when it names each of the row's codes (any spelling `normalise.code`
    reads alike), in a file of the row's day."""
    published = spark.createDataFrame(
        [
            ("03-01", "WH-01", "SKU-1", "file:/l/dt=2026-03-01/inventory_20260301.csv"),
            ("03-01", "WH-02", "SKU-1", "file:/l/dt=2026-03-01/inventory_20260301.csv"),
            ("03-01", "WH-03", "SKU-1", "file:/l/dt=2026-03-01/inventory_20260301.csv"),
            ("03-02", "WH-02", "SKU-1", "file:/l/dt=2026-03-02/inventory_20260302.csv"),
        ],
        "day string, location_code string, sku_id string, _source_file string",
    )
    corrected = spark.createDataFrame(
        [
            ("file:/l/dt=2026-03-03/inventory_20260301_2.csv",),
            ("file:/l/dt=2026-03-03/inventory_20260302_2.csv",),
        ],
        "source_file string",
    )
    delivered = spark.createDataFrame(
        [("03-01", "WH-01", "SKU-1")], "day string, location_code string, sku_id string"
    )
    unreadable = spark.createDataFrame(
        [
            (
                "file:/l/dt=2026-03-03/inventory_20260301_2.csv",
                '2026-03-01," wh-02 ",WAREHOUSE,sku-1,30',
            ),
            (
                "file:/l/dt=2026-03-03/inventory_20260301_2.csv",
                "2026-03-01,WH-03,WAREHOUSE,SKU-9,5",
            ),
            ("file:/l/dt=2026-03-03/inventory_20260301_2.csv", None),
        ],
        "source_file string, raw_text string",
    )
    key = ["day", "location_code", "sku_id"]
    named_by = [F.col("location_code"), F.col("sku_id")]
    got = dropped_by_correction(published, corrected, delivered, key, unreadable, named_by)
    assert sorted((r.day, r.location_code) for r in got.collect()) == [
        ("03-01", "WH-03"),  # the broken line names WH-03 with another SKU
        ("03-02", "WH-02"),  # the 1 March file's line names WH-02, not its 2 March row
    ]
    assert dropped_by_correction(published, corrected, delivered, key).count() == 3
    # A code the row does not have (a touch without member_id) is no condition.
    no_sku = [F.col("location_code"), F.lit(None).cast("string")]
    named = named_by_unreadable_lines(published, unreadable, key, no_sku)
    assert sorted((r.day, r.location_code) for r in named.collect()) == [
        ("03-01", "WH-02"),
        ("03-01", "WH-03"),
    ]


def test_a_line_of_the_correction_with_an_unreadable_key_part_keeps_the_rows_it_may_be(spark):
    """Before: a line of the correction whose line number (or ticket) could not be read came
    with a null key part, which the anti-join never matched, so the published line it restates
    was dropped as taken back while the gate quarantined the new one. Such a line keeps every
    row of its day's file its other key parts match; rows it cannot be still go."""
    day1 = "file:/l/dt=2026-03-01/pos_S1_20260301.csv"
    published = spark.createDataFrame(
        [
            ("POS:S1:T1", "1", day1),
            ("POS:S1:T1", "2", day1),
            ("POS:S1:T2", "1", day1),
            ("POS:S1:T3", "1", day1),
            ("POS:S1:T4", "1", "file:/l/dt=2026-03-02/pos_S1_20260302.csv"),
        ],
        "order_key string, line_id string, _source_file string",
    )
    corrected = spark.createDataFrame(
        [
            ("file:/l/dt=2026-03-03/pos_S1_20260301_2.csv",),
            ("file:/l/dt=2026-03-03/pos_S1_20260302_2.csv",),
        ],
        "source_file string",
    )
    fix1 = "file:/l/dt=2026-03-03/pos_S1_20260301_2.csv"
    delivered = spark.createDataFrame(
        [
            ("POS:S1:T1", None, fix1),  # line number unreadable: T1's lines 1 and 2 may be it
            (None, "1", fix1),  # ticket unreadable: any line 1 of 1 March may be it
            ("POS:S1:T9", "3", fix1),
        ],
        "order_key string, line_id string, _source_file string",
    )
    got = dropped_by_correction(published, corrected, delivered, ["order_key", "line_id"])
    assert sorted((r.order_key, r.line_id) for r in got.collect()) == [("POS:S1:T4", "1")]
    assert got.columns == published.columns
    # Without a file to tie it to a day, a partly keyed line may be a row of any day.
    anywhere = delivered.drop("_source_file").where(F.col("order_key").isNotNull())
    got = dropped_by_correction(published, corrected, anywhere, ["order_key", "line_id"])
    assert sorted((r.order_key, r.line_id) for r in got.collect()) == [
        ("POS:S1:T2", "1"),
        ("POS:S1:T3", "1"),
        ("POS:S1:T4", "1"),
    ]
