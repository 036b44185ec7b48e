"""Silver jobs for members, campaigns, inventory and identities.

Each follows the sales job's pattern: the run date's bronze slice, exact duplicates split off,
conformed, gated (bad rows to silver.quarantine with their rule), reconciled (bronze rows =
rows handed to the MERGE + duplicates + quarantined, judged by the silver.reconciliation suite
before anything is written), the latest state MERGEd. A line a snapshot model collapsed (a
later line of the same delivery has its key) is recorded as `superseded_in_delivery` and
counts as a duplicate. A kept-but-suspect row (negative on-hand, an unknown location or SKU)
stays in its table with its flag and leaves a quarantine record, so totals never shrink and
nothing goes unreported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.quality.gate import raise_if_failed, run_gate
from lakehouse.quality.results import record_results
from lakehouse.runtime import JobContext, JobError, JobResult
from lakehouse.silver import campaigns as campaign_model
from lakehouse.silver import identities as identity_model
from lakehouse.silver import members as member_model
from lakehouse.silver import normalise as n
from lakehouse.silver.dedup import dropped_by_correction
from lakehouse.silver.inventory import INVENTORY_KEY, inventory_daily
from lakehouse.silver.master import keys_named_in, newest_snapshot_files
from lakehouse.silver.master_job import newest_file_dates, rejected_by_bronze
from lakehouse.silver.members import LEFT_CRM
from lakehouse.silver.sales_job import (
    DELETE,
    REPLACE,
    corrected_files,
    delete_rows,
    delivered,
    duplicate_records,
    earliest_time,
    future_limit,
    reconcile_snapshots,
    retraction_columns,
    superseded_lines,
    superseded_records,
    unreadable_lines,
    with_corrected_by,
    write_quarantine,
    write_reconciliation,
)
from lakehouse.tables import newer_when

SNAPSHOT_NEWER = newer_when(["snapshot_date", "_source_file", "_line_no"])
DELIVERY_NEWER = newer_when(["_delivery_date", "_source_file", "_line_no"])


def _silver(ctx: JobContext, table: str, job: str) -> DataFrame:
    if not ctx.tables.exists("silver", table):
        raise JobError(f"silver.{table} does not exist: run {job} for {ctx.run_date} first")
    return ctx.tables.read("silver", table)


def flag_records(
    df: DataFrame,
    table: str,
    flag: str,
    column: str,
    reason: str,
    key: Sequence[str],
    ctx: JobContext,
) -> DataFrame:
    """Quarantine records for rows kept in `table` whose `flag` is true."""
    return df.where(F.col(flag)).select(
        F.lit(table).alias("table"),
        F.concat_ws(":", *[F.col(k).cast("string") for k in key]).alias("record_key"),
        F.lit(reason).alias("expectation"),
        F.lit(f"{column}: {reason} (row kept, flagged)").alias("rule"),
        F.lit(column).alias("column"),
        F.col(column).cast("string").alias("value"),
        F.lit(reason).alias("reason"),
        F.to_json(F.struct("_source_file", "_line_no")).alias("record"),
        F.lit(ctx.run_id).alias("run_id"),
        F.lit(ctx.run_date).alias("run_date"),
    )


def parameters(ctx: JobContext) -> dict:
    """The suites' run-time parameters, from conf/silver.yml and the run date."""
    limits = ctx.settings.silver.limits
    return {
        "run_date": ctx.run_date.isoformat(),
        "future_limit": future_limit(ctx.run_date, limits.future_tolerance_hours),
        "earliest_time": earliest_time(limits.earliest_business_date),
        "earliest_date": limits.earliest_business_date.isoformat(),
        "max_stock_quantity": limits.max_stock_quantity,
        "max_warehouse_stock_quantity": limits.max_warehouse_stock_quantity,
    }


def _gate(
    ctx: JobContext,
    df: DataFrame,
    suite: str,
    key: list[str],
    references: Mapping[str, DataFrame] | None = None,
):
    outcome = run_gate(
        df,
        suite,
        key_columns=key,
        run_id=ctx.run_id,
        run_date=ctx.run_date,
        parameters=parameters(ctx),
        references=references,
    )
    record_results(ctx.tables, outcome)
    try:
        raise_if_failed(outcome)
    except Exception:
        outcome.release()
        raise
    return outcome


def _delivered(ctx: JobContext, dataset: str) -> DataFrame:
    """The run date's bronze rows, cached: conforming, accounting and quarantine all read them."""
    return delivered(ctx, dataset).persist(StorageLevel.MEMORY_AND_DISK)


def _unique(bronze: DataFrame) -> DataFrame:
    return bronze.where(F.col("_duplicate_of").isNull())


def build_members(ctx: JobContext) -> JobResult:
    """The CRM snapshot of the day, one row per member; the newest snapshot wins, and a member
    the snapshot no longer lists has left the CRM (`left_crm_on`)."""
    bronze = _delivered(ctx, "crm_members")
    try:
        # The newest-dated files are the day's snapshot: a correction of an earlier day
        # delivered beside them describes that day, and its lines are superseded.
        named = newest_file_dates(ctx, ["crm_members"]).get("crm_members")
        snapshot = newest_snapshot_files(_unique(bronze), named)
        members = member_model.members(snapshot, with_checks=True)
        superseded = superseded_lines(_unique(bronze), members)
        with _gate(ctx, members, "silver.members", ["member_id"]) as gate:
            reconciled = reconcile_snapshots(
                ctx, [("crm_members", bronze, superseded, gate.good, gate.quarantined)]
            )
            file_date = named or snapshot.agg(F.max("_file_date")).first()[0]
            leaving, leaving_count = _leaving_the_crm(ctx, snapshot, file_date)
            result = JobResult(rows_read=bronze.count())
            # Departures first: until the upsert, the members the last snapshot listed still
            # carry its date, so a rerun after a crash between the two writes judges the
            # cut-off guard on the same members as the first try (those it marked excepted).
            if leaving_count:
                ctx.tables.update_matching(leaving, "silver", "members", ["member_id"], LEAVES_NOW)
            result.details["left_crm"] = leaving_count
            result.versions["silver.members"] = ctx.tables.upsert(
                member_model.in_the_crm(gate.good.drop(*member_model.MEMBER_READABLE)),
                "silver",
                "members",
                ["member_id"],
                SNAPSHOT_NEWER,
                update_as={LEFT_CRM: KEEP_LATER_DEPARTURE},
            )
            parts = [
                duplicate_records(bronze, "silver.members", ctx),
                superseded_records(superseded, "silver.members", ctx),
                gate.quarantined,
            ]
            result.versions["silver.quarantine"] = write_quarantine(ctx, parts, ["silver.members"])
            result.versions["silver.reconciliation"] = write_reconciliation(ctx, reconciled)
            result.rows_written = gate.good.count()
            result.rows_quarantined = result.rows_read - result.rows_written
        return result
    finally:
        bronze.unpersist()


# A member that left the CRM after the snapshot a row comes from keeps its mark when the row
# replaces the stored one (a rerun of an earlier day, or a day that failed and runs after a
# later one): that snapshot does not put the member back. A later snapshot listing the member
# again does (it came back).
KEEP_LATER_DEPARTURE = f"CASE WHEN t.`{LEFT_CRM}` > s.`snapshot_date` THEN t.`{LEFT_CRM}` END"
# Checked again in the MERGE: a member whose row is of the snapshot's day or later never leaves
# on it; of two days a member was missing, the earlier is the day it left; a rerun of the day
# marks the same members again.
LEAVES_NOW = (
    f"t.`snapshot_date` < s.`{LEFT_CRM}` "
    f"AND (t.`{LEFT_CRM}` IS NULL OR t.`{LEFT_CRM}` >= s.`{LEFT_CRM}`)"
)


def _leaving_the_crm(
    ctx: JobContext, snapshot: DataFrame, snapshot_file_date: dt.date | None
) -> tuple[DataFrame | None, int]:
    """member_id, left_crm_on of the members the run date's full `snapshot` (its bronze lines)
    no longer lists, and their number; (None, 0) when there is nothing to judge: no
    silver.members yet, or no snapshot line today (no file, or a header-only one, a correction
    of an earlier day beside it or not: an empty snapshot is no evidence that everyone left).

    Every member id a snapshot line names counts as listed, the lines the gate quarantines and
    those bronze could not read included: a bad line is no evidence that its member is gone.

    Raises JobError, before silver.members changes (but for the column a table written by an
    older release gains), when the snapshot no longer lists more than
    `silver.max_crm_departure_share` of the members the last snapshot before it listed: a
    cut-off export. Members gone longer ago (say, kept by a release before this mark) are
    marked too, but are no sign of a cut-off file.
    """
    if not ctx.tables.exists("silver", "members"):
        return None, 0
    ctx.tables.add_missing_columns("silver", "members", {LEFT_CRM: "DATE"})
    if snapshot.isEmpty():
        return None, 0
    listed = snapshot.select(n.code(F.col("member_id")).alias("member_id")).unionByName(
        keys_named_in(rejected_by_bronze(ctx, "crm_members", "crm_members"), "member_id")
    )
    held = ctx.tables.read("silver", "members")
    leaving = member_model.left_the_crm(held, listed, ctx.run_date, snapshot_file_date)
    count = leaving.count()
    earlier = held.where(F.col("snapshot_date") < F.lit(ctx.run_date))
    last = earlier.agg(F.max("snapshot_date")).first()[0] if count else None
    if last is not None:
        last_listed = earlier.where(F.col("snapshot_date") == F.lit(last))
        # Not yet marked: a member a try of this day marked already passed this check then.
        unmarked = last_listed.where(F.col(LEFT_CRM).isNull()).select("member_id")
        gone = leaving.join(unmarked, "member_id", "left_semi").count()
        error = ctx.settings.silver.crm_departures_error(gone, last_listed.count(), last)
        if error:
            raise JobError(f"silver.members for {ctx.run_date}: {error}")
    return leaving, count


def _known_campaigns(ctx: JobContext, campaigns: DataFrame) -> DataFrame:
    """The campaign ids a touch may name: today's snapshot (before its gate) and every campaign
    silver.campaigns holds."""
    ids = campaigns.select("campaign_id")
    if ctx.tables.exists("silver", "campaigns"):
        ids = ids.unionByName(ctx.tables.read("silver", "campaigns").select("campaign_id"))
    return ids


def _with_unknown_campaign(touches: DataFrame, known: DataFrame) -> DataFrame:
    """Touches with `_unknown_campaign`: a campaign_id that no known campaign has."""
    ids = known.select("campaign_id").distinct().withColumn("_known", F.lit(True))
    return touches.join(ids, "campaign_id", "left").withColumn(
        "_unknown_campaign", F.col("campaign_id").isNotNull() & F.col("_known").isNull()
    )


def build_campaigns(ctx: JobContext) -> JobResult:
    """Campaigns (latest snapshot per campaign) and the day's touches; a corrected touches file
    takes back the touches of its day it no longer holds (silver.retracted_campaign_touches)."""
    bronze_campaigns = _delivered(ctx, "campaigns")
    bronze_touches = _delivered(ctx, "campaign_touches")
    try:
        return _campaigns(ctx, bronze_campaigns, bronze_touches)
    finally:
        bronze_campaigns.unpersist()
        bronze_touches.unpersist()


def _campaigns(ctx: JobContext, bronze_campaigns: DataFrame, bronze_touches: DataFrame):
    campaigns = campaign_model.campaigns(_unique(bronze_campaigns), with_checks=True)
    touches = campaign_model.campaign_touches(_unique(bronze_touches))
    superseded_campaigns = superseded_lines(_unique(bronze_campaigns), campaigns)
    superseded_touches = superseded_lines(_unique(bronze_touches), touches)
    result = JobResult(rows_read=bronze_campaigns.count() + bronze_touches.count())
    references = {"silver.campaigns": _known_campaigns(ctx, campaigns)}
    with (
        _gate(ctx, campaigns, "silver.campaigns", ["campaign_id"]) as campaign_gate,
        _gate(ctx, touches, "silver.campaign_touches", ["touch_key"], references) as touch_gate,
    ):
        one_per_touch = touch_gate.good.dropDuplicates(["touch_key"])
        good_campaigns = campaign_gate.good.drop(*campaign_model.CAMPAIGN_READABLE)
        reconciled = reconcile_snapshots(
            ctx,
            [
                (
                    "campaigns",
                    bronze_campaigns,
                    superseded_campaigns,
                    campaign_gate.good,
                    campaign_gate.quarantined,
                ),
                (
                    "campaign_touches",
                    bronze_touches,
                    superseded_touches,
                    one_per_touch,
                    touch_gate.quarantined,
                ),
            ],
        )
        result.versions["silver.campaigns"] = ctx.tables.upsert(
            good_campaigns, "silver", "campaigns", ["campaign_id"], SNAPSHOT_NEWER
        )
        touch_merge, flags = one_per_touch, {}
        dropped = dropped_by_correction_of(
            ctx,
            "campaign_touches",
            "campaign_touches",
            touches,
            ["touch_key"],
            ["campaign_id", "member_id"],
        )
        if dropped is not None:
            logged = ["touch_key", "campaign_id", "touch_time", "touch_date"]
            touch_merge = retract(
                ctx, result, dropped, RETRACTED_TOUCHES, logged, one_per_touch, ["touch_key"]
            )
            flags = {"delete_flag": DELETE}
            result.details["retracted_touches"] = dropped.count()
        result.versions["silver.campaign_touches"] = ctx.tables.upsert(
            touch_merge, "silver", "campaign_touches", ["touch_key"], DELIVERY_NEWER, **flags
        )
        parts = [
            duplicate_records(bronze_campaigns, "silver.campaigns", ctx),
            duplicate_records(bronze_touches, "silver.campaign_touches", ctx),
            superseded_records(superseded_campaigns, "silver.campaigns", ctx),
            superseded_records(superseded_touches, "silver.campaign_touches", ctx),
            campaign_gate.quarantined,
            touch_gate.quarantined,
            # campaign_known only warns (the touch happened, One ID needs it): the touch is
            # kept, and each such row says so, as an unknown SKU or store does.
            flag_records(
                _with_unknown_campaign(one_per_touch, references["silver.campaigns"]),
                "silver.campaign_touches",
                "_unknown_campaign",
                "campaign_id",
                "unknown_campaign",
                ["touch_key"],
                ctx,
            ),
        ]
        result.versions["silver.quarantine"] = write_quarantine(
            ctx, parts, ["silver.campaigns", "silver.campaign_touches"]
        )
        result.versions["silver.reconciliation"] = write_reconciliation(ctx, reconciled)
        result.rows_written = good_campaigns.count() + one_per_touch.count()
        result.rows_quarantined = result.rows_read - result.rows_written
    return result


# One row per stock position a corrected inventory file dropped from silver.inventory_daily.
RETRACTED_POSITIONS = "retracted_stock_positions"
# One row per touch a corrected campaign_touches file dropped from silver.campaign_touches.
RETRACTED_TOUCHES = "retracted_campaign_touches"


def dropped_by_correction_of(
    ctx: JobContext,
    dataset: str,
    table: str,
    delivered: DataFrame,
    key: list[str],
    named_by: Sequence[str],
) -> DataFrame | None:
    """The rows of silver.`table` that earlier deliveries' files of a day published and a later
    delivery's file of the same day (its correction) no longer holds, with `corrected_by`;
    None when there are none.

    For a dataset whose file is one day's whole (an inventory snapshot, the day's campaign
    touches): a row it no longer holds was delivered by mistake, and kept it would overstate
    the stock or the campaign's reach (`dropped_by_correction`). `delivered`: every row (by
    `key`) delivered today, before the gate; `named_by`: the codes of a row that a line of the
    correction bronze could not read must name to keep it (`named_by_unreadable_lines`).
    """
    if not ctx.tables.exists("silver", table):
        return None
    found = corrected_files(ctx, dataset)
    if found is None:
        return None
    earlier, corrected = found
    published = ctx.tables.read("silver", table).where(
        (F.col("_delivery_date") < F.lit(ctx.run_date)) & F.col("_source_file").isin(earlier)
    )
    unreadable = unreadable_lines(ctx, dataset, corrected)
    named = [F.col(c) for c in named_by]
    dropped = with_corrected_by(
        dropped_by_correction(published, corrected, delivered, key, unreadable, named), corrected
    ).localCheckpoint()
    return None if dropped.isEmpty() else dropped


def retract(
    ctx: JobContext,
    result: JobResult,
    dropped: DataFrame,
    log: str,
    logged: list,
    good: DataFrame,
    key: list[str],
) -> DataFrame:
    """Log `dropped` in silver.`log` and return the MERGE source that writes `good` and deletes
    the dropped rows (steered by DELETE).

    Logged before the delete: a rerun (or a run killed after the log) finds the rows silver
    still holds and drops them as this run did.
    """
    result.versions[f"silver.{log}"] = ctx.tables.upsert(
        dropped.select(*retraction_columns(ctx, logged)),
        "silver",
        log,
        ["_source_file", "_line_no"],
        "s.retracted_on >= t.retracted_on",
    )
    return good.withColumns({REPLACE: F.lit(False), DELETE: F.lit(False)}).unionByName(
        delete_rows(dropped.select(*key), good)
    )


def build_inventory(ctx: JobContext) -> JobResult:
    """The day's stock snapshot; negative on-hand and unknown codes are kept and flagged."""
    bronze = _delivered(ctx, "inventory")
    try:
        return _inventory(ctx, bronze)
    finally:
        bronze.unpersist()


def _inventory(ctx: JobContext, bronze: DataFrame) -> JobResult:
    # Every version, not the current ones: a product dropped from the snapshots still has stock
    # until it sells out (its sales map to it too, silver.sales' delisted routes), and a store
    # dropped from them (closed) still reports what it holds.
    products = _silver(ctx, "products", "silver.master").select("sku_id").distinct()
    stores = _silver(ctx, "stores", "silver.master").select("store_code").distinct()
    stock = inventory_daily(_unique(bronze), products, stores)
    superseded = superseded_lines(_unique(bronze), stock)
    references = {"silver.products": products, "silver.stores": stores}
    with _gate(ctx, stock, "silver.inventory_daily", INVENTORY_KEY, references) as gate:
        good = gate.good
        reconciled = reconcile_snapshots(
            ctx, [("inventory", bronze, superseded, good, gate.quarantined)]
        )
        result = JobResult(rows_read=bronze.count())
        merge, flags = good, {}
        dropped = dropped_by_correction_of(
            ctx, "inventory", "inventory_daily", stock, INVENTORY_KEY, ["location_code", "sku_id"]
        )
        if dropped is not None:
            logged = [*INVENTORY_KEY, "location_type", "on_hand_qty", "value_at_cost"]
            merge = retract(ctx, result, dropped, RETRACTED_POSITIONS, logged, good, INVENTORY_KEY)
            flags = {"delete_flag": DELETE}
            result.details["retracted_positions"] = dropped.count()
        result.versions["silver.inventory_daily"] = ctx.tables.upsert(
            merge,
            "silver",
            "inventory_daily",
            INVENTORY_KEY,
            DELIVERY_NEWER,
            partition_by=["snapshot_date"],
            **flags,
        )
        flagged = good.withColumns(
            {"_unknown_sku": ~F.col("sku_known"), "_unknown_location": ~F.col("location_known")}
        )
        table = "silver.inventory_daily"
        parts = [
            duplicate_records(bronze, table, ctx),
            superseded_records(superseded, table, ctx),
            gate.quarantined,
            flag_records(
                flagged,
                table,
                "negative_on_hand",
                "on_hand_qty",
                "negative_on_hand",
                INVENTORY_KEY,
                ctx,
            ),
            flag_records(
                flagged, table, "_unknown_sku", "sku_id", "unknown_sku", INVENTORY_KEY, ctx
            ),
            flag_records(
                flagged,
                table,
                "_unknown_location",
                "location_code",
                "unknown_store",
                INVENTORY_KEY,
                ctx,
            ),
        ]
        result.versions["silver.quarantine"] = write_quarantine(ctx, parts, [table])
        result.versions["silver.reconciliation"] = write_reconciliation(ctx, reconciled)
        result.rows_written = good.count()
        result.rows_quarantined = result.rows_read - result.rows_written
    return result


def build_identities(ctx: JobContext) -> JobResult:
    """Every identifier seen in the day's members, orders and touches, for One ID."""
    day = F.col("_delivery_date") == F.lit(ctx.run_date)
    members = _silver(ctx, "members", "silver.members").where(
        F.col("snapshot_date") == F.lit(ctx.run_date)
    )
    orders = _silver(ctx, "orders", "silver.sales").where(day)
    touches = _silver(ctx, "campaign_touches", "silver.campaigns").where(day)
    found = identity_model.identities(members_df=members, orders_df=orders, touches_df=touches)
    stored = ctx.tables.exists("silver", "identities")
    previous = ctx.tables.read("silver", "identities") if stored else None
    found = identity_model.with_first_delivery(found, previous)
    key = identity_model.IDENTITY_KEY
    result = JobResult()
    result.versions["silver.identities"] = ctx.tables.upsert(
        found, "silver", "identities", key, newer_when(["last_seen", "delivery_date"])
    )
    result.rows_read = members.count() + orders.count() + touches.count()
    result.rows_written = found.count()
    return result
