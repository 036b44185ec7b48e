"""Golden member record: one value per one_id and attribute, by the survivorship rules of config.

Why: every identifier of a person now shares one one_id, but their sources disagree (CRM says one
phone, a Tmall receiver another). conf/oneid.yml `golden_record` states which sources may speak
for each attribute and which rule picks among them; this module applies it, nothing else.

A record (source, record_key) belongs to the one_id of its identifiers in silver.identities that
are in oneid.identity_map. An identifier-typed value (phone, openid, ...) only counts when it is
one of that record's own linked identifiers: a store phone, a placeholder or a shared openid is
not in identity_map, so it can never become a person's golden phone or openid.

Pure DataFrame in, DataFrame out: one join to attribute records, one aggregation per one_id
(`min_by` over a struct sort key, so no window and no Python UDF).
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse.config import GoldenAttribute
from lakehouse.silver.identities import ORDER_SOURCES
from lakehouse.silver.members import LEFT_CRM
from lakehouse.silver.normalise import IDENTIFIER_NORMALISERS, normalised_identifier

RECORD = ["source", "record_key"]
IDENTIFIER = ["identifier_type", "identifier_value"]

# {golden attribute: column of the silver frame}, per kind of silver frame.
MEMBER_ATTRIBUTES: dict[str, str] = {
    name: name
    for name in (
        "phone",
        "email",
        "member_id",
        "card_no",
        "unionid",
        "name",
        "gender",
        "birthday",
        "level",
        "points",
        "register_channel",
        "register_store_code",
        "register_time",
        "marketing_opt_out",
    )
}
# What only a member in the CRM has: a member record the CRM no longer lists
# (silver.members.left_crm_on) offers none of them, and is not among a person's member_ids:
# its account (member_id, the account to address) is gone, and its level and points with it.
# Its other identifiers, name, registration and opt-out stay facts about the person.
MEMBERSHIP_ATTRIBUTES = ("member_id", "level", "points")
ORDER_ATTRIBUTES: dict[str, str] = {
    "phone": "buyer_phone",
    "card_no": "member_card_no",
    "unionid": "unionid",
    "openid": "openid",
    "tmall_nick": "buyer_nick",
    "jd_pin": "jd_pin",
    "member_id": "member_id",
    "name": "receiver_name",
    "province": "receiver_province",
    "city": "receiver_city",
}
TOUCH_ATTRIBUTES: dict[str, str] = {
    "member_id": "member_id",
    "phone": "phone",
    "unionid": "unionid",
}

# The kind of frame each identity source comes from.
SOURCE_KIND: dict[str, str] = {
    "crm_members": "members",
    **{source: "orders" for source in ORDER_SOURCES.values()},
    "campaign_touches": "touches",
}
KIND_ATTRIBUTES: dict[str, dict[str, str]] = {
    "members": MEMBER_ATTRIBUTES,
    "orders": ORDER_ATTRIBUTES,
    "touches": TOUCH_ATTRIBUTES,
}

# Sorts after every real instant in an ascending key (a candidate without a time ranks last).
_LAST = 2**63 - 1


def check_rules(rules: Mapping[str, GoldenAttribute]) -> None:
    """Fail before any Spark work when an attribute or a (source, attribute) pair has no column."""
    if not rules:
        raise ValueError("golden_record configures no attribute")
    for attribute, rule in rules.items():
        providers = sorted(
            s for s, kind in SOURCE_KIND.items() if attribute in KIND_ATTRIBUTES[kind]
        )
        if not providers:
            raise ValueError(
                f"golden_record.{attribute}: no source provides a column {attribute!r}; "
                f"known attributes: {', '.join(sorted(_all_attributes()))}"
            )
        missing = [s for s in rule.sources if s not in providers]
        if missing:
            raise ValueError(
                f"golden_record.{attribute}: {', '.join(missing)} has no column for "
                f"{attribute!r}; sources that do: {', '.join(providers)}"
            )


def _all_attributes() -> set[str]:
    return {a for mapping in KIND_ATTRIBUTES.values() for a in mapping}


def _midnight_utc(date_col: Column) -> Column:
    """00:00 UTC of a date, independent of the session time zone (as silver.identities does)."""
    return F.timestamp_seconds(F.unix_date(date_col).cast("long") * F.lit(86400))


def order_source(platform: Column) -> Column:
    """The identity source of an order's platform, as silver.identities names it."""
    pairs = [F.lit(x) for kv in ORDER_SOURCES.items() for x in kv]
    known = F.try_element_at(F.create_map(*pairs), F.upper(platform))
    return F.coalesce(known, F.concat(F.lower(platform), F.lit("_orders")))


def record_one_ids(
    identity_map: DataFrame, identities: DataFrame, suppressed: DataFrame | None
) -> DataFrame:
    """source, record_key, one_id, identifiers (array of its linked (type, value) structs).

    A record whose identifiers fall in two one_ids (tables of different runs) takes the smaller
    one_id, and only that one_id's identifiers, so the pick is deterministic.
    """
    ids = identities.select(*RECORD, *IDENTIFIER)
    if suppressed is not None:
        ids = ids.join(
            F.broadcast(suppressed.select(*IDENTIFIER).distinct()), IDENTIFIER, "left_anti"
        )
    linked = ids.join(identity_map.select(*IDENTIFIER, "one_id"), IDENTIFIER)
    grouped = linked.groupBy(*RECORD).agg(
        F.min("one_id").alias("one_id"),
        F.collect_set(F.struct("one_id", *IDENTIFIER)).alias("_ids"),
    )
    return grouped.select(
        *RECORD,
        "one_id",
        F.transform(
            F.filter("_ids", lambda s: s["one_id"] == F.col("one_id")),
            lambda s: F.struct(s["identifier_type"], s["identifier_value"]),
        ).alias("identifiers"),
    )


def _candidates(kind: str, frame: DataFrame, attributes: list[str]) -> DataFrame:
    """The rows of one silver frame as source, record_key, the sort keys `_seen` / `_tiebreak`
    (the newest state), `_first` (when the record began: `earliest` sorts by it), and those
    configured attributes this kind of frame has a column for."""
    mapping = KIND_ATTRIBUTES[kind]
    left = F.lit(False)
    if kind == "members":
        source, key = F.lit("crm_members"), F.col("member_id")
        seen = F.coalesce(_midnight_utc(F.col("snapshot_date")), F.col("register_time"))
        tiebreak = F.col("register_time")
        # Not the snapshot: silver holds one row per member, and a record that missed today's
        # snapshot (quarantined) would look older than the account registered years before it.
        first = F.coalesce(F.col("register_time"), _midnight_utc(F.col("snapshot_date")))
        if LEFT_CRM in frame.columns:
            left = F.col(LEFT_CRM).isNotNull()
    elif kind == "orders":
        source, key = order_source(F.col("platform")), F.col("order_key")
        seen = F.coalesce(F.col("updated_at"), F.col("created_at"))
        tiebreak = F.col("created_at")
        first = F.coalesce(F.col("created_at"), F.col("updated_at"))
    else:
        source, key = F.lit("campaign_touches"), F.col("touch_key")
        seen, tiebreak = F.col("touch_time"), F.lit(None).cast("timestamp")
        first = F.col("touch_time")
    values = []
    for a in (a for a in attributes if a in mapping):
        value = (
            normalised_identifier(a, F.col(mapping[a]))
            if a in IDENTIFIER_NORMALISERS
            else F.col(mapping[a])
        )
        values.append((F.when(~left, value) if a in MEMBERSHIP_ATTRIBUTES else value).alias(a))
    return frame.select(
        source.alias("source"),
        key.alias("record_key"),
        seen.cast("timestamp").alias("_seen"),
        tiebreak.cast("timestamp").alias("_tiebreak"),
        first.cast("timestamp").alias("_first"),
        left.alias("_left_crm"),
        *values,
    )


def _micros(ts: Column, descending: bool) -> Column:
    """A long that sorts ascending in the wanted direction; a missing time sorts last."""
    micros = F.unix_micros(ts)
    return F.coalesce(-micros if descending else micros, F.lit(_LAST))


def _pick(attribute: str, rule: GoldenAttribute, dtype: str) -> Column:
    """The aggregate choosing one value of `attribute` per one_id by its rule."""
    value = F.col(attribute)
    valid = value.isNotNull() & F.col("source").isin(rule.sources)
    if attribute in IDENTIFIER_NORMALISERS:
        valid = valid & F.exists(
            "identifiers",
            lambda s: (s["identifier_type"] == attribute) & (s["identifier_value"] == value),
        )
    if rule.rule == "any_true":
        if dtype != "boolean":
            raise ValueError(
                f"golden_record.{attribute}: rule any_true needs a boolean column, not {dtype}"
            )
        return F.bool_or(F.when(valid, value)).alias(attribute)
    if rule.rule == "earliest":
        order = [
            _micros(F.col("_first"), descending=False),
            _micros(F.col("_seen"), descending=False),
            value,  # equal times: the smallest value, so the pick is deterministic
        ]
    else:
        order = [
            _micros(F.col("_seen"), descending=True),
            _micros(F.col("_tiebreak"), descending=True),
            value,
        ]
    if rule.rule == "priority_then_newest":
        rank = F.array_position(F.array(*[F.lit(s) for s in rule.sources]), F.col("source"))
        order.insert(0, rank)
    return F.min_by(value, F.when(valid, F.struct(*order))).alias(attribute)


def golden_members(
    identity_map: DataFrame,
    identities: DataFrame,
    members: DataFrame | None,
    orders: DataFrame | None,
    touches: DataFrame | None,
    rules: Mapping[str, GoldenAttribute],
    suppressed: DataFrame | None = None,
) -> DataFrame:
    """One row per one_id of `identity_map`: one_id, one column per attribute of `rules` (config
    order), member_ids (sorted ids of the CRM member records still in the CRM: no
    `left_crm_on`), identifier_count, sources (sorted).

    `members` / `orders` / `touches` are silver frames (MEMBER_COLUMNS, ORDER_COLUMNS,
    TOUCH_COLUMNS; only the columns used are needed). A frame may be None when no rule lists its
    sources. `suppressed` (oneid.suppressed_identifiers) also drops values of an older map.
    Raises ValueError for an attribute no source provides.
    """
    check_rules(rules)
    attributes = list(rules)
    frames = {"members": members, "orders": orders, "touches": touches}
    needed = {SOURCE_KIND[s] for rule in rules.values() for s in rule.sources}
    absent = sorted(kind for kind in needed if frames[kind] is None)
    if absent:
        raise ValueError(f"golden_record lists sources of {', '.join(absent)}, none was given")

    records = record_one_ids(identity_map, identities, suppressed)
    parts = [
        _candidates(kind, frame, attributes)
        for kind, frame in frames.items()
        if kind in needed and frame is not None
    ]
    rows = parts[0]
    for part in parts[1:]:
        rows = rows.unionByName(part, allowMissingColumns=True)
    # Every attributed record, with its silver rows when a rule reads its source: one shuffle
    # per one_id computes the attributes, member_ids and sources together.
    candidates = records.join(rows, RECORD, "left")
    dtypes = dict(candidates.dtypes)
    golden = candidates.groupBy("one_id").agg(
        *[_pick(a, rules[a], dtypes[a]) for a in attributes],
        F.array_sort(
            F.collect_set(
                F.when(
                    (F.col("source") == "crm_members") & ~F.coalesce("_left_crm", F.lit(False)),
                    F.col("record_key"),
                )
            )
        ).alias("member_ids"),
        F.array_sort(F.collect_set("source")).alias("sources"),
    )
    # identity_map holds one row per identifier.
    people = identity_map.groupBy("one_id").agg(F.count(F.lit(1)).alias("identifier_count"))
    empty = F.array().cast("array<string>")
    return people.join(golden, "one_id", "left").select(
        "one_id",
        *attributes,
        F.coalesce("member_ids", empty).alias("member_ids"),
        "identifier_count",
        F.coalesce("sources", empty).alias("sources"),
    )
