"""SCD2 helpers: the pure change set, the Delta MERGE (real tables under tmp_path), valid_at."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from chispa import assert_df_equality
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from lakehouse.silver.master import PRODUCT_KEY, PRODUCT_TRACKED, products_snapshot
from lakehouse.silver.scd2 import (
    ACTION,
    apply_scd2,
    attribute_hash,
    current_versions,
    latest_versions,
    scd2_changes,
    valid_at,
)

D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)
SNAP_DDL = "sku_id string, unit_cost decimal(18,2), status string, snapshot_date date, _line_no int"
HIST_DDL = SNAP_DDL + ", valid_from date, valid_to date, is_current boolean, attr_hash string"
KEY, TRACKED = ["sku_id"], ["unit_cost", "status"]


def _snap(spark, rows):
    return spark.createDataFrame(
        [
            (k, Decimal(c) if c is not None else None, s, d, i)
            for i, (k, c, s, d) in enumerate(rows)
        ],
        SNAP_DDL,
    )


def test_attribute_hash_is_null_safe_and_unambiguous(spark):
    df = spark.createDataFrame(
        [("a", None), ("a", ""), ("a,b", None), ("a", "b"), ("a", "b")], "x string, y string"
    )
    hashes = [r[0] for r in df.select(attribute_hash(["x", "y"])).collect()]
    assert len(set(hashes[:4])) == 4  # null != '', "a,b" != ("a", "b")
    assert hashes[3] == hashes[4]
    assert all(h is not None and len(h) == 64 for h in hashes)


def test_scd2_changes_new_changed_absent_and_unchanged(spark):
    h = attribute_hash(TRACKED)
    history = spark.createDataFrame(
        [
            ("A", Decimal("40.00"), "ACTIVE", D1, 1, D1, None, True, None),
            ("B", Decimal("10.00"), "ACTIVE", D1, 2, D1, None, True, None),
            ("C", Decimal("5.00"), "ACTIVE", D1, 3, D1, None, True, None),
            ("E", Decimal("9.00"), "ACTIVE", D1, 4, D1, D2, False, None),  # closed long ago
        ],
        HIST_DDL,
    ).withColumn("attr_hash", h)
    snapshot = _snap(
        spark,
        [
            ("A", "42.00", "ACTIVE", D2),  # changed cost
            ("B", "10.00", "ACTIVE", D2),  # unchanged
            ("D", "7.00", "ACTIVE", D2),  # new
            (None, "1.00", "ACTIVE", D2),  # no key: ignored
        ],
    )  # C is absent
    cols = ["sku_id", "unit_cost", "valid_from", "valid_to", "is_current", "_merge_sku_id", ACTION]
    changes = scd2_changes(history, snapshot, KEY, TRACKED, "snapshot_date").select(*cols)
    expected = spark.createDataFrame(
        [
            ("A", Decimal("42.00"), D2, None, True, None, "insert"),
            ("D", Decimal("7.00"), D2, None, True, None, "insert"),
            ("A", Decimal("40.00"), None, D2, False, "A", "close"),
            ("C", Decimal("5.00"), None, D2, False, "C", "close"),
        ],
        "sku_id string, unit_cost decimal(18,2), valid_from date, valid_to date, "
        "is_current boolean, _merge_sku_id string, _scd2_action string",
    )
    assert_df_equality(
        changes, expected, ignore_row_order=True, ignore_nullable=True, ignore_column_order=False
    )
    partial = scd2_changes(history, snapshot, KEY, TRACKED, "snapshot_date", close_missing=False)
    # C's row was delivered but quarantined today: absent from the good rows, yet not gone.
    quarantined = spark.createDataFrame([("C",)], "sku_id string")
    kept = scd2_changes(history, snapshot, KEY, TRACKED, "snapshot_date", keep_open=quarantined)
    closes = partial.withColumn("run", F.lit("partial")).unionByName(
        kept.withColumn("run", F.lit("kept"))
    )
    got = {(r["run"], r["sku_id"]) for r in closes.where(f"{ACTION} = 'close'").collect()}
    assert got == {("partial", "A"), ("kept", "A")}


def test_valid_at_picks_the_version_of_the_fact_time(spark):
    history = spark.createDataFrame(
        [
            ("A", Decimal("40.00"), "ACTIVE", D1, 1, D1, D2, False, "h1"),
            ("A", Decimal("42.00"), "ACTIVE", D2, 1, D2, None, True, "h2"),
            ("B", Decimal("10.00"), "ACTIVE", D2, 2, D2, D3, False, "h3"),  # closed on D3
        ],
        HIST_DDL,
    )
    facts = spark.createDataFrame(
        [
            (1, "A", date(2026, 2, 27), datetime(2026, 2, 27, 3, tzinfo=UTC)),  # before
            (2, "A", D1, datetime(2026, 3, 1, 15, 59, tzinfo=UTC)),  # 23:59 Shanghai
            (3, "A", D2, datetime(2026, 3, 1, 16, 0, tzinfo=UTC)),  # 00:00 on D2
            (4, "A", D3, datetime(2026, 3, 3, 1, tzinfo=UTC)),
            (5, "B", D3, datetime(2026, 3, 3, 1, tzinfo=UTC)),  # after close: none
            (6, "Z", D2, datetime(2026, 3, 2, 1, tzinfo=UTC)),  # unknown key
            (7, "A", None, None),
        ],
        "line int, sku_id string, business_date date, sold_at timestamp",
    )
    by_date = valid_at(facts, history, KEY, "business_date", ["unit_cost"])
    by_time = valid_at(facts, history, KEY, "sold_at", ["unit_cost"], prefix="t_")
    got = by_date.join(by_time.select("line", "t_unit_cost"), "line").orderBy("line")
    costs = [(r["line"], r["unit_cost"], r["t_unit_cost"]) for r in got.collect()]
    d40, d42 = Decimal("40.00"), Decimal("42.00")
    assert costs == [
        (1, d40, d40),
        (2, d40, d40),
        (3, d42, d42),
        (4, d42, d42),
        (5, None, None),
        (6, None, None),
        (7, None, None),
    ]
    with pytest.raises(ValueError, match="already have unit_cost"):
        valid_at(by_date, history, KEY, "business_date", ["unit_cost"])


def test_valid_at_with_last_holds_gives_a_key_that_left_the_snapshots_its_last_version(spark):
    """B left the snapshots on D3: with last_holds its sales after that cost its last 10.00
    (before, costs had no such option: null, and the sale fell out of gross profit). A's sale
    in its gap (absent on D2, back on D3) costs the 40.00 before the gap, the cost it had
    before A came back. Without the option, both are null."""
    history = spark.createDataFrame(
        [
            ("A", Decimal("40.00"), "ACTIVE", D1, 1, D1, D2, False, "h1"),
            ("A", Decimal("42.00"), "ACTIVE", D3, 1, D3, None, True, "h2"),  # absent on D2
            ("B", Decimal("9.00"), "ACTIVE", D1, 2, D1, D2, False, "h3"),
            ("B", Decimal("10.00"), "ACTIVE", D2, 2, D2, D3, False, "h4"),  # closed on D3
        ],
        HIST_DDL,
    )
    later = date(2026, 3, 9)
    facts = spark.createDataFrame(
        [(1, "A", D2), (2, "A", later), (3, "B", D2), (4, "B", D3), (5, "B", later)],
        "line int, sku_id string, business_date date",
    )

    def costs(**kw) -> list:
        got = valid_at(facts, history, KEY, "business_date", ["unit_cost"], **kw)
        return [r["unit_cost"] for r in got.orderBy("line").collect()]

    ten = Decimal("10.00")
    assert costs(last_holds=True) == [Decimal("40.00"), Decimal("42.00"), ten, ten, ten]
    assert costs() == [None, Decimal("42.00"), ten, None, None]


def test_latest_versions_give_the_open_version_else_the_last_one(spark):
    """A is open (its older version closed); B left the snapshots after two versions: its
    second is its latest, not its first."""
    history = spark.createDataFrame(
        [
            ("A", Decimal("40.00"), "ACTIVE", D1, 1, D1, D2, False, "h1"),
            ("A", Decimal("42.00"), "ACTIVE", D2, 1, D2, None, True, "h2"),
            ("B", Decimal("9.00"), "ACTIVE", D1, 2, D1, D2, False, "h3"),
            ("B", Decimal("10.00"), "ACTIVE", D2, 2, D2, D3, False, "h4"),
        ],
        HIST_DDL,
    )
    got = latest_versions(history, KEY).select("sku_id", "unit_cost", "is_current")
    assert sorted(map(tuple, got.collect())) == [
        ("A", Decimal("42.00"), True),
        ("B", Decimal("10.00"), False),
    ]


PRODUCTS = [
    "sku_id",
    "barcode",
    "sku_name",
    "brand",
    "category_l1",
    "category_l2",
    "category_l3",
    "list_price",
    "unit_cost",
    "launch_date",
    "status",
]


def _products(spark, day: date, *rows: tuple[str, str], name: str = "products"):
    """A bronze products delivery: (sku_id, unit_cost) per line, the rest fixed."""
    src = f"file:/landing/master/dt={day}/{name}_{day:%Y%m%d}.csv"
    data = [
        (
            sku,
            "690000000000" + str(i),
            "护手霜",
            "青禾",
            "个护",
            "护理",
            "护手霜",
            "99.00",
            cost,
            "2025-01-01",
            "ACTIVE",
            day,
            src,
            i + 2,
            f"h{i}",
        )
        for i, (sku, cost) in enumerate(rows)
    ]
    ddl = ", ".join(f"{c} string" for c in PRODUCTS)
    ddl += ", _delivery_date date, _source_file string, _line_no int, _record_hash string"
    return products_snapshot(spark.createDataFrame(data, ddl))


def test_apply_scd2_products_history_idempotency_corrections_and_older_snapshots(spark, tmp_path):
    path = str(tmp_path / "products_history")
    day1 = _products(spark, D1, ("SKU-1", "40.00"), ("SKU-2", "10.00"), (" sku-3 ", "5.00"))
    day2 = _products(spark, D2, ("SKU-1", "42.00"), ("SKU-2", "10.00"), ("SKU-4", "7.00"))

    def apply(snap):
        return apply_scd2(spark, path, snap, PRODUCT_KEY, PRODUCT_TRACKED, "snapshot_date")

    assert apply(day1) == {"inserted": 3, "closed": 0}
    # SKU-1's cost changes (re-versioned), SKU-3 disappears (closed), SKU-4 is new.
    assert apply(day2) == {"inserted": 2, "closed": 2}
    version = DeltaTable.forPath(spark, path).history(1).first()["version"]
    assert apply(day2) == {"inserted": 0, "closed": 0}  # same snapshot twice: no change
    # A re-export of day 2 under another name (other lineage, same values): no change either.
    assert apply(
        _products(
            spark, D2, ("SKU-1", "42.00"), ("SKU-2", "10.00"), ("SKU-4", "7.00"), name="products_x"
        )
    ) == {"inserted": 0, "closed": 0}
    assert apply(day1) == {"inserted": 0, "closed": 0}  # older, but history agrees with it
    assert DeltaTable.forPath(spark, path).history(1).first()["version"] == version
    with pytest.raises(ValueError, match="older than the history's latest change"):
        apply(_products(spark, D1, ("SKU-1", "41.00")))

    # An empty (header-only) snapshot is no evidence that everything vanished.
    assert apply(day2.limit(0)) == {"inserted": 0, "closed": 0}
    with pytest.raises(ValueError, match="duplicate key"):
        apply(day2.unionByName(day2))
    with pytest.raises(ValueError, match="one snapshot at a time"):
        apply(day1.unionByName(_products(spark, D3, ("SKU-9", "1.00"))))

    history = spark.read.format("delta").load(path)
    expected = spark.createDataFrame(
        [
            ("SKU-1", Decimal("40.00"), D1, D2, False),
            ("SKU-1", Decimal("42.00"), D2, None, True),
            ("SKU-2", Decimal("10.00"), D1, None, True),
            ("SKU-3", Decimal("5.00"), D1, D2, False),
            ("SKU-4", Decimal("7.00"), D2, None, True),
        ],
        "sku_id string, unit_cost decimal(18,2), valid_from date, valid_to date, "
        "is_current boolean",
    )
    cols = ["sku_id", "unit_cost", "valid_from", "valid_to", "is_current"]
    assert_df_equality(history.select(*cols), expected, ignore_row_order=True, ignore_nullable=True)

    # Margin needs the cost valid at the time of sale.
    sales = spark.createDataFrame(
        [(1, "SKU-1", D1), (2, "SKU-1", D2), (3, "SKU-3", D1), (4, "SKU-3", D2)],
        "line int, sku_id string, business_date date",
    )
    costed = valid_at(sales, history, PRODUCT_KEY, "business_date", ["unit_cost"])
    got = [(r["line"], r["unit_cost"]) for r in costed.orderBy("line").collect()]
    assert got == [(1, Decimal("40.00")), (2, Decimal("42.00")), (3, Decimal("5.00")), (4, None)]

    # Today's run again with a corrected file: the day is rewound and applied anew.
    fixed = _products(spark, D2, ("SKU-1", "43.00"), ("SKU-2", "10.00"), ("SKU-4", "7.00"))
    assert apply(fixed) == {"inserted": 2, "closed": 2}
    rows = spark.read.format("delta").load(path).select(*cols, "attr_hash").collect()
    assert sorted(tuple(r)[:5] for r in rows if r["sku_id"] == "SKU-1") == [
        ("SKU-1", Decimal("40.00"), D1, D2, False),
        ("SKU-1", Decimal("43.00"), D2, None, True),
    ]  # no zero-length version of the first day-2 cost (42) is left behind
    now = current_versions(spark.createDataFrame(rows))
    assert sorted((r["sku_id"], r["unit_cost"]) for r in now.collect()) == [
        ("SKU-1", Decimal("43.00")),
        ("SKU-2", Decimal("10.00")),
        ("SKU-4", Decimal("7.00")),
    ]


def test_an_older_day_rerun_cannot_overwrite_a_later_snapshot_that_changed_nothing(spark, tmp_path):
    """Before: day 3 confirmed day 2's cost (42) and so wrote nothing; day 2 run again with 41
    was taken for 'today's job again', rewound and applied: 41 stayed open through day 3."""
    path = str(tmp_path / "products_history")

    def apply(day, cost, **kwargs):
        snap = _products(spark, day, ("SKU-1", cost))
        return apply_scd2(
            spark, path, snap, PRODUCT_KEY, PRODUCT_TRACKED, "snapshot_date", **kwargs
        )

    assert apply(D1, "40.00") == {"inserted": 1, "closed": 0}
    assert apply(D2, "42.00") == {"inserted": 1, "closed": 1}
    assert apply(D3, "42.00") == {"inserted": 0, "closed": 0}
    with pytest.raises(ValueError, match=r"latest full snapshot applied \(2026-03-03"):
        apply(D2, "41.00")
    assert apply(D2, "42.00") == {"inserted": 0, "closed": 0}  # a backfill that agrees: fine
    history = spark.read.format("delta").load(path).where("is_current")
    assert [(r.unit_cost, r.valid_from) for r in history.collect()] == [(Decimal("42.00"), D2)]

    # Day 3 again with a change is today's run: a new version from day 3, nothing rewound.
    assert apply(D3, "43.00") == {"inserted": 1, "closed": 1}
    # A partial snapshot (close_missing=False) says nothing of the records it lacks, so it
    # does not move the mark: day 4's partial file leaves day 3 open to a corrected run.
    assert apply(date(2026, 3, 4), "43.00", close_missing=False) == {"inserted": 0, "closed": 0}
    assert apply(D3, "44.00") == {"inserted": 1, "closed": 1}
