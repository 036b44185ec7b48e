"""Golden member records on small silver-shaped frames: each survivorship rule, CRM over platform
values, newest non-null, opt-outs never lost, and a store phone never becoming anyone's phone.

Identities are derived from the frames by silver's own `identities`, so records are attributed
exactly as in production; identity_map is written by hand (the graph is tested elsewhere).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from lakehouse.config import GoldenAttribute, load_settings
from lakehouse.oneid.golden import golden_members
from lakehouse.silver.identities import identities

UTC = dt.UTC
D1, D2 = dt.date(2026, 3, 1), dt.date(2026, 3, 2)

P1, P1_NEW, P2, P3, P4 = "13912345678", "13912345679", "13787654321", "13698765432", "15811223344"
STORE = "13655554321"  # a store's own phone, keyed in for walk-ins

MEMBERS_DDL = (
    "member_id string, card_no string, name string, phone string, email string, gender string, "
    "birthday date, register_channel string, register_store_code string, "
    "register_time timestamp, level string, points int, unionid string, "
    "marketing_opt_out boolean, snapshot_date date"
)
ORDERS_DDL = (
    "order_key string, platform string, buyer_nick string, jd_pin string, member_id string, "
    "member_card_no string, unionid string, openid string, buyer_phone string, "
    "receiver_name string, receiver_province string, receiver_city string, "
    "created_at timestamp, updated_at timestamp, _delivery_date date"
)
TOUCHES_DDL = (
    "touch_key string, campaign_id string, touch_time timestamp, member_id string, phone string, "
    "unionid string, _delivery_date date"
)
MAP_DDL = "identifier_type string, identifier_value string, one_id string"
SUPPRESSED_DDL = (
    "identifier_type string, identifier_value string, node_id long, reason string, degree int, "
    "neighbour_type string, first_suppressed date"
)


def ts(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


# Person A: two CRM records (M1 in two snapshots, its duplicate M2), shop orders, a touch.
# Person C: no CRM; two POS tickets, the newer one keyed with the store phone.
# Person D: one Tmall order with a masked phone. Person E: one CRM record, no opt-out.
# A walk-in POS ticket that carries only the store phone belongs to nobody.
MEMBERS = [
    ("M1", "C1", None, P1, "a@x.com", "M", dt.date(1990, 5, 1), "STORE", "S001",
     ts(2020, 1, 1), "SILVER", 100, "uA", False, D1),
    ("M1", "C1", "张三", P1_NEW, None, "M", dt.date(1990, 5, 1), "STORE", "S001",
     ts(2020, 1, 1), "GOLD", 120, "uA", False, D2),
    ("M2", None, None, P1_NEW, None, None, None, "MINIAPP", "S002",
     ts(2023, 5, 1), None, None, None, True, D2),
    ("M5", None, "赵六", None, "e@x.com", None, None, None, None, None, None, None, None,
     False, D1),
]  # fmt: skip
ORDERS = [
    ("O1", "MALL", None, None, "M1", None, "uA", "oA1", P2, None, None, None,
     ts(2026, 3, 1, 9), ts(2026, 3, 1, 10), D1),
    ("O2", "MALL", None, None, "M1", None, None, "oA2", None, None, None, None,
     ts(2026, 3, 2, 9), None, D2),
    ("O3", "POS", None, None, None, "C1", None, None, STORE, None, None, None,
     ts(2026, 3, 3, 9), None, D2),
    ("O4", "TMALL", "nickA", None, None, None, None, None, P1_NEW, "张三", "浙江", "杭州",
     ts(2026, 3, 1, 9), ts(2026, 3, 1, 12), D1),
    ("O5", "JD", None, "pinA", None, None, None, None, P1_NEW, "张三", None, "宁波",
     ts(2026, 3, 2, 9), ts(2026, 3, 4, 9), D2),
    ("O6", "POS", None, None, None, "C9", None, None, STORE, None, None, None,
     ts(2026, 3, 5, 9), None, D2),
    ("O7", "POS", None, None, None, "C9", None, None, P3, None, None, None,
     ts(2026, 3, 1, 9), None, D1),
    ("O8", "TMALL", "nickD", None, None, None, None, None, "138****1234", "王五", "江苏", "南京",
     ts(2026, 3, 1, 9), None, D1),
    ("O9", "POS", None, None, None, None, None, None, STORE, None, None, None,
     ts(2026, 3, 6, 9), None, D2),
]  # fmt: skip
TOUCHES = [("T1", "CP1", ts(2026, 3, 7, 9), "M1", P4, "uA", D2)]
ONE_IDS = {
    "OID_A": [
        ("member_id", "M1"), ("member_id", "M2"), ("card_no", "C1"), ("phone", P1),
        ("phone", P1_NEW), ("phone", P2), ("phone", P4), ("email", "a@x.com"),
        ("unionid", "uA"), ("openid", "oA1"), ("openid", "oA2"), ("tmall_nick", "nickA"),
        ("jd_pin", "pinA"),
    ],
    "OID_C": [("card_no", "C9"), ("phone", P3)],
    "OID_D": [("tmall_nick", "nickD")],
    "OID_E": [("member_id", "M5"), ("email", "e@x.com")],
}  # fmt: skip


@pytest.fixture(scope="module")
def frames(spark: SparkSession) -> Iterator[dict[str, DataFrame]]:
    members = spark.createDataFrame(MEMBERS, MEMBERS_DDL)
    orders = spark.createDataFrame(ORDERS, ORDERS_DDL)
    touches = spark.createDataFrame(TOUCHES, TOUCHES_DDL)
    rows = [(t, v, one_id) for one_id, ids in ONE_IDS.items() for t, v in ids]
    ids = identities(members, orders, touches).cache()
    yield {
        "members": members,
        "orders": orders,
        "touches": touches,
        "identities": ids,
        "identity_map": spark.createDataFrame(rows, MAP_DDL),
    }
    ids.unpersist()


def _golden(
    frames: dict[str, DataFrame],
    rules: Mapping[str, GoldenAttribute],
    identity_map: DataFrame | None = None,
    suppressed: DataFrame | None = None,
) -> DataFrame:
    return golden_members(
        identity_map if identity_map is not None else frames["identity_map"],
        frames["identities"],
        frames["members"],
        frames["orders"],
        frames["touches"],
        rules,
        suppressed=suppressed,
    )


def rule(name: str, *sources: str) -> GoldenAttribute:
    return GoldenAttribute(rule=name, sources=list(sources))


@pytest.fixture(scope="module")
def configured(frames) -> Iterator[DataFrame]:
    """The golden record under conf/oneid.yml's rules, computed once for the module."""
    df = _golden(frames, load_settings("local").oneid.golden_record).cache()
    yield df
    df.unpersist()


@pytest.fixture(scope="module")
def golden(configured) -> dict[str, Row]:
    return {row["one_id"]: row for row in configured.collect()}


@pytest.fixture(scope="module")
def alternative(frames) -> dict[str, Row]:
    """Rules other than the configured ones, to see each rule pick something else."""
    rules = {
        "phone": rule("priority_then_newest", "campaign_touches", "jd_orders"),
        "openid": rule("earliest", "mall_orders"),
        "city": rule("earliest", "jd_orders", "tmall_orders"),
        "name": rule("priority_then_newest", "tmall_orders", "jd_orders"),
    }
    return {row["one_id"]: row for row in _golden(frames, rules).collect()}


def test_golden_record_with_the_configured_rules(spark, configured) -> None:
    expected = spark.createDataFrame(
        [
            ("OID_A", P1_NEW, "a@x.com", "M1", "C1", "uA", "oA2", "nickA", "pinA", "张三", "M",
             dt.date(1990, 5, 1), "GOLD", 120, "STORE", "S001", ts(2020, 1, 1), "浙江", "宁波",
             True, ["M1", "M2"], 13,
             ["campaign_touches", "crm_members", "jd_orders", "mall_orders", "pos_sales",
              "tmall_orders"]),
            ("OID_C", P3, None, None, "C9", None, None, None, None, None, None, None, None, None,
             None, None, None, None, None, None, [], 2, ["pos_sales"]),
            ("OID_D", None, None, None, None, None, None, "nickD", None, "王五", None, None, None,
             None, None, None, None, "江苏", "南京", None, [], 1, ["tmall_orders"]),
            ("OID_E", None, "e@x.com", "M5", None, None, None, None, None, "赵六", None, None,
             None, None, None, None, None, None, None, False, ["M5"], 2, ["crm_members"]),
        ],
        "one_id string, phone string, email string, member_id string, card_no string, "
        "unionid string, openid string, tmall_nick string, jd_pin string, name string, "
        "gender string, birthday date, level string, points int, register_channel string, "
        "register_store_code string, register_time timestamp, province string, city string, "
        "marketing_opt_out boolean, member_ids array<string>, identifier_count long, "
        "sources array<string>",
    )  # fmt: skip
    assert configured.columns == expected.columns
    assert_df_equality(configured, expected, ignore_nullable=True, ignore_row_order=True)


def test_crm_wins_over_newer_platform_values(golden, alternative) -> None:
    """The touch (03-07) and JD order (03-04) phones are newer, but CRM is listed first."""
    assert golden["OID_A"]["phone"] == P1_NEW  # CRM's newest snapshot
    assert alternative["OID_A"]["phone"] == P4  # CRM not listed: the touch, first in the list


def test_priority_falls_through_to_the_next_source_with_a_value(golden, alternative) -> None:
    assert golden["OID_D"]["name"] == "王五"  # no CRM record: Tmall's receiver name
    assert golden["OID_C"]["phone"] == P3  # no CRM, mall order or touch: the POS ticket's
    assert alternative["OID_C"]["name"] is None  # nobody has a value


def test_newest_non_null_wins(golden) -> None:
    """CRM's newest snapshot has no e-mail and the newest order no province: a newer null
    never erases an older value."""
    a = golden["OID_A"]
    assert (a["email"], a["province"], a["city"], a["openid"], a["points"], a["level"]) == (
        "a@x.com", "浙江", "宁波", "oA2", 120, "GOLD"
    )  # fmt: skip


def test_earliest_keeps_the_first_value(golden, alternative) -> None:
    a = golden["OID_A"]
    assert (a["register_channel"], a["register_store_code"]) == ("STORE", "S001")  # not M2's
    assert a["register_time"] == ts(2020, 1, 1).replace(tzinfo=None)
    assert (alternative["OID_A"]["openid"], alternative["OID_A"]["city"]) == ("oA1", "杭州")


def test_any_true_never_loses_an_opt_out(golden) -> None:
    assert golden["OID_A"]["marketing_opt_out"] is True  # M1 says no, its duplicate M2 yes
    assert golden["OID_E"]["marketing_opt_out"] is False  # every record says no
    assert golden["OID_C"]["marketing_opt_out"] is None  # nobody said anything


def test_member_ids_sources_and_identifier_count(golden) -> None:
    got = {k: (r["member_ids"], r["identifier_count"], r["sources"]) for k, r in golden.items()}
    assert got == {
        "OID_A": (["M1", "M2"], 13, ["campaign_touches", "crm_members", "jd_orders",
                                     "mall_orders", "pos_sales", "tmall_orders"]),
        "OID_C": ([], 2, ["pos_sales"]),
        "OID_D": ([], 1, ["tmall_orders"]),
        "OID_E": (["M5"], 2, ["crm_members"]),
    }  # fmt: skip


def test_a_member_record_that_left_the_crm_is_no_membership(frames, golden) -> None:
    """M1 and M5 left the CRM (silver.members' `left_crm_on`); M2, A's second record, did not.
    Before: member_ids came from the identities alone, so a person the CRM no longer lists stayed
    a member, with the level and points of a record it no longer holds."""
    left = F.when(F.col("member_id").isin("M1", "M5"), F.lit(D2))
    members = frames["members"].withColumn("left_crm_on", left)
    rules = load_settings("local").oneid.golden_record
    got = {r["one_id"]: r for r in _golden({**frames, "members": members}, rules).collect()}
    assert (golden["OID_A"]["level"], golden["OID_A"]["points"]) == ("GOLD", 120)
    assert got["OID_A"]["member_ids"] == ["M2"]
    assert (got["OID_A"]["level"], got["OID_A"]["points"]) == (None, None)  # M2 has none
    # the first account left: the one still in the CRM is the account to address
    assert (golden["OID_A"]["member_id"], got["OID_A"]["member_id"]) == ("M1", "M2")
    # what the records say of the person stays: phone, name, e-mail, the opt-out
    for attribute in ("phone", "name", "email", "marketing_opt_out"):
        assert got["OID_A"][attribute] == golden["OID_A"][attribute], attribute
    assert (got["OID_E"]["member_ids"], got["OID_E"]["member_id"]) == ([], None)
    assert (got["OID_E"]["name"], got["OID_E"]["email"]) == ("赵六", "e@x.com")
    assert got["OID_C"] == golden["OID_C"]


def test_store_phone_is_never_a_golden_phone(spark, frames, golden) -> None:
    """C's newest POS ticket (O6) carries the store phone: C keeps O7's phone."""
    assert golden["OID_C"]["phone"] == P3
    # An identity_map of an older run still holding the store phone: the suppressed list wins.
    stale = frames["identity_map"].unionByName(
        spark.createDataFrame([("phone", STORE, "OID_C")], MAP_DDL)
    )
    suppressed = spark.createDataFrame(
        [("phone", STORE, 1, "store_phone", None, None, D2)], SUPPRESSED_DDL
    )
    rules = {"phone": rule("newest", "pos_sales")}
    got = {r["one_id"]: r["phone"] for r in _golden(frames, rules, stale, suppressed).collect()}
    assert got["OID_C"] == P3
    assert got["OID_A"] is None  # A's only POS ticket has the store phone


def test_equal_times_are_broken_by_value(spark) -> None:
    """Two equally new values: the smaller wins, whichever row comes first."""
    at = ts(2026, 3, 1, 9)
    orders = spark.createDataFrame(
        [
            ("X1", "TMALL", "nickX", None, None, None, None, None, None, None, None, "温州",
             at, None, D1),
            ("X2", "TMALL", "nickX", None, None, None, None, None, None, None, None, "台州",
             at, None, D1),
            ("Y1", "TMALL", "nickY", None, None, None, None, None, None, None, None, "台州",
             at, None, D1),
            ("Y2", "TMALL", "nickY", None, None, None, None, None, None, None, None, "温州",
             at, None, D1),
        ],
        ORDERS_DDL,
    )  # fmt: skip
    identity_map = spark.createDataFrame(
        [("tmall_nick", "nickX", "OID_X"), ("tmall_nick", "nickY", "OID_Y")], MAP_DDL
    )
    rules = {"city": rule("newest", "tmall_orders")}
    got = golden_members(identity_map, identities(orders_df=orders), None, orders, None, rules)
    assert sorted((r["one_id"], r["city"]) for r in got.collect()) == [
        ("OID_X", "台州"),
        ("OID_Y", "台州"),
    ]


def test_attribute_no_source_provides_is_an_error(frames) -> None:
    with pytest.raises(ValueError, match="shoe_size"):
        _golden(frames, {"shoe_size": rule("newest", "crm_members")})


def test_source_without_the_column_is_an_error(frames) -> None:
    with pytest.raises(ValueError, match=r"email: tmall_orders has no column"):
        _golden(frames, {"email": rule("newest", "crm_members", "tmall_orders")})


def test_any_true_needs_a_boolean(frames) -> None:
    with pytest.raises(ValueError, match="any_true needs a boolean"):
        _golden(frames, {"name": rule("any_true", "crm_members")})


def test_missing_frame_for_a_listed_source_is_an_error(frames) -> None:
    with pytest.raises(ValueError, match="orders"):
        golden_members(
            frames["identity_map"],
            frames["identities"],
            frames["members"],
            None,
            None,
            {"openid": rule("newest", "mall_orders")},
        )


def test_earliest_is_the_first_registered_record_not_the_stalest_snapshot(spark) -> None:
    """silver.members holds one row per member: M2 (registered 2024) last passed the gate on
    D1, M1 (registered 2020) on D2. The original account is M1 (before: M2, whose snapshot
    was the older, and the pick flipped back once M2 passed the gate again)."""
    members = spark.createDataFrame(
        [
            ("M1", None, None, P1, None, None, None, "STORE", "S001", ts(2020, 1, 1),
             None, None, None, False, D2),
            ("M2", None, None, P1, None, None, None, "MINIAPP", "S002", ts(2024, 6, 1),
             None, None, None, False, D1),
        ],
        MEMBERS_DDL,
    )  # fmt: skip
    orders = spark.createDataFrame([], ORDERS_DDL)
    touches = spark.createDataFrame([], TOUCHES_DDL)
    one_id = spark.createDataFrame(
        [("member_id", "M1", "OID"), ("member_id", "M2", "OID"), ("phone", P1, "OID")], MAP_DDL
    )
    [row] = golden_members(
        one_id,
        identities(members, orders, touches),
        members,
        orders,
        touches,
        load_settings("local").oneid.golden_record,
    ).collect()
    assert (row["member_id"], row["register_channel"], row["register_store_code"]) == (
        "M1",
        "STORE",
        "S001",
    )
