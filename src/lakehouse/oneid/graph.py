"""The One ID graph as pure DataFrame transforms: nodes, guards, star links, stable ids.

A node is an identifier (type, normalised value); a record that carries several identifiers
links them. Everything here is deterministic: node ids are a hash of (type, value), a record's
star hangs on its highest-priority identifier, and one_ids come from node ids, so the same input
gives the same graph and the same ids on every run and every cluster.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.config import OneIdSettings

RECORD = ["source", "record_key"]
IDENTIFIER = ["identifier_type", "identifier_value"]

LINK_COLUMNS = [
    "hub_type",
    "hub_value",
    "hub_node",
    "other_type",
    "other_value",
    "other_node",
    "source",
    "record_key",
    "first_seen",
    "last_seen",
    "delivery_date",
]
LINK_KEY = ["source", "record_key", "hub_node", "other_node"]

SUPPRESSED_COLUMNS = [
    "identifier_type",
    "identifier_value",
    "node_id",
    "reason",
    "degree",
    "neighbour_type",
    "first_suppressed",
]
# When a value is suppressed for several reasons, the first one here is the one recorded.
REASONS = ("placeholder", "store_phone", "shared")


def node_id(identifier_type: Column | str, identifier_value: Column | str) -> Column:
    """A stable 64-bit id of (type, value): Spark's xxhash64 is seeded and platform-independent,
    unlike monotonically_increasing_id, which depends on partitioning."""
    return F.xxhash64(
        F.col(identifier_type) if isinstance(identifier_type, str) else identifier_type,
        F.col(identifier_value) if isinstance(identifier_value, str) else identifier_value,
    )


def one_id_of(seed: Column) -> Column:
    """`OID` + 16 hex digits of a long: readable, fixed width, sortable."""
    return F.concat(F.lit("OID"), F.lpad(F.upper(F.hex(seed)), 16, "0"))


def with_node_id(identities: DataFrame) -> DataFrame:
    return identities.withColumn("node_id", node_id("identifier_type", "identifier_value"))


def is_placeholder(settings: OneIdSettings) -> Column:
    """True for a value that never links (configured lists and patterns, per type or `any`)."""
    value = F.lower(F.col("identifier_value"))
    typ = F.col("identifier_type")
    hits: list[Column] = []
    for scope, values in settings.placeholders.items():
        if not values:
            continue
        hit = value.isin([v.lower() for v in values])
        hits.append(hit if scope == "any" else (typ == scope) & hit)
    for scope, patterns in settings.placeholder_patterns.items():
        for pattern in patterns:
            hit = F.col("identifier_value").rlike(pattern)
            hits.append(hit if scope == "any" else (typ == scope) & hit)
    if not hits:
        return F.lit(False)
    flag = hits[0]
    for hit in hits[1:]:
        flag = flag | hit
    return flag


def neighbour_degrees(identities: DataFrame, excluded: DataFrame | None = None) -> DataFrame:
    """Per node and neighbouring identifier type: how many distinct values of that type the node
    was seen with on one record. `excluded` nodes (placeholders) count for nobody.

    Only other types count (docs/oneid.md): a CRM record keeps every phone its member ever had,
    and those phones are one person's, not a number shared among people.

    Input: identity rows with `node_id`. Output: node_id, identifier_type, identifier_value,
    neighbour_type, degree.
    """
    rows = identities.select(*RECORD, *IDENTIFIER, "node_id").distinct()
    if excluded is not None:
        rows = rows.join(excluded.select("node_id"), "node_id", "left_anti")
    others = rows.select(
        *RECORD,
        F.col("identifier_type").alias("neighbour_type"),
        F.col("node_id").alias("neighbour_node"),
    )
    return (
        rows.join(others, RECORD)
        .where(F.col("identifier_type") != F.col("neighbour_type"))
        .groupBy("node_id", *IDENTIFIER, "neighbour_type")
        .agg(F.count_distinct("neighbour_node").cast("int").alias("degree"))
    )


def _limit(settings: OneIdSettings) -> Column:
    """max_links of (identifier_type, neighbour_type) as a Column, from the configuration."""
    expr = None
    for typ, spec in settings.identifier_types.items():
        per_type = F.lit(spec.max_links)
        for neighbour, limit in spec.max_links_by_type.items():
            per_type = F.when(F.col("neighbour_type") == neighbour, F.lit(limit)).otherwise(
                per_type
            )
        cond = F.col("identifier_type") == typ
        expr = F.when(cond, per_type) if expr is None else expr.when(cond, per_type)
    # A type missing from the configuration links nothing at all (see star_links).
    return expr.otherwise(F.lit(0)) if expr is not None else F.lit(0)


def shared_identifiers(degrees: DataFrame, settings: OneIdSettings) -> DataFrame:
    """Nodes seen with more distinct values of one type than their type allows, one row each,
    naming the neighbour type that broke the limit most (ties: type name)."""
    over = degrees.withColumn("_limit", _limit(settings)).where(F.col("degree") > F.col("_limit"))
    worst = Window.partitionBy("node_id").orderBy(
        (F.col("degree") - F.col("_limit")).desc(), F.col("neighbour_type")
    )
    return (
        over.withColumn("_rank", F.row_number().over(worst))
        .where(F.col("_rank") == 1)
        .select(*IDENTIFIER, "node_id", F.lit("shared").alias("reason"), "degree", "neighbour_type")
    )


def fixed_suppressions(
    identities: DataFrame, store_phones: DataFrame | None, settings: OneIdSettings
) -> DataFrame:
    """Values that link nothing whatever they are seen with: placeholders and the stores' own
    phone numbers (`store_phones.store_phone`, normalised; None when there is no stores master).

    Input: identity rows with node_id. Output: `SUPPRESSED_COLUMNS` without first_suppressed.
    An identifier type conf/oneid.yml does not configure is an error, not a silent non-link.
    """
    nodes = identities.select(*IDENTIFIER, "node_id").distinct()
    unknown = [
        r[0]
        for r in nodes.where(~F.col("identifier_type").isin(list(settings.identifier_types)))
        .select("identifier_type")
        .distinct()
        .collect()
    ]
    if unknown:
        raise ValueError(
            "silver.identities holds identifier types that conf/oneid.yml does not configure: "
            + ", ".join(sorted(unknown))
        )
    no_degree = (
        F.lit(None).cast("int").alias("degree"),
        F.lit(None).cast("string").alias("neighbour_type"),
    )
    found = nodes.where(is_placeholder(settings)).select(
        *IDENTIFIER, "node_id", F.lit("placeholder").alias("reason"), *no_degree
    )
    if store_phones is not None:
        phones = (
            store_phones.select(F.col("store_phone").alias("identifier_value"))
            .where(F.col("identifier_value").isNotNull())
            .distinct()
        )
        found = found.unionByName(
            nodes.where(F.col("identifier_type") == "phone")
            .join(phones, "identifier_value", "left_semi")
            .select(*IDENTIFIER, "node_id", F.lit("store_phone").alias("reason"), *no_degree)
        )
    return found


def first_reason(suppressed: DataFrame) -> DataFrame:
    """One row per node: the first of its reasons in `REASONS` order."""
    order = F.array_position(F.array(*[F.lit(r) for r in REASONS]), F.col("reason"))
    first = Window.partitionBy("node_id").orderBy(order)
    return (
        suppressed.withColumn("_rank", F.row_number().over(first))
        .where(F.col("_rank") == 1)
        .drop("_rank")
    )


def suppressed_identifiers(
    identities: DataFrame,
    store_phones: DataFrame | None,
    settings: OneIdSettings,
    run_date,
) -> DataFrame:
    """Every value of `identities` (with node_id) that must link nothing, with its reason, in one
    batch: placeholders, store phones, and values shared beyond their type's limit."""
    fixed = fixed_suppressions(identities, store_phones, settings)
    shared = shared_identifiers(neighbour_degrees(identities, fixed), settings)
    return (
        first_reason(fixed.unionByName(shared))
        .withColumn("first_suppressed", F.lit(run_date).cast("date"))
        .select(*SUPPRESSED_COLUMNS)
    )


def star_links(identities: DataFrame, suppressed: DataFrame, settings: OneIdSettings) -> DataFrame:
    """The record's identifiers as a star from its highest-priority one (ties: value), without
    suppressed values: n identifiers give n - 1 links, not n(n-1)/2.

    Input: identity rows with node_id. Output: `LINK_COLUMNS`, one row per record and other
    identifier; first/last seen and delivery date are the record's.
    """
    pairs = [F.lit(x) for t, s in settings.identifier_types.items() for x in (t, s.priority)]
    priority = F.try_element_at(F.create_map(*pairs), F.col("identifier_type"))
    rows = (
        identities.join(suppressed.select("node_id"), "node_id", "left_anti")
        .select(*RECORD, *IDENTIFIER, "node_id", "first_seen", "last_seen", "delivery_date")
        .withColumn("_priority", priority)
    )
    by_record = Window.partitionBy(*RECORD)
    first = by_record.orderBy("_priority", "identifier_value", "identifier_type")
    ranked = (
        rows.withColumn("_rank", F.row_number().over(first))
        .withColumn("first_seen", F.min("first_seen").over(by_record))
        .withColumn("last_seen", F.max("last_seen").over(by_record))
        .withColumn("delivery_date", F.max("delivery_date").over(by_record))
    )
    hubs = ranked.where(F.col("_rank") == 1).select(
        *RECORD,
        F.col("identifier_type").alias("hub_type"),
        F.col("identifier_value").alias("hub_value"),
        F.col("node_id").alias("hub_node"),
    )
    others = ranked.where(F.col("_rank") > 1).select(
        *RECORD,
        F.col("identifier_type").alias("other_type"),
        F.col("identifier_value").alias("other_value"),
        F.col("node_id").alias("other_node"),
        "first_seen",
        "last_seen",
        "delivery_date",
    )
    return (
        hubs.join(others, RECORD)
        .where(F.col("hub_node") != F.col("other_node"))
        .dropDuplicates(LINK_KEY)
        .select(*LINK_COLUMNS)
    )


def assign_one_ids(components: DataFrame, previous: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Stable one_ids for freshly computed components, given the ids their nodes had before.

    `components`: node_id, component (the component's smallest node id). `previous`: node_id,
    one_id for the nodes that had one. Returns (assignments: node_id, one_id; history: old_one_id,
    new_one_id, event, nodes).

    The rules, all deterministic: each old one_id is kept by the new component holding most of its
    nodes (ties: smallest component). A component keeping several old ids is a MERGE: the old id
    with most nodes survives (ties: smallest id) and the others point to it. A component keeping
    none gets a new id: from its smallest node when it is brand new, from (old id, component) when
    it is a piece split off an old id (SPLIT). An old id whose nodes all left is DISSOLVED.
    Rerunning on its own output changes nothing: every component then keeps exactly its own id.
    """
    overlap = (
        components.join(previous, "node_id")
        .groupBy("component", "one_id")
        .agg(F.count(F.lit(1)).alias("nodes"))
    )
    keeper = Window.partitionBy("one_id").orderBy(F.col("nodes").desc(), "component")
    kept = overlap.withColumn("_k", F.row_number().over(keeper)).where(F.col("_k") == 1).drop("_k")
    survivor_order = Window.partitionBy("component").orderBy(F.col("nodes").desc(), "one_id")
    survivors = (
        kept.withColumn("_s", F.row_number().over(survivor_order))
        .where(F.col("_s") == 1)
        .select("component", F.col("one_id").alias("_survivor"))
    )
    largest_old = (
        overlap.withColumn("_l", F.row_number().over(survivor_order))
        .where(F.col("_l") == 1)
        .select("component", F.col("one_id").alias("_largest_old"))
    )
    new_ids = (
        components.select("component")
        .distinct()
        .join(survivors, "component", "left")
        .join(largest_old, "component", "left")
        .select(
            "component",
            F.coalesce(
                F.col("_survivor"),
                F.when(
                    F.col("_largest_old").isNotNull(),
                    one_id_of(F.xxhash64(F.col("_largest_old"), F.col("component"))),
                ),
                one_id_of(F.col("component")),
            ).alias("new_one_id"),
        )
    )
    assignments = components.join(new_ids, "component").select(
        "node_id", F.col("new_one_id").alias("one_id")
    )
    moved = (
        overlap.join(new_ids, "component")
        .where(F.col("one_id") != F.col("new_one_id"))
        .join(
            kept.select("one_id", "component").withColumn("_kept", F.lit(True)),
            ["one_id", "component"],
            "left",
        )
        .select(
            F.col("one_id").alias("old_one_id"),
            "new_one_id",
            F.when(F.col("_kept"), F.lit("MERGE")).otherwise(F.lit("SPLIT")).alias("event"),
            F.col("nodes").cast("long").alias("nodes"),
        )
    )
    dissolved = (
        previous.groupBy("one_id")
        .agg(F.count(F.lit(1)).alias("nodes"))
        .join(overlap.select("one_id").distinct(), "one_id", "left_anti")
        .select(
            F.col("one_id").alias("old_one_id"),
            F.lit(None).cast("string").alias("new_one_id"),
            F.lit("DISSOLVED").alias("event"),
            F.col("nodes").cast("long").alias("nodes"),
        )
    )
    return assignments, moved.unionByName(dissolved)


SIZE_BUCKETS = ((1, 1), (2, 2), (3, 3), (4, 5), (6, 10), (11, 20), (21, 50), (51, 100))


def size_histogram(identity_map: DataFrame) -> DataFrame:
    """Components by size bucket (identifiers per one_id): size_bucket, components, identifiers,
    largest (the largest size in the bucket)."""
    sizes = identity_map.groupBy("one_id").agg(F.count(F.lit(1)).alias("size"))
    bucket = None
    for low, high in SIZE_BUCKETS:
        label = F.lit(str(low) if low == high else f"{low}-{high}")
        cond = F.col("size").between(low, high)
        bucket = F.when(cond, label) if bucket is None else bucket.when(cond, label)
    top = SIZE_BUCKETS[-1][1]
    bucket = bucket.otherwise(F.lit(f">{top}"))
    return (
        sizes.withColumn("size_bucket", bucket)
        .groupBy("size_bucket")
        .agg(
            F.count(F.lit(1)).alias("components"),
            F.sum("size").alias("identifiers"),
            F.min("size").alias("smallest"),
            F.max("size").alias("largest"),
        )
    )
