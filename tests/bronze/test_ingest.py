"""Bronze transforms on a handful of hand-made files, compared with chispa."""

from __future__ import annotations

from datetime import date, datetime

from chispa import assert_df_equality
from pyspark.sql.types import BinaryType, StringType, StructField, StructType

from lakehouse.bronze.ingest import (
    Lineage,
    bronze_rows,
    file_date,
    file_outcomes,
    parse_files,
    quarantined_lines,
)
from lakehouse.config import Dataset

FILES = StructType([StructField("path", StringType()), StructField("content", BinaryType())])
POS = Dataset(
    file_pattern=r"^pos_(?P<store>.+)_(?P<date>\d{8})(?:_(?P<seq>\d+))?\.csv$",
    format="csv",
    encoding="utf-8-sig",
    columns={"store_code": "store_code", "qty": "qty"},
)
LINEAGE = Lineage("pos_sales", date(2026, 3, 2), "run-1", datetime(2026, 3, 2, 1, 0, 0))


def _files(spark, *files: tuple[str, bytes]):
    return spark.createDataFrame(list(files), FILES)


def test_file_date_comes_from_the_name():
    assert file_date(POS, "pos_S_01_20260301.csv") == "2026-03-01"
    assert file_date(POS, "pos_S01_20261399.csv") is None
    assert file_date(POS, "other.csv") is None


def test_rows_carry_lineage_and_bad_lines_go_to_quarantine(spark):
    files = _files(
        spark,
        ("file:/l/pos_S01_20260301.csv", "\ufeffstore_code,qty\nS01,2\nS01\nS01,-1\n".encode()),
        ("file:/l/pos_S02_20260302.csv", b"store_code,qty\n"),
    )
    parsed = parse_files(files, POS, 1000)
    dates = {"file:/l/pos_S01_20260301.csv": "2026-03-01", "file:/l/pos_S02_20260302.csv": None}
    rows = bronze_rows(parsed, POS, LINEAGE, dates).select(
        "store_code", "qty", "_file_name", "_file_date", "_line_no", "_delivery_date", "_run_id"
    )
    expected = spark.createDataFrame(
        [
            ("S01", "2", "pos_S01_20260301.csv", date(2026, 3, 1), 2, date(2026, 3, 2), "run-1"),
            ("S01", "-1", "pos_S01_20260301.csv", date(2026, 3, 1), 4, date(2026, 3, 2), "run-1"),
        ],
        "store_code string, qty string, _file_name string, _file_date date, _line_no int, "
        "_delivery_date date, _run_id string",
    )
    assert_df_equality(rows, expected, ignore_row_order=True, ignore_nullable=True)

    bad = quarantined_lines(parsed, "pos_sales", LINEAGE).select(
        "dataset", "file_name", "line_no", "reason", "raw_text"
    )
    expected_bad = spark.createDataFrame(
        [("pos_sales", "pos_S01_20260301.csv", 3, "wrong_field_count", "S01")],
        "dataset string, file_name string, line_no int, reason string, raw_text string",
    )
    assert_df_equality(bad, expected_bad, ignore_nullable=True)

    outcomes = file_outcomes(parsed).orderBy("path")
    expected_outcomes = spark.createDataFrame(
        [("file:/l/pos_S01_20260301.csv", 3, 2, 1), ("file:/l/pos_S02_20260302.csv", 0, 0, 0)],
        "path string, data_lines long, rows long, quarantined long",
    )
    assert_df_equality(outcomes, expected_outcomes, ignore_nullable=True)


def test_json_records_keep_nested_structure(spark):
    spec = Dataset(
        file_pattern=r"^jd_orders_(?P<date>\d{8})\.jsonl$",
        format="jsonl",
        encoding="utf-8",
        schema="orderId STRING, itemInfoList ARRAY<STRUCT<skuId: STRING, itemTotal: STRING>>",
    )
    files = _files(
        spark,
        (
            "file:/l/jd_orders_20260301.jsonl",
            b'{"orderId": 230012345678, "itemInfoList": [{"skuId": "9", "itemTotal": 3}], '
            b'"x": 1}\n',
        ),
    )
    rows = bronze_rows(
        parse_files(files, spec, 1000),
        spec,
        LINEAGE,
        {"file:/l/jd_orders_20260301.jsonl": "2026-03-01"},
    )
    row = rows.select("orderId", "itemInfoList", "_extra_fields").first()
    assert row.orderId == "230012345678"
    assert row.itemInfoList[0].asDict() == {"skuId": "9", "itemTotal": "3"}
    assert row._extra_fields == {"x": "1"}
