"""Table helpers: latest-wins MERGE that reruns leave unchanged."""

from __future__ import annotations

from datetime import date

from lakehouse.tables import Tables, newer_when

DDL = "key string, updated int, delivered date, state string"


def test_upsert_keeps_the_newest_state_and_reruns_change_nothing(spark, tmp_path):
    tables = Tables(spark, str(tmp_path))
    newer = newer_when(["updated", "delivered"])
    day1 = spark.createDataFrame(
        [("A", 1, date(2026, 3, 1), "created"), ("B", 1, date(2026, 3, 1), "paid")], DDL
    )
    day2 = spark.createDataFrame(
        [("A", 2, date(2026, 3, 2), "paid"), ("B", 0, date(2026, 3, 2), "late, older")], DDL
    )
    tables.upsert(day1, "silver", "t", ["key"], newer)
    tables.upsert(day2, "silver", "t", ["key"], newer)
    first = sorted((r.key, r.state) for r in tables.read("silver", "t").collect())
    assert first == [("A", "paid"), ("B", "paid")]
    tables.upsert(day1, "silver", "t", ["key"], newer)  # rerun of an earlier day
    tables.upsert(day2, "silver", "t", ["key"], newer)  # rerun of the same day
    assert sorted((r.key, r.state) for r in tables.read("silver", "t").collect()) == first


def test_newer_when_breaks_ties_left_to_right():
    condition = newer_when(["a", "b"])
    assert condition.startswith("(s.`a` > t.`a`")
    assert "s.`b` > t.`b`" in condition


def test_register_points_the_name_at_the_warehouse_last_written(spark, tmp_path):
    """Registering is skipped once done for a path, but another warehouse re-points the name."""
    df = spark.createDataFrame([("A", 1, date(2026, 3, 1), "x")], DDL)
    first, second = Tables(spark, str(tmp_path / "one")), Tables(spark, str(tmp_path / "two"))
    first.append(df, "silver", "registered")
    second.append(df.union(df), "silver", "registered")
    assert spark.table("silver.registered").count() == 2
    first.append(df, "silver", "registered")  # back to the first warehouse: 2 rows there
    assert spark.table("silver.registered").count() == 2
    location = spark.sql("DESCRIBE TABLE EXTENDED silver.registered").where(
        "col_name = 'Location'"
    )
    assert location.first()[1].rstrip("/").endswith("one/silver/registered")
