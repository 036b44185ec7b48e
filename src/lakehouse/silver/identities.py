"""Identities: every identifier every source carries, as one tall table for the One ID graph.

One row says "record `record_key` of `source` carries identifier (`identifier_type`,
`identifier_value`)". Two identifiers on one record are the graph's edges; One ID builds the
graph and guards against shared numbers (a store phone keyed in for walk-ins) later.

The design is data-driven: each source is a small {column: identifier_type} mapping, and one
generic function turns any mapping into rows. Adding an identifier type is a mapping change.
Every value goes through the normaliser of its type again (all are idempotent), so a value is
compared in one spelling whatever the caller did; null, blank and masked values (a masked
phone normalises to null) are never identifiers and never make a row.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse.silver import normalise as n

IDENTITY_COLUMNS = [
    "source",
    "record_key",
    "identifier_type",
    "identifier_value",
    "first_seen",
    "last_seen",
    "delivery_date",
]

IDENTITY_KEY = ["source", "record_key", "identifier_type", "identifier_value"]

# {column of the silver frame: identifier type}, one mapping per source.
MEMBER_IDENTIFIERS: dict[str, str] = {
    "member_id": "member_id",
    "card_no": "card_no",
    "phone": "phone",
    "email": "email",
    "unionid": "unionid",
}
ORDER_IDENTIFIERS: dict[str, str] = {
    "buyer_nick": "tmall_nick",
    "jd_pin": "jd_pin",
    "member_id": "member_id",
    "member_card_no": "card_no",
    "unionid": "unionid",
    "openid": "openid",
    "buyer_phone": "phone",
}
TOUCH_IDENTIFIERS: dict[str, str] = {
    "member_id": "member_id",
    "phone": "phone",
    "unionid": "unionid",
}

# Silver order `platform` -> the source the identifiers came from.
ORDER_SOURCES: dict[str, str] = {
    "TMALL": "tmall_orders",
    "JD": "jd_orders",
    "MALL": "mall_orders",
    "POS": "pos_sales",
}


def _midnight_utc(date_col: Column) -> Column:
    """00:00 UTC of a date, as an instant; the session time zone never enters (a plain
    date -> timestamp cast would take midnight in the session zone)."""
    return F.timestamp_seconds(F.unix_date(date_col).cast("long") * F.lit(86400))


def _order_source(platform: Column) -> Column:
    """ORDER_SOURCES[platform]; a platform not listed becomes `<platform>_orders`."""
    pairs = [F.lit(x) for kv in ORDER_SOURCES.items() for x in kv]
    known = F.try_element_at(F.create_map(*pairs), F.upper(platform))
    return F.coalesce(known, F.concat(F.lower(platform), F.lit("_orders")))


def identifier_rows(
    df: DataFrame,
    source: Column | str,
    record_key: Column,
    event_time: Column,
    delivery_date: Column,
    mapping: Mapping[str, str],
) -> DataFrame:
    """One row per non-null identifier of each record, in the `IDENTITY_COLUMNS` shape.

    `mapping` is {column: identifier_type}; each value is normalised as its type requires
    (normalise.IDENTIFIER_NORMALISERS, an unknown type raises ValueError). `first_seen` and
    `last_seen` are the record's event time, or 00:00 UTC of its delivery date when the event
    time is unknown. A record without a key links nothing, so it makes no rows.
    """
    if not mapping:
        raise ValueError("an identifier mapping needs at least one column")
    pairs = F.array(
        *[
            F.struct(
                F.lit(id_type).alias("identifier_type"),
                n.normalised_identifier(id_type, F.col(column)).alias("identifier_value"),
            )
            for column, id_type in mapping.items()
        ]
    )
    delivery = delivery_date.cast("date")
    seen = F.coalesce(event_time.cast("timestamp"), _midnight_utc(delivery))
    src = F.lit(source) if isinstance(source, str) else source
    return (
        df.select(
            src.alias("source"),
            n.non_blank(record_key).alias("record_key"),
            seen.alias("first_seen"),
            seen.alias("last_seen"),
            delivery.alias("delivery_date"),
            F.inline(pairs),
        )
        .where(F.col("record_key").isNotNull() & F.col("identifier_value").isNotNull())
        .select(*IDENTITY_COLUMNS)
    )


def identities_from_members(members_df: DataFrame) -> DataFrame:
    """Silver members (`members.MEMBER_COLUMNS`) -> identity rows of source `crm_members`.

    The record key is the member_id (itself an identifier, so a member's card, phone, e-mail
    and unionid all hang on it); the event time is the registration time.
    """
    return identifier_rows(
        members_df,
        "crm_members",
        F.col("member_id"),
        F.col("register_time"),
        F.col("snapshot_date"),
        MEMBER_IDENTIFIERS,
    )


def identities_from_orders(orders_df: DataFrame) -> DataFrame:
    """Silver orders of any platform (`orders.ORDER_COLUMNS`) -> identity rows.

    The source follows the platform (ORDER_SOURCES: POS tickets come from `pos_sales`); the
    record key is the order_key; the event time is the order's creation (a POS ticket's txn
    time). Platforms that do not carry an identifier leave its column null: no row.
    """
    return identifier_rows(
        orders_df,
        _order_source(F.col("platform")),
        F.col("order_key"),
        F.col("created_at"),
        F.col("_delivery_date"),
        ORDER_IDENTIFIERS,
    )


def identities_from_touches(touches_df: DataFrame) -> DataFrame:
    """Campaign touches (campaign_id, touch_time, member_id, phone, unionid, touch_key,
    _delivery_date) -> identity rows of source `campaign_touches`; event time: touch_time."""
    return identifier_rows(
        touches_df,
        "campaign_touches",
        F.col("touch_key"),
        F.col("touch_time"),
        F.col("_delivery_date"),
        TOUCH_IDENTIFIERS,
    )


def combine_identities(*frames: DataFrame) -> DataFrame:
    """Union identity frames into one row per (source, record_key, identifier_type,
    identifier_value): earliest first_seen, latest last_seen, latest delivery_date.

    Why: the same record (an order whose state changes, a member in every daily snapshot)
    arrives many times; the graph needs each fact once, with when it was seen.
    """
    if not frames:
        raise ValueError("combine_identities needs at least one frame")
    union = frames[0].select(*IDENTITY_COLUMNS)
    for frame in frames[1:]:
        union = union.unionByName(frame.select(*IDENTITY_COLUMNS))
    return union.groupBy(*IDENTITY_KEY).agg(
        F.min("first_seen").alias("first_seen"),
        F.max("last_seen").alias("last_seen"),
        F.max("delivery_date").alias("delivery_date"),
    )


def identities(
    members_df: DataFrame | None = None,
    orders_df: DataFrame | None = None,
    touches_df: DataFrame | None = None,
) -> DataFrame:
    """The identity table of whichever silver frames are given (at least one)."""
    frames = [
        build(df)
        for build, df in (
            (identities_from_members, members_df),
            (identities_from_orders, orders_df),
            (identities_from_touches, touches_df),
        )
        if df is not None
    ]
    return combine_identities(*frames)


def with_first_delivery(found: DataFrame, previous: DataFrame | None) -> DataFrame:
    """Add `first_delivery_date`: the delivery that first brought the (record, identifier) pair;
    keep the stored `first_seen` when earlier and `last_seen` when later.

    Why: the CRM delivers a full snapshot every day, so `delivery_date` moves for every member
    daily; One ID recomputes only what is new (a pair first delivered on its run date), and an
    unchanged member re-delivered must not count as new. `previous` is silver.identities as
    stored (None before the first run); an earlier first delivery is kept. The MERGE replaces
    a stored row with today's, so without this a record with no event time (seen at its
    delivery's midnight) would move its `first_seen` to each day it is delivered again.
    """
    found = found.withColumn("first_delivery_date", F.col("delivery_date"))
    if previous is None:
        return found
    kept = {"first_seen": F.least, "last_seen": F.greatest}
    kept = {c: pick for c, pick in kept.items() if c in found.columns and c in previous.columns}
    earlier = previous.select(
        *IDENTITY_KEY,
        F.col("first_delivery_date").alias("_earlier"),
        *[F.col(c).alias(f"_stored_{c}") for c in kept],
    )
    return (
        found.join(earlier, IDENTITY_KEY, "left")
        .withColumn("first_delivery_date", F.least("_earlier", "first_delivery_date"))
        .withColumns({c: pick(f"_stored_{c}", c) for c, pick in kept.items()})
        .drop("_earlier", *[f"_stored_{c}" for c in kept])
    )
