"""Compare two warehouses table by table, leaving aside the columns that say when or by which
run a row was written (run ids, ingest times): what remains must be the same rows, as many times."""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse.maintenance import warehouse_tables

RUN_COLUMNS = {
    "_run_id",
    "run_id",
    "_ingest_time",
    "ingest_time",
    "ingested_at",
    "_ingested_at",
    "loaded_at",
    "_loaded_at",
    "updated_run_id",
    "_updated_at",
    "run_time",
    "start_time",
    "end_time",
    "seconds",
    "checked_at",
    "computed_at",
    "built_at",
    "generated_at",
}
RUN_COLUMN_SUFFIXES = ("_run_id", "_ingest_time")


def table_rows(spark: SparkSession, path: str) -> tuple[list[str], list[tuple]]:
    """The table's columns (run columns aside) and its rows as sorted JSON text, duplicates kept."""
    df = spark.read.format("delta").load(path)
    keep = [c for c in df.columns if c not in RUN_COLUMNS and not c.endswith(RUN_COLUMN_SUFFIXES)]
    # Compare values as text: maps and structs sort and compare as their JSON.
    as_text = [F.to_json(F.struct(F.col(f"`{c}`"))).alias(c) for c in keep]
    return keep, sorted(tuple(r) for r in df.select(*as_text).collect())


def data_tables(spark: SparkSession, warehouse: str) -> list[tuple[str, str]]:
    """Every (layer, table) of the warehouse but the ops layer (run logs, gate results: they
    record each attempt, so a crashed and resumed run rightly has more of them)."""
    return [t for t in warehouse_tables(spark, warehouse) if t[0] != "ops"]


def differences(spark: SparkSession, expected: str, actual: str) -> list[str]:
    """One line per table whose columns or rows differ between two warehouses (empty: equal)."""
    expected_tables, actual_tables = data_tables(spark, expected), data_tables(spark, actual)
    found = []
    if expected_tables != actual_tables:
        missing = sorted(set(expected_tables) - set(actual_tables))
        extra = sorted(set(actual_tables) - set(expected_tables))
        found.append(f"tables differ: missing {missing}, extra {extra}")
    for layer, name in sorted(set(expected_tables) & set(actual_tables)):
        want_cols, want = table_rows(spark, f"{expected}/{layer}/{name}")
        got_cols, got = table_rows(spark, f"{actual}/{layer}/{name}")
        if want_cols != got_cols:
            found.append(f"{layer}.{name}: columns {want_cols} != {got_cols}")
        elif want != got:
            lost = [r for r in set(want) if want.count(r) > got.count(r)][:3]
            extra = [r for r in set(got) if got.count(r) > want.count(r)][:3]
            found.append(
                f"{layer}.{name}: {len(want)} expected rows, {len(got)} rows; "
                f"lost or fewer {lost}; extra or doubled {extra}"
            )
    return found
