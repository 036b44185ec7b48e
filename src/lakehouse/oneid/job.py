"""The One ID job: link the day's identifiers into the person graph, incrementally.

A run touches only what the day's identities reach (the day's: new since the last day the job
succeeded): the components that hold one of the day's identifiers (or a value suppressed
today) are rebuilt from their records, everything else keeps its one_id untouched. Writes are
ordered so that a crashed run is healed by its rerun: each table is recomputed from
silver.identities and the previous identity map, never patched from itself.

Tables (layer `oneid`): identity_map, links, suppressed_identifiers, one_id_history,
component_sizes, golden_members.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.oneid.components import connected_components
from lakehouse.oneid.graph import (
    IDENTIFIER,
    LINK_COLUMNS,
    RECORD,
    SUPPRESSED_COLUMNS,
    assign_one_ids,
    first_reason,
    fixed_suppressions,
    neighbour_degrees,
    shared_identifiers,
    size_histogram,
    star_links,
    with_node_id,
)
from lakehouse.runtime import JobContext, JobError, JobResult, last_success, since_last_success
from lakehouse.silver.members import LEFT_CRM
from lakehouse.spark import small_frame

LAYER = "oneid"
MAP_COLUMNS = [
    "identifier_type",
    "identifier_value",
    "node_id",
    "one_id",
    "first_seen",
    "last_seen",
    "updated_on",
]
HISTORY_KEY = ["run_date", "old_one_id", "new_one_id", "event"]


class ComponentTooLarge(JobError):
    """The largest component passed oneid.max_component_size: shared values glued people."""


def _previous(ctx: JobContext, table: str, columns: list[str], schema: str) -> DataFrame:
    if ctx.tables.exists(LAYER, table):
        return ctx.tables.read(LAYER, table).select(*columns)
    return small_frame(ctx.spark, [], schema)


def frozen(df: DataFrame) -> DataFrame:
    """Materialise `df` now and cut its lineage.

    Why: the job reads the tables it is about to write. A lazily cached frame that Spark evicts
    and recomputes after a write would silently see the new version (wrong ids, lost history); a
    local checkpoint cannot be recomputed, so at worst the run fails and its rerun heals it.
    """
    return df.localCheckpoint(eager=True)


DROP = "_merge_drop"  # a map row of a value suppressed today: deleted by the map's MERGE


def build_one_id(ctx: JobContext) -> JobResult:
    settings = ctx.settings.oneid
    tables = ctx.tables
    if not tables.exists("silver", "identities"):
        raise JobError(
            f"silver.identities does not exist: run silver.identities for {ctx.run_date}"
        )
    run_day = F.lit(ctx.run_date).cast("date")
    identities = frozen(with_node_id(tables.read("silver", "identities")))
    if "first_delivery_date" not in identities.columns:
        raise JobError(
            "silver.identities has no first_delivery_date: it was written by an older version; "
            "rebuild it (rerun silver.identities from the first day) before running oneid.link"
        )
    # New pairs only: a full CRM snapshot re-delivers every unchanged member every day, and an
    # unchanged record changes neither a degree nor a component. New since the last day this
    # job succeeded, not only today's: a day whose link failed and was not rerun is caught up.
    since = last_success(tables, "oneid.link", ctx.run_date)
    touched = frozen(
        identities.where(since_last_success("first_delivery_date", since, ctx.run_date))
        .select("node_id")
        .distinct()
    )
    store_phones = (
        tables.read("silver", "stores").select("store_phone")
        if tables.exists("silver", "stores")
        else None
    )
    previous_map = frozen(
        _previous(
            ctx,
            "identity_map",
            MAP_COLUMNS,
            "identifier_type string, identifier_value string, node_id long, one_id string, "
            "first_seen timestamp, last_seen timestamp, updated_on date",
        )
    )
    previous_suppressed = frozen(
        _previous(
            ctx,
            "suppressed_identifiers",
            SUPPRESSED_COLUMNS,
            "identifier_type string, identifier_value string, node_id long, reason string, "
            "degree int, neighbour_type string, first_suppressed date",
        )
    )

    # Guards. Placeholders and store phones are judged over every node (a store's phone may
    # arrive in the master after the number was seen). Degrees change only for the nodes on a
    # record that gained a pair today: the new identifier, and every other identifier of that
    # record (a CRM member whose unionid appears has a new neighbour on its member_id and
    # phone too). Those are measured, each over every record that carries it; values already
    # suppressed are not measured again and not followed (they link nothing, and a store
    # phone's records are many).
    fixed = fixed_suppressions(identities, store_phones, settings)
    judged = fixed.select("node_id").unionByName(previous_suppressed.select("node_id"))
    reach = identities.join(
        identities.join(touched.join(judged, "node_id", "left_anti"), "node_id", "left_semi")
        .select(*RECORD)
        .distinct(),
        RECORD,
        "left_semi",
    )
    measured = frozen(reach.select("node_id").distinct().join(judged, "node_id", "left_anti"))
    around = identities.join(
        identities.join(measured, "node_id", "left_semi").select(*RECORD).distinct(),
        RECORD,
        "left_semi",
    )
    shared = shared_identifiers(
        neighbour_degrees(around, fixed).join(measured, "node_id", "left_semi"), settings
    )
    new_suppressed = frozen(
        first_reason(fixed.unionByName(shared))
        .withColumn("first_suppressed", run_day)
        .select(*SUPPRESSED_COLUMNS)
        .join(previous_suppressed.select("node_id"), "node_id", "left_anti")
    )
    suppressed = frozen(
        previous_suppressed.select("node_id").unionByName(new_suppressed.select("node_id"))
    )

    # What the day reaches: components holding a node of a record that gained a pair today
    # (not only the new identifier's own: the record's old identifiers may belong to another
    # one_id, which the new pair merges with this one), or a node to be removed.
    removed = frozen(previous_map.join(suppressed, "node_id", "left_semi").select("node_id"))
    reached_ids = (
        previous_map.join(reach.select("node_id").unionByName(removed), "node_id", "left_semi")
        .select("one_id")
        .distinct()
    )
    previous = frozen(
        previous_map.join(reached_ids, "one_id", "left_semi").select("node_id", "one_id")
    )
    nodes = frozen(
        previous.select("node_id")
        .unionByName(touched)
        .distinct()
        .join(suppressed, "node_id", "left_anti")
    )
    records = frozen(
        identities.join(nodes.unionByName(removed), "node_id", "left_semi")
        .select(*RECORD)
        .distinct()
    )
    links = frozen(star_links(identities.join(records, RECORD, "left_semi"), suppressed, settings))

    found = connected_components(
        links.select(F.col("hub_node").alias("src"), F.col("other_node").alias("dst")),
        nodes.select(F.col("node_id").alias("id")),
        max_rounds=settings.max_rounds,
    )
    components = frozen(found.assignments.select(F.col("id").alias("node_id"), "component"))
    assignments, history = assign_one_ids(components, previous)
    assignments = frozen(assignments)

    sizes = assignments.groupBy("one_id").agg(F.count(F.lit(1)).alias("size"))
    top = sizes.orderBy(F.col("size").desc(), "one_id").first()
    largest = int(top["size"]) if top else 0
    if largest > settings.max_component_size:
        raise ComponentTooLarge(
            f"one_id {top['one_id']} would hold {largest} identifiers, above "
            f"oneid.max_component_size {settings.max_component_size}: a shared value is probably "
            "gluing people together; `lakehouse oneid explain` shows the chain, and "
            "conf/oneid.yml's max_links decides what counts as shared. Nothing was published."
        )

    seen = identities.groupBy("node_id", *IDENTIFIER).agg(
        F.min("first_seen").alias("first_seen"), F.max("last_seen").alias("last_seen")
    )
    changed = frozen(changed_one_ids(previous, assignments))
    new_map = frozen(
        assignments.join(seen, "node_id")
        .join(
            previous_map.select(
                "node_id",
                F.col("one_id").alias("_old_id"),
                F.col("updated_on").alias("_old_updated"),
            ),
            "node_id",
            "left",
        )
        .join(changed.withColumn("_changed", F.lit(True)), "one_id", "left")
        .withColumn(
            "updated_on",
            F.when(
                (F.col("_old_id") == F.col("one_id")) & F.col("_changed").isNull(),
                F.col("_old_updated"),
            ).otherwise(run_day),
        )
        .select(*MAP_COLUMNS)
    )
    # Identifiers seen again today outside the recomputed components keep their one_id; only
    # their last_seen moves.
    seen_again = frozen(
        previous_map.join(new_map.select("node_id"), "node_id", "left_anti")
        .join(suppressed, "node_id", "left_anti")
        .join(
            identities.where(since_last_success("delivery_date", since, ctx.run_date))
            .groupBy("node_id")
            .agg(F.max("last_seen").alias("_seen")),
            "node_id",
        )
        .where(F.col("_seen") > F.col("last_seen"))
        .withColumn("last_seen", F.col("_seen"))
        .select(*MAP_COLUMNS)
    )
    history_rows = frozen(
        history.select(
            run_day.alias("run_date"),
            F.lit(ctx.run_id).alias("run_id"),
            "old_one_id",
            "new_one_id",
            "event",
            "nodes",
        )
    )

    result = JobResult()
    result.versions["oneid.suppressed_identifiers"] = tables.upsert(
        new_suppressed, LAYER, "suppressed_identifiers", ["node_id"], "false"
    )
    tables.delete_matching(records, LAYER, "links", RECORD)
    result.versions["oneid.links"] = tables.append(links.select(*LINK_COLUMNS), LAYER, "links")
    result.versions["oneid.one_id_history"] = tables.upsert(
        history_rows, LAYER, "one_id_history", HISTORY_KEY, "false"
    )
    # Suppressed values leave the map in the same commit that re-assigns their component: with
    # a delete first and the upsert after, a crash between the two left the glued one_id on the
    # component, and the rerun no longer saw the value in the map to reach it again.
    map_changes = (
        new_map.unionByName(seen_again)
        .withColumn(DROP, F.lit(False))
        .unionByName(removed.withColumn(DROP, F.lit(True)), allowMissingColumns=True)
    )
    result.versions["oneid.identity_map"] = tables.upsert(
        map_changes,
        LAYER,
        "identity_map",
        ["node_id"],
        "t.one_id <> s.one_id OR t.updated_on <> s.updated_on OR t.first_seen <> s.first_seen "
        "OR t.last_seen <> s.last_seen",
        delete_flag=DROP,
    )
    histogram = frozen(
        size_histogram(tables.read(LAYER, "identity_map")).select(run_day.alias("run_date"), "*")
    )
    result.versions["oneid.component_sizes"] = tables.replace_where(
        histogram, LAYER, "component_sizes", f"run_date = DATE'{ctx.run_date}'"
    )

    events = {r["event"]: r["count"] for r in history_rows.groupBy("event").count().collect()}
    result.rows_read = touched.count()
    result.rows_written = new_map.count()
    result.rows_quarantined = new_suppressed.count()
    result.details = {
        "new_pairs_since": since,
        "touched_identifiers": result.rows_read,
        "recomputed_identifiers": result.rows_written,
        "seen_again_identifiers": seen_again.count(),
        "rounds": found.rounds,
        "largest_recomputed_component": largest,
        "newly_suppressed": result.rows_quarantined,
        "history_events": events,
        "component_sizes": {r["size_bucket"]: r["components"] for r in histogram.collect()},
    }
    return result


def changed_one_ids(previous: DataFrame, assignments: DataFrame) -> DataFrame:
    """The one_ids whose set of identifiers changed: one gained a node, or lost one (to a
    split, or to suppression: a shared value leaves the map).

    Why: `updated_on` scopes the golden job. A one_id that keeps its id while losing nodes
    (the part of a split that keeps it; a person whose phone turned out to be the store's)
    was not rebuilt, and its golden record kept the lost values: the store phone as its
    phone, another person's card.
    """
    old = previous.select("node_id", F.col("one_id").alias("_old_id"))
    new = assignments.select("node_id", F.col("one_id").alias("_new_id"))
    moved = old.join(new, "node_id", "full").where(
        F.col("_old_id").isNull()
        | F.col("_new_id").isNull()
        | (F.col("_old_id") != F.col("_new_id"))
    )
    return (
        moved.select(F.col("_old_id").alias("one_id"))
        .unionByName(moved.select(F.col("_new_id").alias("one_id")))
        .where(F.col("one_id").isNotNull())
        .distinct()
    )


def golden_scope(
    identity_map: DataFrame,
    identities: DataFrame,
    since: date | None,
    run_date: date,
    members: DataFrame | None = None,
) -> DataFrame:
    """The identity-map rows of the one_ids to rebuild: those with an identifier delivered, or
    whose set of identifiers changed (`updated_on`), or holding a member record that left the
    CRM (`members`: silver.members, `left_crm_on`), after `since` (the golden job's last
    successful day) up to `run_date`. A member who leaves is delivered no more: without the
    last, its golden record would go on saying member.

    Why since, not on the run date: a day whose golden run failed and was not rerun is caught
    up by the next, instead of leaving its people's records as they were.
    """
    touched_records = identities.where(since_last_success("delivery_date", since, run_date))
    if members is not None and LEFT_CRM in members.columns:
        left = members.where(since_last_success(LEFT_CRM, since, run_date)).select(
            F.lit("crm_members").alias("source"), F.col("member_id").alias("record_key")
        )
        touched_records = touched_records.unionByName(
            identities.join(left, ["source", "record_key"], "left_semi")
        )
    touched_nodes = with_node_id(touched_records).select("node_id")
    changed = identity_map.where(since_last_success("updated_on", since, run_date))
    touched = (
        identity_map.join(touched_nodes, "node_id", "left_semi")
        .select("one_id")
        .unionByName(changed.select("one_id"))
        .distinct()
    )
    return identity_map.join(touched, "one_id", "left_semi")


def build_golden(ctx: JobContext) -> JobResult:
    """Golden member records for the one_ids the day touched; records of one_ids merged away or
    dissolved today are removed."""
    from lakehouse.oneid.golden import golden_members

    tables = ctx.tables
    for layer, table, job in (
        (LAYER, "identity_map", "oneid.link"),
        ("silver", "identities", "silver.identities"),
        ("silver", "members", "silver.members"),
        ("silver", "orders", "silver.sales"),
    ):
        if not tables.exists(layer, table):
            raise JobError(f"{layer}.{table} does not exist: run {job} for {ctx.run_date} first")
    since = last_success(tables, "oneid.golden", ctx.run_date)
    identity_map = tables.read(LAYER, "identity_map")
    identities = tables.read("silver", "identities")
    members = tables.read("silver", "members")
    scope = golden_scope(identity_map, identities, since, ctx.run_date, members)
    touches = (
        tables.read("silver", "campaign_touches")
        if tables.exists("silver", "campaign_touches")
        else None
    )
    suppressed = (
        tables.read(LAYER, "suppressed_identifiers")
        if tables.exists(LAYER, "suppressed_identifiers")
        else None
    )
    golden = golden_members(
        scope,
        identities,
        members,
        tables.read("silver", "orders"),
        touches,
        dict(ctx.settings.oneid.golden_record),
        suppressed,
    ).persist()
    result = JobResult()
    if tables.exists(LAYER, "one_id_history") and tables.exists(LAYER, "golden_members"):
        gone = (
            tables.read(LAYER, "one_id_history")
            .where(since_last_success("run_date", since, ctx.run_date))
            .select(F.col("old_one_id").alias("one_id"))
            .join(identity_map.select("one_id"), "one_id", "left_anti")
        )
        tables.delete_matching(gone, LAYER, "golden_members", ["one_id"])
    result.versions["oneid.golden_members"] = tables.upsert(
        golden, LAYER, "golden_members", ["one_id"], "true"
    )
    result.rows_read = scope.count()
    result.rows_written = golden.count()
    result.details["changes_since"] = since
    golden.unpersist()
    return result
