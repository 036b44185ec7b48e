"""Table helpers: latest-wins MERGE that reruns leave unchanged."""

from __future__ import annotations

from datetime import date
from functools import reduce

import pytest
from pyspark.sql import DataFrame

from lakehouse.tables import Tables, file_order, in_few_files, newer_when

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


def test_upsert_with_a_delete_flag_deletes_in_the_same_commit_and_writes_no_steering(
    spark, tmp_path
):
    tables = Tables(spark, str(tmp_path))
    ddl = "key string, state string, _merge_delete boolean, _merge_force boolean"
    first = spark.createDataFrame(
        [("A", "a", False, False), ("B", "b", False, False), ("Z", "never", True, False)], ddl
    )
    tables.upsert(first, "silver", "f", ["key"], "false", delete_flag="_merge_delete")
    written = tables.read("silver", "f")
    assert written.columns == ["key", "state"]
    assert sorted(tuple(r) for r in written.collect()) == [("A", "a"), ("B", "b")]
    version = tables.version("silver", "f")
    second = spark.createDataFrame(
        [("A", None, True, False), ("B", "b2", False, True), ("C", "c", False, False)], ddl
    )
    # B updates only because the steering column says so: `false` alone would keep it.
    tables.upsert(second, "silver", "f", ["key"], "s._merge_force", delete_flag="_merge_delete")
    assert tables.version("silver", "f") == version + 1
    assert sorted(tuple(r) for r in tables.read("silver", "f").collect()) == [
        ("B", "b2"),
        ("C", "c"),
    ]
    with pytest.raises(ValueError, match="_merge_"):
        tables.upsert(second, "silver", "f", ["key"], "true", delete_flag="state")


def test_newer_when_breaks_ties_left_to_right():
    condition = newer_when(["a", "b"])
    assert condition.startswith("(s.`a` > t.`a`")
    assert "s.`b` > t.`b`" in condition


def test_file_order_compares_numbers_in_file_names_as_numbers(spark):
    names = [
        "pos_S0010_20260302.csv",
        "tmall_orders_20260302_10.csv",
        "tmall_orders_20260302.csv",
        "pos_S0002_20260302.csv",
        "tmall_orders_20260302_9.csv",
        "tmall_orders_20260302_2.csv",
    ]
    df = spark.createDataFrame([(n,) for n in names], "_source_file string")
    got = [r._source_file for r in df.orderBy(file_order()).collect()]
    assert got == [
        "pos_S0002_20260302.csv",
        "pos_S0010_20260302.csv",
        "tmall_orders_20260302.csv",
        "tmall_orders_20260302_2.csv",
        "tmall_orders_20260302_9.csv",
        "tmall_orders_20260302_10.csv",
    ]


def test_upsert_tie_on_the_change_time_goes_to_the_later_export_part(spark, tmp_path):
    tables = Tables(spark, str(tmp_path))
    newer = newer_when(["updated", "_source_file"])
    ddl = "key string, updated int, _source_file string, state string"
    part = "tmall_orders_20260302_{}.csv".format
    tables.upsert(
        spark.createDataFrame([("A", 1, part(9), "9"), ("B", 1, part(10), "10")], ddl),
        "silver",
        "parts",
        ["key"],
        newer,
    )
    tables.upsert(
        spark.createDataFrame([("A", 1, part(10), "10"), ("B", 1, part(9), "9")], ddl),
        "silver",
        "parts",
        ["key"],
        newer,
    )
    got = sorted((r.key, r.state) for r in tables.read("silver", "parts").collect())
    assert got == [("A", "10"), ("B", "10")]


def test_register_points_the_name_at_the_warehouse_last_written(spark, tmp_path):
    """Registering is skipped once done for a path, but another warehouse re-points the name."""
    df = spark.createDataFrame([("A", 1, date(2026, 3, 1), "x")], DDL)
    first, second = Tables(spark, str(tmp_path / "one")), Tables(spark, str(tmp_path / "two"))
    first.append(df, "silver", "registered")
    second.append(df.union(df), "silver", "registered")
    assert spark.table("silver.registered").count() == 2
    first.append(df, "silver", "registered")  # back to the first warehouse: 2 rows there
    assert spark.table("silver.registered").count() == 2
    location = spark.sql("DESCRIBE TABLE EXTENDED silver.registered").where("col_name = 'Location'")
    assert location.first()[1].rstrip("/").endswith("one/silver/registered")


def test_every_write_returns_the_version_it_committed_as_history_shows(spark, tmp_path):
    from delta.tables import DeltaTable

    tables = Tables(spark, str(tmp_path))
    assert tables.version("ops", "events") is None
    rows = spark.createDataFrame([(1, "a"), (2, "b")], "id int, v string")
    versions = [
        tables.append(rows, "ops", "events"),
        tables.replace_where(rows.where("id = 1"), "ops", "events", "id = 1"),
        tables.upsert(rows.selectExpr("id", "'c' AS v"), "ops", "events", ["id"], "true"),
        tables.delete_matching(rows.where("id = 2"), "ops", "events", ["id"]),
    ]
    assert versions == [0, 1, 2, 3]
    history = DeltaTable.forPath(spark, tables.path("ops", "events")).history(1)
    assert tables.version("ops", "events") == history.first()["version"] == 3


def test_version_sees_a_commit_not_made_through_tables(spark, tmp_path):
    """A plain Delta write (another job, a user) commits; the version follows it."""
    tables = Tables(spark, str(tmp_path))
    tables.append(spark.range(1), "ops", "log")
    assert tables.version("ops", "log") == 0
    spark.range(1).write.format("delta").mode("append").save(tables.path("ops", "log"))
    assert tables.version("ops", "log") == 1


def test_in_few_files_coalesces_a_union_to_one_partition_per_core(spark):
    """A union keeps every input's partitions (a write task each); the small tables are written
    from one partition per core, the same rows."""
    union = reduce(DataFrame.unionByName, [spark.range(0, 10, 1, 3) for _ in range(4)])
    few = in_few_files(union)
    assert union.rdd.getNumPartitions() == 12
    assert few.rdd.getNumPartitions() == spark.sparkContext.defaultParallelism < 12
    assert sorted(few.collect()) == sorted(union.collect())


def test_jobs_replacing_their_own_rows_of_one_partition_side_by_side_both_land(
    spark, tmp_path, caplog
):
    """Airflow runs silver jobs side by side; each replaces its own rows of the day's
    silver.quarantine partition. Delta judges conflicts by partition, so one of two such
    commits failed (ConcurrentAppendException) though their rows never meet; now it is
    written again."""
    import threading

    tables = Tables(spark, str(tmp_path))
    ddl = "tbl string, d date, n int"
    day = date(2026, 3, 1)
    seed = spark.createDataFrame([("seed", day, 0)], ddl)
    tables.replace_where(seed, "silver", "q", "tbl = 'seed'", ["d"])
    errors: list[BaseException] = []

    def job(name: str) -> None:
        try:
            for n in range(1, 4):
                rows = spark.createDataFrame([(name, day, n)] * 3, ddl)
                tables.replace_where(rows, "silver", "q", f"tbl = '{name}' AND d = '{day}'", ["d"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=job, args=(name,)) for name in ("members", "sales")]
    with caplog.at_level("WARNING", logger="lakehouse.tables"):
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    got = sorted((r.tbl, r.n) for r in tables.read("silver", "q").collect())
    assert got == [("members", 3)] * 3 + [("sales", 3)] * 3 + [("seed", 0)]
    print("conflicts retried:", sum("concurrent write" in r.message for r in caplog.records))


def test_a_table_the_catalog_spells_otherwise_is_not_dropped_and_created_again(
    spark, tmp_path, monkeypatch
):
    """The catalog keeps the qualified location (hdfs:///lh is kept as hdfs://nn:8020/lh; here
    a double slash is kept as one). Before: every new session's first write found 'another'
    location and dropped and re-created the table, which tasks sharing a metastore race on."""
    from lakehouse import tables as tables_module

    warehouse = Tables(spark, f"{tmp_path}//wh")
    df = spark.createDataFrame([("A", 1, date(2026, 3, 1), "x")], DDL)
    warehouse.append(df, "silver", "spelled")
    monkeypatch.setattr(tables_module, "_registered", {})  # a new session writing it again
    statements: list[str] = []
    real = spark.sql
    monkeypatch.setattr(spark, "sql", lambda q, *a, **k: statements.append(q) or real(q, *a, **k))
    warehouse.append(df, "silver", "spelled")
    assert not [q for q in statements if q.startswith(("DROP", "CREATE TABLE"))], statements
    assert spark.table("silver.spelled").count() == 2


def test_a_conflicting_write_is_made_again_and_given_up_after_the_last_attempt(monkeypatch, caplog):
    """The side-by-side test above depends on two threads' timing to collide at all; this one
    does not. A save that conflicts once is made again (with a warning); one that always
    conflicts is tried WRITE_ATTEMPTS times and its error raised; another error is not
    retried."""
    from lakehouse import tables as tables_module

    class Conflict(Exception):
        pass

    monkeypatch.setattr(tables_module, "_conflicts", lambda: (Conflict,))
    monkeypatch.setattr(tables_module.time, "sleep", lambda seconds: None)
    calls: list[int] = []

    def conflicts_once() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise Conflict("a concurrent append")

    with caplog.at_level("WARNING", logger="lakehouse.tables"):
        tables_module._save_retrying(conflicts_once, "silver.q")
    assert len(calls) == 2
    assert [r.message for r in caplog.records if "concurrent write" in r.message] == [
        "silver.q: concurrent write (a concurrent append), attempt 2 again"
    ]

    calls.clear()

    def always_conflicts() -> None:
        calls.append(1)
        raise Conflict("again")

    with pytest.raises(Conflict, match="again"):
        tables_module._save_retrying(always_conflicts, "silver.q")
    assert len(calls) == tables_module.WRITE_ATTEMPTS

    calls.clear()

    def fails_otherwise() -> None:
        calls.append(1)
        raise ValueError("not a conflict")

    with pytest.raises(ValueError, match="not a conflict"):
        tables_module._save_retrying(fails_otherwise, "silver.q")
    assert len(calls) == 1
