"""Identity rows of every source, on small silver-shaped frames built in the test."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.silver.identities import (
    IDENTITY_COLUMNS,
    combine_identities,
    identifier_rows,
    identities,
    identities_from_members,
    identities_from_orders,
    identities_from_touches,
)

UTC = dt.UTC
DAY1 = dt.date(2026, 3, 1)
DAY2 = dt.date(2026, 3, 2)
MIDNIGHT1 = dt.datetime(2026, 3, 1, tzinfo=UTC)
MIDNIGHT2 = dt.datetime(2026, 3, 2, tzinfo=UTC)

IDENTITY_DDL = (
    "source string, record_key string, identifier_type string, identifier_value string, "
    "first_seen timestamp, last_seen timestamp, delivery_date date"
)
MEMBERS_DDL = (
    "member_id string, card_no string, phone string, email string, unionid string, "
    "register_time timestamp, snapshot_date date"
)
ORDERS_DDL = (
    "order_key string, platform string, buyer_nick string, jd_pin string, member_id string, "
    "member_card_no string, unionid string, openid string, buyer_phone string, "
    "created_at timestamp, _delivery_date date"
)
TOUCHES_DDL = (
    "campaign_id string, touch_time timestamp, member_id string, phone string, unionid string, "
    "touch_key string, _delivery_date date"
)


def ts(*parts: int) -> dt.datetime:
    """An instant given in UTC."""
    return dt.datetime(*parts, tzinfo=UTC)


def _sorted(df: DataFrame) -> DataFrame:
    return df.select(*IDENTITY_COLUMNS).orderBy(
        "source", "record_key", "identifier_type", "identifier_value"
    )


def _check(spark, got: DataFrame, expected_rows: list[tuple]) -> None:
    expected = spark.createDataFrame(expected_rows, IDENTITY_DDL)
    assert_df_equality(_sorted(got), _sorted(expected), ignore_nullable=True)


def test_members_emit_each_identifier_once_and_skip_empty_ones(spark):
    reg = ts(2022, 1, 29, 9, 53, 35)
    members = spark.createDataFrame(
        [
            # every identifier; an e-mail in capitals is compared lower-cased
            ("M1", "8860001", "13800138000", "Li@X.com", "oU7x", reg, DAY1),
            # empty unionid, masked phone, no card: no rows; no register_time: delivery midnight
            ("M2", None, "138****5678", None, "", None, DAY1),
            # no member_id: nothing to hang the identifiers on
            (None, "8860003", "13900000000", None, None, reg, DAY1),
        ],
        MEMBERS_DDL,
    )
    crm = "crm_members"
    _check(
        spark,
        identities_from_members(members),
        [
            (crm, "M1", "member_id", "M1", reg, reg, DAY1),
            (crm, "M1", "card_no", "8860001", reg, reg, DAY1),
            (crm, "M1", "phone", "13800138000", reg, reg, DAY1),
            (crm, "M1", "email", "li@x.com", reg, reg, DAY1),
            (crm, "M1", "unionid", "oU7x", reg, reg, DAY1),
            (crm, "M2", "member_id", "M2", MIDNIGHT1, MIDNIGHT1, DAY1),
        ],
    )


def test_orders_of_every_platform_emit_their_identifiers(spark):
    t1, t2, t3, t4 = ts(2026, 3, 1, 2), ts(2026, 3, 1, 3), ts(2026, 3, 1, 4), ts(2026, 3, 1, 5)
    orders = spark.createDataFrame(
        [
            # Tmall: nick; a masked phone is no identifier, even if a caller left it in
            ("TMALL:1", "TMALL", "小明", None, None, None, None, None, "138****5678", t1, DAY1),
            # JD: pin and a phone; the same phone on a Tmall order stays a row of its own
            ("JD:2", "JD", None, "jd_5f3a", None, None, None, None, "13800138000", t2, DAY1),
            ("TMALL:3", "TMALL", "nick", None, None, None, None, None, "13800138000", t1, DAY1),
            # mall: member, unionid, openid, phone; a blank openid is none
            ("MALL:4", "MALL", None, None, "M1", None, "oU7x", " ", "13900000000", t3, DAY1),
            # POS ticket: card and phone; no txn time -> delivery midnight
            ("POS:S1:5", "POS", None, None, None, "8860001", None, None, "13700000000", None,
             DAY1),
            # a guest mall order with no identifier at all makes no row
            ("MALL:6", "MALL", None, None, None, None, None, None, None, t4, DAY1),
        ],
        ORDERS_DDL,
    )  # fmt: skip
    _check(
        spark,
        identities_from_orders(orders),
        [
            ("tmall_orders", "TMALL:1", "tmall_nick", "小明", t1, t1, DAY1),
            ("jd_orders", "JD:2", "jd_pin", "jd_5f3a", t2, t2, DAY1),
            ("jd_orders", "JD:2", "phone", "13800138000", t2, t2, DAY1),
            ("tmall_orders", "TMALL:3", "tmall_nick", "nick", t1, t1, DAY1),
            ("tmall_orders", "TMALL:3", "phone", "13800138000", t1, t1, DAY1),
            ("mall_orders", "MALL:4", "member_id", "M1", t3, t3, DAY1),
            ("mall_orders", "MALL:4", "unionid", "oU7x", t3, t3, DAY1),
            ("mall_orders", "MALL:4", "phone", "13900000000", t3, t3, DAY1),
            ("pos_sales", "POS:S1:5", "card_no", "8860001", MIDNIGHT1, MIDNIGHT1, DAY1),
            ("pos_sales", "POS:S1:5", "phone", "13700000000", MIDNIGHT1, MIDNIGHT1, DAY1),
        ],
    )


def test_touches_and_combining_across_days(spark):
    t1, t2, reg = ts(2026, 3, 1, 1), ts(2026, 3, 2, 1), ts(2022, 1, 1)
    touches = spark.createDataFrame(
        [
            ("CMP-1", t1, "M1", None, None, "T1", DAY1),
            ("CMP-2", t1, None, "138****5678", "oU7x", "T2", DAY1),
            ("CMP-1", t2, None, "+86 13800138000", None, "T3", DAY2),
        ],
        TOUCHES_DDL,
    )
    members = spark.createDataFrame(
        [
            # the same member in two snapshots: its event time does not move
            ("M1", None, "13800138000", None, None, reg, DAY1),
            ("M1", None, "13800138000", None, None, reg, DAY2),
            # no register_time: seen at each delivery's midnight, first and last differ
            ("M2", None, None, None, None, None, DAY1),
            ("M2", None, None, None, None, None, DAY2),
        ],
        MEMBERS_DDL,
    )
    # frames in any order; the member rows of two days fold into one row each
    got = combine_identities(identities_from_touches(touches), identities_from_members(members))
    crm, ct = "crm_members", "campaign_touches"
    _check(
        spark,
        got,
        [
            (ct, "T1", "member_id", "M1", t1, t1, DAY1),
            (ct, "T2", "unionid", "oU7x", t1, t1, DAY1),
            (ct, "T3", "phone", "13800138000", t2, t2, DAY2),
            (crm, "M1", "member_id", "M1", reg, reg, DAY2),
            (crm, "M1", "phone", "13800138000", reg, reg, DAY2),
            (crm, "M2", "member_id", "M2", MIDNIGHT1, MIDNIGHT2, DAY2),
        ],
    )


def test_mapping_mistakes_fail_before_any_spark_job(spark):
    df = spark.createDataFrame([("a",)], "x string")
    with pytest.raises(ValueError, match="unknown identifier type"):
        identifier_rows(df, "s", F.col("x"), F.lit(None), F.lit(DAY1), {"x": "wechat_id"})
    with pytest.raises(ValueError, match="at least one"):
        identifier_rows(df, "s", F.col("x"), F.lit(None), F.lit(DAY1), {})
    with pytest.raises(ValueError, match="at least one frame"):
        combine_identities()
    with pytest.raises(ValueError, match="at least one frame"):
        identities()


def test_first_delivery_is_kept_for_a_pair_delivered_again_and_set_for_a_new_one(spark):
    from lakehouse.silver.identities import with_first_delivery

    d1, d2 = dt.date(2026, 3, 1), dt.date(2026, 3, 2)
    cols = "source string, record_key string, identifier_type string, identifier_value string"
    previous = spark.createDataFrame(
        [("crm_members", "M1", "phone", "13911110001", d1)], f"{cols}, first_delivery_date date"
    )
    today = spark.createDataFrame(
        [
            ("crm_members", "M1", "phone", "13911110001", d2),  # the snapshot again
            ("crm_members", "M1", "email", "m1@example.cn", d2),  # new on the record
        ],
        f"{cols}, delivery_date date",
    )
    expected = spark.createDataFrame(
        [
            ("crm_members", "M1", "email", "m1@example.cn", d2, d2),
            ("crm_members", "M1", "phone", "13911110001", d2, d1),
        ],
        f"{cols}, delivery_date date, first_delivery_date date",
    )
    got = with_first_delivery(today, previous).orderBy("identifier_type")
    assert_df_equality(got, expected, ignore_nullable=True)
    first_run = with_first_delivery(today, None).orderBy("identifier_type")
    assert [r.first_delivery_date for r in first_run.collect()] == [d2, d2]


def test_a_pair_delivered_again_keeps_its_earliest_first_seen_and_latest_last_seen(spark):
    """Before, the MERGE replaced the stored row with today's: a member without a register
    time (seen at its delivery's midnight) moved its first_seen to every day the snapshot
    brought it again, and a late-delivered older order moved last_seen back."""
    from lakehouse.silver.identities import with_first_delivery

    d1, d2 = dt.date(2026, 3, 1), dt.date(2026, 3, 2)
    cols = (
        "source string, record_key string, identifier_type string, identifier_value string, "
        "first_seen timestamp, last_seen timestamp, delivery_date date"
    )
    at = lambda d, h=0: dt.datetime(2026, 3, d, h, tzinfo=UTC)  # noqa: E731
    previous = spark.createDataFrame(
        [
            ("crm_members", "M1", "phone", "13911110001", at(1), at(1), d1, d1),
            ("tmall_orders", "T1", "tmall_nick", "nick", at(1, 9), at(1, 9), d1, d1),
        ],
        f"{cols}, first_delivery_date date",
    )
    today = spark.createDataFrame(
        [
            ("crm_members", "M1", "phone", "13911110001", at(2), at(2), d2),
            ("tmall_orders", "T1", "tmall_nick", "nick", at(1, 8), at(1, 8), d2),
            ("crm_members", "M2", "phone", "13911110002", at(2), at(2), d2),
        ],
        cols,
    )
    got = with_first_delivery(today, previous)
    assert got.columns == [*IDENTITY_COLUMNS, "first_delivery_date"]
    rows = {r.record_key: (r.first_seen, r.last_seen, r.first_delivery_date) for r in got.collect()}
    as_utc = lambda t: t.astimezone(UTC)  # noqa: E731
    assert {k: (as_utc(f), as_utc(s), d) for k, (f, s, d) in rows.items()} == {
        "M1": (at(1), at(2), d1),
        "T1": (at(1, 8), at(1, 9), d1),
        "M2": (at(2), at(2), d2),
    }
