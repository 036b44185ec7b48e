"""Exact duplicates within a file are marked; equal lines in different files are not."""

from __future__ import annotations

from chispa import assert_df_equality

from lakehouse.silver.dedup import mark_exact_duplicates


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
