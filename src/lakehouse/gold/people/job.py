"""Gold jobs for people: gold.member_portrait, then gold.member_tags (+ gold.tag_catalog).

Both tables hold the current state as of the last run date (the run date is column `as_of`;
Delta's history keeps earlier states): the portrait is recomputed for every one_id each run,
since RFM quintiles and means are relative to all buyers. Rerunning the last day writes the
same rows; an older day is rewritten from silver and One ID as they are now (docs/people.md).
Each table passes its gate (expectations/gold.*.json, policy fail) before it is written.
"""

from __future__ import annotations

from datetime import date

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.gold.people import pii
from lakehouse.gold.people.portrait import (
    PORTRAIT_COLUMNS,
    build_portrait,
    order_history,
    purchase_lines,
)
from lakehouse.gold.people.tags import (
    TAG_COLUMNS,
    carried_over,
    catalog_frame,
    check_catalog,
    tag_values,
    to_compute,
)

# Reused, not restated: how oneid.golden maps silver records (orders, members, touches) to
# one_ids. (Private names of lakehouse.oneid.golden; see the report to the lead.)
from lakehouse.oneid.golden import order_source, record_one_ids
from lakehouse.quality.gate import raise_if_failed, run_gate
from lakehouse.quality.results import record_results
from lakehouse.runtime import JobContext, JobError, JobResult
from lakehouse.tables import Tables

LAYER = "gold"
ALL_ROWS = "true"  # replace_where condition: the table's whole content

REQUIRED = (
    ("oneid", "identity_map", "oneid.link"),
    ("oneid", "golden_members", "oneid.golden"),
    ("silver", "identities", "silver.identities"),
    ("silver", "orders", "silver.sales"),
    ("silver", "order_lines", "silver.sales"),
    ("silver", "products", "silver.master"),
    ("silver", "stores", "silver.master"),
)


def _require(ctx: JobContext, needed) -> None:
    for layer, table, job in needed:
        if not ctx.tables.exists(layer, table):
            raise JobError(f"{layer}.{table} does not exist: run {job} for {ctx.run_date} first")


def record_mapping(tables: Tables) -> DataFrame:
    """source, record_key, one_id of every silver record with a linked identifier."""
    suppressed = (
        tables.read("oneid", "suppressed_identifiers")
        if tables.exists("oneid", "suppressed_identifiers")
        else None
    )
    return record_one_ids(
        tables.read("oneid", "identity_map"), tables.read("silver", "identities"), suppressed
    ).select("source", "record_key", "one_id")


def history_of(ctx: JobContext, mapping: DataFrame) -> DataFrame:
    """The order history (portrait.HISTORY_COLUMNS) of every person up to the run date."""
    orders = ctx.tables.read("silver", "orders")
    orders = orders.withColumn("source", order_source(F.col("platform")))
    return order_history(orders, mapping, ctx.run_date, ctx.settings.gold.people)


def _gate(ctx: JobContext, df: DataFrame, suite: str, keys: list[str], **kw):
    outcome = run_gate(df, suite, key_columns=keys, run_id=ctx.run_id, run_date=ctx.run_date, **kw)
    record_results(ctx.tables, outcome)
    raise_if_failed(outcome)
    return outcome


def build_member_portrait(ctx: JobContext) -> JobResult:
    cfg = ctx.settings.gold.people
    salt = pii.salt(cfg)  # before any work: no salt, no portrait
    _require(ctx, REQUIRED)
    tables = ctx.tables
    mapping = record_mapping(tables).persist(StorageLevel.MEMORY_AND_DISK)
    history = history_of(ctx, mapping).persist(StorageLevel.MEMORY_AND_DISK)
    day = F.lit(ctx.run_date).cast("date")
    if tables.exists("silver", "campaign_touches"):
        touches = tables.read("silver", "campaign_touches").where(F.col("touch_date") <= day)
        touched = mapping.where(F.col("source") == "campaign_touches").join(
            touches.select(F.col("touch_key").alias("record_key")), "record_key", "left_semi"
        )
    else:
        touched = mapping.limit(0)
    plines = purchase_lines(
        history,
        tables.read("silver", "order_lines"),
        tables.read("silver", "products"),
        cfg.preferences.category_level,
    )
    identity_map = tables.read("oneid", "identity_map")
    one_ids = identity_map.select("one_id").distinct()
    portrait, model = build_portrait(
        one_ids,
        tables.read("oneid", "golden_members"),
        history,
        plines,
        tables.read("silver", "stores"),
        touched.select("one_id"),
        ctx.run_date,
        cfg,
        salt,
    )
    portrait = portrait.persist(StorageLevel.MEMORY_AND_DISK)
    people = one_ids.count()
    result = JobResult(rows_read=history.count())
    try:
        with _gate(
            ctx,
            portrait,
            "gold.member_portrait",
            ["one_id"],
            parameters={
                "expected_rows": people,
                "run_date": ctx.run_date.isoformat(),
                "max_score": cfg.rfm.bins,
                "stages": ["prospect", "potential", "new", "repeat", "loyal"],
            },
        ):
            result.versions["gold.member_portrait"] = tables.replace_where(
                portrait.select(*PORTRAIT_COLUMNS), LAYER, "member_portrait", ALL_ROWS
            )
        result.rows_written = people
        stages = {
            r["lifecycle_stage"]: r["count"]
            for r in portrait.groupBy("lifecycle_stage").count().collect()
        }
        result.details = {"rfm": model.as_details(), "lifecycle": stages}
    finally:
        for frame in (portrait, history, mapping):
            frame.unpersist()
    return result


def build_member_tags(ctx: JobContext) -> JobResult:
    """The catalog's tags due today (daily every run, weekly on Mondays, monthly on the 1st, any
    tag without rows yet or not computed yet this week or month), the others carried over;
    gold.tag_catalog republished."""
    catalog = ctx.settings.tags
    _require(ctx, (*REQUIRED, (LAYER, "member_portrait", "gold.member_portrait")))
    tables = ctx.tables
    portrait = tables.read(LAYER, "member_portrait")
    as_of = portrait.agg(F.max("as_of")).first()[0]
    if as_of != ctx.run_date:
        raise JobError(
            f"gold.member_portrait is as of {as_of}, not {ctx.run_date}: run "
            f"gold.member_portrait for {ctx.run_date} first"
        )
    mapping = record_mapping(tables).persist(StorageLevel.MEMORY_AND_DISK)
    history = history_of(ctx, mapping)
    check_catalog(catalog, portrait, history)

    previous = tables.read(LAYER, "member_tags") if tables.exists(LAYER, "member_tags") else None
    if previous is not None:
        # A backfill of an earlier day recomputes what a later run wrote, never carries it back.
        previous = previous.where(F.col("as_of") <= F.lit(ctx.run_date))
    computed_on: dict[str, date] = {}  # tag → when it was last computed for everyone
    if previous is not None:
        oldest = previous.groupBy("tag_code").agg(F.min("as_of")).collect()
        computed_on = {r[0]: r[1] for r in oldest}
    published = (
        tables.read(LAYER, "tag_catalog").collect() if tables.exists(LAYER, "tag_catalog") else []
    )
    todo = to_compute(catalog, ctx.run_date, computed_on, published)
    kept = [t for t in catalog if t not in todo]
    rows = tag_values(todo, portrait, history, ctx.run_date)
    if previous is not None and kept:
        rows = rows.unionByName(carried_over(kept, previous, portrait, history, ctx.run_date))
    rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
    result = JobResult(rows_read=portrait.count())
    try:
        codes = [t.code for t in catalog] or ["(none)"]
        published = catalog_frame(ctx.spark, catalog).withColumn(
            "published_on", F.lit(ctx.run_date).cast("date")
        )
        # Both gates pass before either table is written: a failed catalog gate must not leave
        # today's tags published beside yesterday's catalog.
        with (
            _gate(
                ctx,
                rows,
                "gold.member_tags",
                ["one_id", "tag_code"],
                parameters={"tag_codes": codes, "run_date": ctx.run_date.isoformat()},
                references={"gold.member_portrait": portrait.select("one_id")},
            ),
            _gate(
                ctx,
                published,
                "gold.tag_catalog",
                ["tag_code"],
                parameters={"expected_rows": len(catalog)},
            ),
        ):
            result.versions["gold.member_tags"] = tables.replace_where(
                rows.select(*TAG_COLUMNS), LAYER, "member_tags", ALL_ROWS
            )
            result.versions["gold.tag_catalog"] = tables.replace_where(
                published, LAYER, "tag_catalog", ALL_ROWS
            )
        counts = {r["tag_code"]: r["count"] for r in rows.groupBy("tag_code").count().collect()}
        result.rows_written = sum(counts.values())
        result.details = {
            "computed": [t.code for t in todo],
            "carried": [t.code for t in kept],
            "rows_per_tag": counts,
        }
    finally:
        rows.unpersist()
        mapping.unpersist()
    return result
