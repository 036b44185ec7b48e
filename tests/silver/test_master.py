"""Master data on hand-built bronze rows: products, stores, online stores, the SKU map.

Product history through Delta (price change, same snapshot twice, a SKU disappearing) is
tested end to end in test_scd2.py.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from chispa import assert_df_equality

from lakehouse.config import load_settings
from lakehouse.quality import run_gate
from lakehouse.silver.master import (
    PRODUCT_COLUMNS,
    STORE_COLUMNS,
    online_stores,
    products_snapshot,
    resolve_sku,
    sku_map,
    sku_map_conflicts,
    stores_snapshot,
)

D1 = date(2026, 3, 1)
LINEAGE_DDL = "_delivery_date date, _source_file string, _line_no int, _record_hash string"


def _bronze(spark, columns: list[str], rows: list[tuple], day: date = D1, name: str = "f.csv"):
    """Bronze rows (all strings, as delivered) with lineage: line numbers follow the list."""
    src = f"file:/landing/master/dt={day}/{name}"
    data = [(*row, day, src, i + 2, f"h{i}") for i, row in enumerate(rows)]
    ddl = ", ".join(f"{c} string" for c in columns) + ", " + LINEAGE_DDL
    return spark.createDataFrame(data, ddl)


@pytest.fixture(scope="module")
def cfg():
    return load_settings("local").silver


PRODUCT_FIELDS = [
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


def test_products_snapshot_types_cleans_and_keeps_one_row_per_sku(spark):
    rows = [
        (
            " sku-00001 ",
            "6999472083281 ",
            " 青禾 纯棉护手霜 ",
            "青禾",
            "个护美妆",
            "个人护理",
            "护手霜",
            "1,119.00",
            "63.79",
            "2025-11-22",
            " active",
        ),
        (
            "SKU-00002",
            "",
            "马克杯",
            " ",
            "家居",
            "厨具",
            "马克杯",
            "abc",
            "",
            "2025-02-30",
            "DISCONTINUED",
        ),
        (
            "SKU-00001",
            "6999472083281",
            "护手霜 v2",
            "青禾",
            "个护美妆",
            "个人护理",
            "护手霜",
            "119.00",
            "64.00",
            "2025-11-22",
            "ACTIVE",
        ),  # same sku again: the later line wins
        ("", "1", "no id", "x", "x", "x", "x", "1.00", "1.00", "", "ACTIVE"),
    ]
    got = products_snapshot(_bronze(spark, PRODUCT_FIELDS, rows))
    expected = spark.createDataFrame(
        [
            (
                "SKU-00001",
                "6999472083281",
                "护手霜 v2",
                "青禾",
                "个护美妆",
                "个人护理",
                "护手霜",
                Decimal("119.00"),
                Decimal("64.00"),
                date(2025, 11, 22),
                "ACTIVE",
                D1,
                "h2",
                "file:/landing/master/dt=2026-03-01/f.csv",
                4,
            ),
            (
                "SKU-00002",
                None,
                "马克杯",
                None,
                "家居",
                "厨具",
                "马克杯",
                None,
                None,
                None,
                "DISCONTINUED",
                D1,
                "h1",
                "file:/landing/master/dt=2026-03-01/f.csv",
                3,
            ),
            (
                None,
                "1",
                "no id",
                "x",
                "x",
                "x",
                "x",
                Decimal("1.00"),
                Decimal("1.00"),
                None,
                "ACTIVE",
                D1,
                "h3",
                "file:/landing/master/dt=2026-03-01/f.csv",
                5,
            ),
        ],
        "sku_id string, barcode string, sku_name string, brand string, category_l1 string, "
        "category_l2 string, category_l3 string, list_price decimal(18,2), "
        "unit_cost decimal(18,2), launch_date date, status string, snapshot_date date, "
        "_record_hash string, _source_file string, _line_no int",
    )
    assert got.columns == PRODUCT_COLUMNS
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


STORE_FIELDS = [
    "store_code",
    "store_name",
    "store_type",
    "province",
    "city",
    "region",
    "floor_area_sqm",
    "staff_count",
    "open_date",
    "close_date",
    "store_phone",
]


def test_stores_snapshot_and_online_stores(spark, cfg):
    rows = [
        (
            " s0001",
            "拾光生活青岛万达广场店",
            "franchise",
            "山东省",
            "青岛市",
            "华东",
            "301",
            "8",
            "2022-08-23",
            "",
            "159-1857-8404",
        ),
        (
            "S0004",
            "拾光生活杭州步行街店",
            "DIRECT ",
            "浙江省",
            "杭州市",
            "华东",
            "315.5",
            "ten",
            "2022-05-06",
            "2026-03-03",
            "0571-88886666",
        ),
    ]
    got = stores_snapshot(_bronze(spark, STORE_FIELDS, rows))
    src = "file:/landing/master/dt=2026-03-01/f.csv"
    ddl = (
        "store_code string, store_name string, store_type string, province string, "
        "city string, region string, floor_area_sqm decimal(10,2), staff_count int, "
        "open_date date, close_date date, store_phone string, store_phone_raw string, "
        "snapshot_date date, _record_hash string, _source_file string, _line_no int"
    )
    expected = spark.createDataFrame(
        [
            (
                "S0001",
                "拾光生活青岛万达广场店",
                "FRANCHISE",
                "山东省",
                "青岛市",
                "华东",
                Decimal("301.00"),
                8,
                date(2022, 8, 23),
                None,
                "15918578404",
                "159-1857-8404",
                D1,
                "h0",
                src,
                2,
            ),
            (
                "S0004",
                "拾光生活杭州步行街店",
                "DIRECT",
                "浙江省",
                "杭州市",
                "华东",
                Decimal("315.50"),
                None,
                date(2022, 5, 6),
                date(2026, 3, 3),
                None,
                "0571-88886666",
                D1,
                "h1",
                src,
                3,
            ),
        ],
        ddl,
    )
    assert got.columns == STORE_COLUMNS
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)

    shops = spark.createDataFrame([(" 拾光旗舰店 ",), ("拾光旗舰店",), (None,)], "shop_name string")
    from_df = online_stores(cfg, shops, snapshot_date=D1)
    from_list = online_stores(cfg, ["拾光旗舰店"])
    assert from_df.columns == STORE_COLUMNS
    assert from_df.unionByName(got).count() == 5  # unions with the physical stores
    online = [
        (r["store_code"], r["store_name"], r["store_type"], r["snapshot_date"])
        for r in from_df.orderBy("store_code").collect()
    ]
    assert online == [
        ("JD:POP", "POP", "ONLINE", D1),
        ("MALL:OWN", "OWN", "ONLINE", D1),
        ("TMALL:拾光旗舰店", "拾光旗舰店", "ONLINE", D1),
    ]
    assert sorted(r["store_code"] for r in from_list.collect()) == [
        "JD:POP",
        "MALL:OWN",
        "TMALL:拾光旗舰店",
    ]


def test_tmall_orders_with_a_blank_shop_name_are_an_online_store_of_their_own(spark, cfg, tmp_path):
    """silver.sales files them under TMALL:(no shop name); without a silver.stores row that
    store had no type or region, and its sales fell out of every roll-up by either."""
    from types import SimpleNamespace

    from lakehouse.silver.master_job import _tmall_shops
    from lakehouse.tables import Tables

    tables = Tables(spark, str(tmp_path))
    spark.createDataFrame(
        [
            (" 拾光旗舰店 ", D1),
            ("", D1),
            ("\u3000", D1),
            (None, D1),
            ("明日店", date(2026, 3, 2)),  # delivered after the run date
        ],
        "shop_name string, _delivery_date date",
    ).write.format("delta").save(tables.path("bronze", "tmall_orders"))
    ctx = SimpleNamespace(tables=tables, run_date=D1, spark=spark)
    stores = online_stores(cfg, _tmall_shops(ctx), snapshot_date=D1)
    got = sorted((r.store_code, r.store_name, r.store_type) for r in stores.collect())
    assert got == [
        ("JD:POP", "POP", "ONLINE"),
        ("MALL:OWN", "OWN", "ONLINE"),
        ("TMALL:(no shop name)", "(no shop name)", "ONLINE"),
        ("TMALL:拾光旗舰店", "拾光旗舰店", "ONLINE"),
    ]


MAPPING_FIELDS = ["platform", "platform_sku_code", "sku_id"]


def test_sku_map_normalises_codes_and_flags_conflicts_and_unknown_skus(spark):
    products = spark.createDataFrame([("SKU-1",), ("SKU-2",)], "sku_id string")
    rows = [
        ("TMALL", " nr001 ", "sku-1"),
        ("tmall", "NR001", "SKU-1"),  # the same mapping again: no conflict
        ("TMALL", "NR002", "SKU-1"),
        ("TMALL", "NR002", "SKU-2"),  # NR002 -> two products: conflict
        ("JD", "188772238", "SKU-9"),  # unknown product
        ("POS", "", "SKU-2"),  # no code: passes through for the gate
    ]
    bronze = _bronze(spark, MAPPING_FIELDS, rows)
    got = sku_map(bronze, products).select(
        "platform", "platform_sku_code", "sku_id", "sku_known", "sku_conflict", "_line_no"
    )
    expected = spark.createDataFrame(
        [
            ("TMALL", "NR001", "SKU-1", True, False, 3),
            ("TMALL", "NR002", None, False, True, 5),
            ("JD", "188772238", "SKU-9", False, False, 6),
            ("POS", None, "SKU-2", True, False, 7),
        ],
        "platform string, platform_sku_code string, sku_id string, sku_known boolean, "
        "sku_conflict boolean, _line_no int",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)

    report = sku_map_conflicts(bronze, products).select(
        "platform", "platform_sku_code", "sku_ids", "reason"
    )
    expected_report = spark.createDataFrame(
        [
            ("TMALL", "NR002", ["SKU-1", "SKU-2"], "conflicting_sku_ids"),
            ("JD", "188772238", ["SKU-9"], "unknown_sku"),
        ],
        "platform string, platform_sku_code string, sku_ids array<string>, reason string",
    )
    assert_df_equality(report, expected_report, ignore_row_order=True, ignore_nullable=True)


def test_a_corrected_mapping_file_replaces_its_original_instead_of_conflicting(spark):
    """Before: NR001 -> SKU-1 in the file and -> SKU-2 in its correction was a conflict, and the
    code lost its mapping (every Tmall line of it unknown_sku)."""
    products = spark.createDataFrame([("SKU-1",), ("SKU-2",)], "sku_id string")
    original = _bronze(
        spark,
        MAPPING_FIELDS,
        [("TMALL", "NR001", "SKU-1"), ("TMALL", "NR003", "SKU-1")],
        name="sku_mapping_20260305.csv",
    )
    corrected = _bronze(
        spark, MAPPING_FIELDS, [("TMALL", "NR001", "SKU-2"), ("TMALL", "NR003", "SKU-1"),
                                ("TMALL", "NR003", "SKU-2")],
        name="sku_mapping_20260305_2.csv",
    )  # fmt: skip
    bronze = original.unionByName(corrected)
    got = sku_map(bronze, products).select("platform_sku_code", "sku_id", "sku_conflict")
    expected = spark.createDataFrame(
        [("NR001", "SKU-2", False), ("NR003", None, True)],  # within one file: still a conflict
        "platform_sku_code string, sku_id string, sku_conflict boolean",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    report = sku_map_conflicts(bronze, products).select("platform_sku_code", "sku_ids", "reason")
    expected_report = spark.createDataFrame(
        [("NR003", ["SKU-1", "SKU-2"], "conflicting_sku_ids")],
        "platform_sku_code string, sku_ids array<string>, reason string",
    )
    assert_df_equality(report, expected_report, ignore_nullable=True)


def test_resolve_sku_by_map_barcode_and_internal_id(spark):
    products = spark.createDataFrame(
        [("SKU-1", "6900000000001"), ("SKU-2", "6900000000002"), ("SKU-3", "6900000000002")],
        "sku_id string, barcode string",  # SKU-2 and SKU-3 share a barcode: ambiguous
    )
    mapping = spark.createDataFrame(
        [
            ("TMALL", "NR001", "SKU-1", D1),
            ("TMALL", "NR009", "SKU-9", D1),  # points at no product
            ("POS", "6900000000002", "SKU-2", D1),
            ("JD", "188772238", "SKU-2", D1),
        ],
        "platform string, platform_sku_code string, sku_id string, snapshot_date date",
    )
    lines = spark.createDataFrame(
        [(1, " nr001"), (2, "NR009"), (3, "NOPE"), (4, None), (5, "sku-3")],
        "line int, code string",
    )
    tmall = resolve_sku(lines, mapping, "TMALL", "code", products)
    mall = resolve_sku(lines, mapping, "MALL", "code", products, accept_internal_ids=True)
    pos_lines = spark.createDataFrame(
        [(1, "6900000000001"), (2, "6900000000002 "), (3, "6911111111111")],
        "line int, barcode string",
    )
    pos = resolve_sku(pos_lines, mapping, "POS", "barcode", products, barcode=True)

    def picked(df):
        return [(r["line"], r["sku_id"], r["sku_mapped"]) for r in df.orderBy("line").collect()]

    assert tmall.columns == ["line", "code", "sku_id", "sku_mapped"]
    assert picked(tmall) == [
        (1, "SKU-1", True),
        (2, None, False),
        (3, None, False),
        (4, None, False),
        (5, None, False),
    ]
    assert picked(mall)[4] == (5, "SKU-3", True)
    # barcode first; the ambiguous barcode falls back to the POS rows of the SKU map
    assert picked(pos) == [(1, "SKU-1", True), (2, "SKU-2", True), (3, None, False)]
    with pytest.raises(ValueError, match="unknown platform"):
        resolve_sku(lines, mapping, "taobao", "code", products)


def test_a_product_dropped_from_the_snapshots_still_resolves_when_nothing_current_does(spark):
    """OLD-1 left the snapshots; the last of its stock still sells. Its barcode, its mall id
    and a map row naming it resolve to it; its old barcode, handed on to NEW-1, goes to NEW-1.
    Before (no past products): all three were unknown SKUs."""
    current = spark.createDataFrame([("NEW-1", "6900000000009")], "sku_id string, barcode string")
    past = spark.createDataFrame(
        [("OLD-1", "6900000000001"), ("OLD-2", "6900000000009")], "sku_id string, barcode string"
    )
    mapping = spark.createDataFrame(
        [("TMALL", "NR-OLD", "OLD-1", D1)],
        "platform string, platform_sku_code string, sku_id string, snapshot_date date",
    )
    pos_lines = spark.createDataFrame(
        [(1, "6900000000001"), (2, "6900000000009"), (3, "6911111111111")],
        "line int, code string",
    )
    codes = spark.createDataFrame([(1, "NR-OLD"), (2, "old-1")], "line int, code string")

    def picked(df):
        return [(r["line"], r["sku_id"]) for r in df.orderBy("line").collect()]

    kw = {"products_past": past}
    pos = resolve_sku(pos_lines, mapping, "POS", "code", current, barcode=True, **kw)
    assert picked(pos) == [(1, "OLD-1"), (2, "NEW-1"), (3, None)]
    assert picked(resolve_sku(codes, mapping, "TMALL", "code", current, **kw)) == [
        (1, "OLD-1"),
        (2, None),
    ]
    mall = resolve_sku(codes, mapping, "MALL", "code", current, accept_internal_ids=True, **kw)
    assert picked(mall) == [(1, None), (2, "OLD-1")]
    # A current product always wins: its own id over a map row naming a delisted product, a
    # barcode two current products share (so resolving to neither) over a delisted product
    # carrying it too.
    shared = spark.createDataFrame(
        [("NEW-1", "6900000000009"), ("NEW-2", "6900000000005"), ("NEW-3", "6900000000005")],
        "sku_id string, barcode string",
    )
    past_too = past.unionByName(
        spark.createDataFrame([("OLD-3", "6900000000005")], "sku_id string, barcode string")
    )
    to_old = spark.createDataFrame(
        [("MALL", "NEW-1", "OLD-1", D1)],
        "platform string, platform_sku_code string, sku_id string, snapshot_date date",
    )
    own = spark.createDataFrame([(1, "NEW-1")], "line int, code string")
    mall_own = resolve_sku(
        own, to_old, "MALL", "code", shared, accept_internal_ids=True, products_past=past_too
    )
    assert picked(mall_own) == [(1, "NEW-1")]
    shared_code = spark.createDataFrame([(1, "6900000000005")], "line int, code string")
    pos_shared = resolve_sku(
        shared_code, mapping, "POS", "code", shared, barcode=True, products_past=past_too
    )
    assert picked(pos_shared) == [(1, None)]
    # Without them, as before:
    assert picked(resolve_sku(pos_lines, mapping, "POS", "code", current, barcode=True)) == [
        (1, None),
        (2, "NEW-1"),
        (3, None),
    ]


def _gated(frame, suite: str, key: str) -> tuple[list[str], list[tuple[str, str]]]:
    with run_gate(frame, suite, key_columns=[key], run_id="r", run_date=D1) as outcome:
        good = sorted(r[key] for r in outcome.good.collect())
        bad = sorted((r.record_key, r.expectation) for r in outcome.quarantined.collect())
    return good, bad


def test_a_master_value_written_but_unreadable_is_quarantined_not_read_as_none(spark):
    """Before, `2026-02-30` or `N/A` read as missing and was published: a store whose close
    date could not be read kept trading in the marts, one whose open date could not be read
    counted as open since always. Blank still says "none"."""
    product = ("B", "服装", "女装", "T恤")
    products = products_snapshot(
        _bronze(
            spark,
            PRODUCT_FIELDS,
            [
                ("SKU-1", "6901234567892", "T恤", *product, "100.00", "40.00", "", "ACTIVE"),
                ("SKU-2", "6901234567892", "T恤", *product, "N/A", "40.00", "", "ACTIVE"),
                ("SKU-3", "6901234567892", "T恤", *product, "", "40.00", "2025-02-30", "ACTIVE"),
            ],
        ),
        with_checks=True,
    )
    assert _gated(products, "silver.products", "sku_id") == (
        ["SKU-1"],
        [("SKU-2", "list_price_readable"), ("SKU-3", "launch_date_readable")],
    )
    place = ("店", "DIRECT", "浙江省", "杭州市", "华东")

    def store(code: str, area: str, staff: str, opened: str, closed: str) -> tuple:
        return (code, *place, area, staff, opened, closed, "0571-88886666")

    stores = stores_snapshot(
        _bronze(
            spark,
            STORE_FIELDS,
            [
                store("S1", "120", "6", "2020-01-01", ""),
                store("S2", "", "", "", "2026-03-31"),
                store("S3", "12O", "6", "2020-01-01", ""),
                store("S4", "120", "ten", "2020-01-01", ""),
                store("S5", "120", "6", "2020-13-01", ""),
                store("S6", "120", "6", "2020-01-01", "2026-02-30"),
            ],
        ),
        with_checks=True,
    )
    assert _gated(stores, "silver.stores", "store_code") == (
        ["S1", "S2"],
        [
            ("S3", "floor_area_readable"),
            ("S4", "staff_count_readable"),
            ("S5", "open_date_readable"),
            ("S6", "close_date_readable"),
        ],
    )
    assert products_snapshot(_bronze(spark, PRODUCT_FIELDS, [])).columns == PRODUCT_COLUMNS
    assert stores_snapshot(_bronze(spark, STORE_FIELDS, [])).columns == STORE_COLUMNS
