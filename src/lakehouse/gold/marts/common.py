"""What every mart shares: sold lines with allocated net sales and cost, buyers' one_ids, the
business dates a run must recompute, and the gate-and-write step.

Definitions here are the ones docs/metrics.md states; every mart reads them from here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType

from lakehouse.runtime import RUN_LOG, JobContext, JobError
from lakehouse.silver.members import LEFT_CRM
from lakehouse.silver.normalise import shanghai_date
from lakehouse.silver.sales_job import RELEASES, RETRACTIONS
from lakehouse.silver.scd2 import valid_at

log = logging.getLogger(__name__)

MONEY = DecimalType(18, 2)
TOTAL = DecimalType(28, 2)  # sums of MONEY
RATE = "double"
GOLD = "gold"


def money(col: Column) -> Column:
    return col.cast(MONEY)


def ratio(numerator: Column, denominator: Column) -> Column:
    """numerator / denominator as a double; null when the denominator is 0 or null."""
    return F.try_divide(numerator.cast(RATE), F.nullif(denominator.cast(RATE), F.lit(0.0)))


def require(ctx: JobContext, *tables: tuple[str, str, str]) -> None:
    """Fail with one sentence when an input table is missing: (layer, table, job)."""
    for layer, table, job in tables:
        if not ctx.tables.exists(layer, table):
            raise JobError(f"{layer}.{table} does not exist: run {job} for {ctx.run_date} first")


# --- sold lines ------------------------------------------------------------------------------


def _units(order_paid: Column) -> Column:
    """Net units of a line: POS its signed quantity (a return ticket's lines are negative);
    other platforms 0 for an order never paid, else the quantity minus the refunded quantity
    when the line reports it (Tmall), 0 for a fully refunded order whose lines do not (JD,
    mall), else the quantity."""
    qty = F.coalesce(F.col("quantity"), F.lit(0))
    online = (
        F.when(F.col("refunded_quantity").isNotNull(), qty - F.col("refunded_quantity"))
        .when(F.col("status") == "REFUNDED", F.lit(0))
        .otherwise(qty)
    )
    return (
        F.when(F.col("platform") == "POS", qty)
        .when(~order_paid, F.lit(0))
        .otherwise(online)
        .cast("int")
    )


def sold_lines(orders: DataFrame, lines: DataFrame, products: DataFrame) -> DataFrame:
    """One row per order line (an order without lines gets one row, sku_id null), with the
    order's net sales allocated to its lines to the cent.

    Allocation: weight w = line_amount for POS (returns are negative lines), else line_amount
    minus the line's own refund (0 when not reported). When the weights already add up to the
    order's net sales they are the line net sales; otherwise the net sales are split pro rata
    to w, each share rounded half-up to the cent, and the rounding remainder goes to the anchor
    line (largest |w|, then the lowest line number). When the weights add up to 0 the anchor
    line takes it all. So per order sum(line_net_sales) = silver net_sales exactly.

    unit_cost: the product version valid when the order was sold (paid, else created;
    `scd2.valid_at`), null for an unknown SKU. cogs = units x unit_cost; gross_profit =
    line_net_sales - cogs, null without a cost (the line's sales stay in every total).

    Columns: order_key, line_id, business_date, store_code, platform, channel, sku_id,
    quantity, units, line_net_sales, unit_cost, cogs, gross_profit, paid, coupon_code,
    campaign_id, paid_at.
    """
    o = orders.select(
        "order_key",
        "business_date",
        "store_code",
        "platform",
        "channel",
        "status",
        "net_sales",
        "paid_at",
        "created_at",
        "coupon_code",
        "campaign_id",
        (F.col("paid_at").isNotNull() & (F.coalesce("paid_amount", F.lit(0)) > 0)).alias("paid"),
    )
    line_cols = lines.select(
        "order_key",
        "line_id",
        "line_no",
        "sku_id",
        "quantity",
        "line_amount",
        "refunded_quantity",
        F.col("refunded_amount").alias("line_refund"),
    )
    joined = o.join(line_cols, "order_key", "left")
    amount = F.coalesce(F.col("line_amount"), F.lit(0).cast(MONEY))
    weight = F.when(F.col("platform") == "POS", amount).otherwise(
        amount - F.coalesce(F.col("line_refund"), F.lit(0).cast(MONEY))
    )
    per_order = Window.partitionBy("order_key")
    anchor_order = Window.partitionBy("order_key").orderBy(
        F.abs(F.col("_w")).desc(), F.col("line_no").asc_nulls_last(), F.col("line_id")
    )
    target = F.coalesce(F.col("net_sales"), F.lit(0).cast(MONEY))
    weighted = (
        joined.withColumn("_w", money(weight))
        .withColumn("_anchor", F.row_number().over(anchor_order) == 1)
        .withColumn("_wsum", F.sum("_w").over(per_order).cast(TOTAL))
    )
    # Rounded once, from the exact quotient: Spark keeps at least 6 places in a decimal
    # division, and only 6 when its operands are wide (here 37 and 28 digits), so 4.0749997
    # became 4.075000 and then 4.08. At these precisions the quotient keeps 17 places, which no
    # cent amount's share can lose its rounding in; beyond them (absurd amounts the gates
    # quarantine) the wide division still answers.
    product_of = target * F.col("_w")
    exact = F.try_divide(
        product_of.try_cast("decimal(20,4)"), F.col("_wsum").try_cast("decimal(12,2)")
    )
    # Each rounded before the coalesce, whose common type would cut `exact` to 6 places again.
    share = F.coalesce(F.round(exact, 2), F.round(F.try_divide(product_of, F.col("_wsum")), 2))
    first = (
        F.when(F.col("_wsum") == target, F.col("_w"))
        .when(F.col("_wsum") != 0, share)
        .otherwise(F.lit(0))
        .cast(TOTAL)
    )
    allocated = weighted.withColumn("_share", first).withColumn(
        "_rest", target - F.sum("_share").over(per_order)
    )
    net = money(
        F.when(F.col("_anchor"), F.col("_share") + F.col("_rest")).otherwise(F.col("_share"))
    )
    timed = allocated.withColumns(
        {
            "line_net_sales": net,
            "units": _units(F.col("paid")),
            "_sold_at": F.coalesce("paid_at", "created_at"),
        }
    )
    costed = valid_at(
        timed, products, ["sku_id"], "_sold_at", columns=["unit_cost"], last_holds=True
    )
    cogs = money(F.col("units") * F.col("unit_cost"))
    return costed.select(
        "order_key",
        "line_id",
        "business_date",
        "store_code",
        "platform",
        "channel",
        "sku_id",
        "quantity",
        "units",
        "line_net_sales",
        "unit_cost",
        cogs.alias("cogs"),
        money(F.col("line_net_sales") - cogs).alias("gross_profit"),
        "paid",
        "coupon_code",
        "campaign_id",
        "paid_at",
    )


# --- buyers ----------------------------------------------------------------------------------


def order_one_ids(
    orders: DataFrame,
    identity_map: DataFrame,
    identities: DataFrame,
    suppressed: DataFrame | None,
    membership: DataFrame | None = None,
) -> DataFrame:
    """order_key, one_id (null: an anonymous buyer), is_member (the one_id held a CRM member
    record on the order's business date). The mapping is One ID's own
    (`oneid.golden.record_one_ids`); `membership` as for `member_one_ids`.

    On the business date, not today, so that a recomputation of a day counts what its first run
    did: a guest who registered later bought as no member before; a person whose account was
    closed later bought as a member before, and buys as no member after, though the phone still
    links the later orders to the same one_id."""
    from lakehouse.oneid.golden import order_source, record_one_ids

    keys = orders.select(
        order_source(F.col("platform")).alias("source"), F.col("order_key").alias("record_key")
    )
    scoped = identities.join(keys, ["source", "record_key"], "left_semi")
    buyers = record_one_ids(identity_map, scoped, suppressed).select(
        F.col("record_key").alias("order_key"), "one_id"
    )
    members = member_one_ids(identity_map, identities, suppressed, membership).withColumn(
        "_member", F.lit(True)
    )
    return (
        orders.select("order_key", "business_date")
        .join(buyers, "order_key", "left")
        .join(members, "one_id", "left")
        .select(
            "order_key",
            "one_id",
            F.coalesce(F.col("_member") & member_on(F.col("business_date")), F.lit(False)).alias(
                "is_member"
            ),
        )
    )


def member_on(day: Column) -> Column:
    """On a frame of `member_one_ids`: the one_id was a member on `day` (one of its CRM records
    had been registered by then, and not every one had left the CRM)."""
    registered = F.col("member_from").isNull() | (F.col("member_from") <= day)
    return registered & (F.col("member_until").isNull() | (day < F.col("member_until")))


REGISTERED = "registered_on"


def member_one_ids(
    identity_map: DataFrame,
    identities: DataFrame,
    suppressed: DataFrame | None,
    membership: DataFrame | None = None,
) -> DataFrame:
    """one_id, member_from, member_until: the one_ids holding a CRM member record (source
    crm_members), the day the first of their records was registered and the day the last of
    them left the CRM. Either is null when a record says nothing: one with no registration time
    makes the person a member since always, one the CRM still lists a member still.

    `membership`: member_id, left_crm_on and registered_on (optional) of silver.members
    (`crm_membership`); None before silver.members exists. A record merged into another of the
    same person leaves the person a member; an only record closed ends the membership on the
    day the CRM stopped listing it."""
    from lakehouse.oneid.golden import record_one_ids

    crm = identities.where(F.col("source") == "crm_members")
    records = record_one_ids(identity_map, crm, suppressed).select("one_id", "record_key")
    left = registered = F.lit(None).cast("date")
    if membership is not None:
        known = membership.select(
            F.col("member_id").alias("record_key"),
            F.col(LEFT_CRM),
            F.col(REGISTERED) if REGISTERED in membership.columns else registered.alias(REGISTERED),
        )
        records = records.join(known, "record_key", "left")
        left, registered = F.col(LEFT_CRM), F.col(REGISTERED)

    def unless_one_is_null(col: Column, agg: Column) -> Column:
        return F.when(F.count_if(col.isNull()) > 0, F.lit(None).cast("date")).otherwise(agg)

    return records.groupBy("one_id").agg(
        unless_one_is_null(registered, F.min(registered)).alias("member_from"),
        unless_one_is_null(left, F.max(left)).alias("member_until"),
    )


def crm_membership(ctx: JobContext) -> DataFrame | None:
    """member_id, registered_on (the Shanghai date of register_time), left_crm_on of every
    member record of silver.members; None before silver.members exists."""
    if not ctx.tables.exists("silver", "members"):
        return None
    members = ctx.tables.read("silver", "members")
    left = F.col(LEFT_CRM) if LEFT_CRM in members.columns else F.lit(None).cast("date")
    return members.select(
        "member_id",
        shanghai_date(F.col("register_time")).alias(REGISTERED),
        left.alias(LEFT_CRM),
    )


def one_id_inputs(ctx: JobContext) -> tuple[DataFrame, DataFrame, DataFrame | None]:
    """identity_map, identities, suppressed identifiers (None when the table is absent)."""
    require(
        ctx, ("oneid", "identity_map", "oneid.link"), ("silver", "identities", "silver.identities")
    )
    t = ctx.tables
    suppressed = (
        t.read("oneid", "suppressed_identifiers")
        if t.exists("oneid", "suppressed_identifiers")
        else None
    )
    return t.read("oneid", "identity_map"), t.read("silver", "identities"), suppressed


# --- what to recompute -----------------------------------------------------------------------


def touched_dates(ctx: JobContext, orders: DataFrame, lines: DataFrame, mart: str) -> list[date]:
    """The business dates this run must recompute: every date of every order silver changed in
    this run (an order or line delivered on the run date, or a held Tmall line silver.sales
    released into it on the run date), both its business date and its creation date (an order
    paid later moves from its creation date to its payment date), and the run date itself;
    every date when the mart does not exist yet.

    Why the releases: a released line keeps the delivery that brought it, and its order may
    be the version of another delivery (today's was older, or quarantined): by delivery dates
    alone the line's sales reached silver and never the mart. Likewise the business dates of
    the tickets a store's corrected POS file took lines from (silver.retracted_pos_lines): a
    ticket it voided is gone from silver, and only the log still says which day it was."""
    day = F.lit(ctx.run_date).cast("date")
    if not ctx.tables.exists(GOLD, mart):
        dates = orders.select("business_date")
    else:
        changed = (
            orders.where(F.col("_delivery_date") == day)
            .select("order_key")
            .unionByName(lines.where(F.col("_delivery_date") == day).select("order_key"))
        )
        if ctx.tables.exists("silver", RELEASES):
            released = ctx.tables.read("silver", RELEASES).where(F.col("released_on") == day)
            changed = changed.unionByName(released.select("order_key"))
        changed = changed.distinct()
        hit = orders.join(changed, "order_key", "left_semi")
        dates = hit.select("business_date").unionByName(
            hit.select(shanghai_date(F.col("created_at")).alias("business_date"))
        )
        dates = dates.unionByName(_dates_before_the_run(ctx, changed))
        if ctx.tables.exists("silver", RETRACTIONS):
            retracted = ctx.tables.read("silver", RETRACTIONS).where(F.col("retracted_on") == day)
            dates = dates.unionByName(retracted.select("business_date"))
    found = {r[0] for r in dates.where(F.col("business_date").isNotNull()).distinct().collect()}
    return sorted(d for d in found | {ctx.run_date} if d <= ctx.run_date)


def _dates_before_the_run(ctx: JobContext, changed: DataFrame) -> DataFrame:
    """business_date of the `changed` orders in silver.orders as it stood before the run
    date's first silver.sales run (`_orders_before_the_day`); none when there was no such run
    or that state can no longer be read (vacuumed, before the table existed).

    Why: a version whose payment time moved to another day (a corrected payment time, a
    presale's final payment) takes its sales away from the old business date, and only the
    version it replaced still says which date that was: the mart's old slice would keep them,
    counted twice, and store_monthly's reconciliation with silver would fail every later run.
    """
    none = changed.sparkSession.createDataFrame([], "business_date date")
    if not ctx.tables.exists("silver", "orders"):
        return none
    try:
        before = _orders_before_the_day(ctx)
        if before is None:
            return none
        moved = before.join(changed, "order_key", "left_semi").select("business_date")
        found = [(r[0],) for r in moved.distinct().collect()]
    except Exception as exc:  # the state before the run is gone: today's dates must do
        log.warning("silver.orders before the run of %s cannot be read: %s", ctx.run_date, exc)
        return none
    return changed.sparkSession.createDataFrame(found, "business_date date")


def _orders_before_the_day(ctx: JobContext) -> DataFrame | None:
    """silver.orders as it stood before the run date's first silver.sales run: the earlier of
    the version before the first commit such a run tagged (runtime.commit_tag) and the version
    as of the first such run's start in ops.run_log; None when neither exists, or when the
    day's first tagged commit created the table.

    Why both: a run killed after its MERGE and before its run-log row leaves no trace in the
    log, and its rerun's start is after that MERGE (the date an order moved away from was lost,
    its sales counted twice); the tags name the killed run's commits. Commits made before the
    tags existed are found by the log only. A start older than every version the history still
    holds raises, and the caller goes on without that state.
    """
    t, path = ctx.tables, ctx.tables.path("silver", "orders")
    history = (
        DeltaTable.forPath(ctx.spark, path).history().select("version", "timestamp", "userMetadata")
    )
    tagged = [h.version for h in history.collect() if _made_by_sales_of(h.userMetadata, ctx)]
    if tagged and min(tagged) == 0:
        return None
    versions = [min(tagged) - 1] if tagged else []
    started = None
    if t.exists(*RUN_LOG):
        started = (
            t.read(*RUN_LOG)
            .where((F.col("job") == "silver.sales") & (F.col("run_date") == F.lit(ctx.run_date)))
            .agg(F.min("start_time"))
            .first()[0]
        )
    if started is not None:
        as_of = history.where(F.col("timestamp") <= F.lit(started)).agg(F.max("version"))
        version = as_of.first()[0]
        if version is None:
            raise LookupError(f"silver.orders has no version as of {started} left")
        versions.append(version)
    if not versions:
        return None
    return ctx.spark.read.format("delta").option("versionAsOf", min(versions)).load(path)


def _made_by_sales_of(user_metadata: str | None, ctx: JobContext) -> bool:
    try:
        tag = json.loads(user_metadata or "")
    except ValueError:
        return False
    return (
        isinstance(tag, dict)
        and tag.get("job") == "silver.sales"
        and tag.get("run_date") == ctx.run_date.isoformat()
    )


def month_start(d: date) -> date:
    return d.replace(day=1)


def next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def months_of(dates: Iterable[date]) -> list[date]:
    return sorted({month_start(d) for d in dates})


def in_list(column: str, values: Iterable[date | str]) -> str:
    """A SQL condition `column IN ('…', …)` for replace_where (never empty: FALSE then)."""
    items = sorted({v.isoformat() if isinstance(v, date) else str(v) for v in values})
    if not items:
        return "false"
    return f"{column} IN ({', '.join(repr(i) for i in items)})"


# --- gate and write --------------------------------------------------------------------------


@contextmanager
def gated(
    ctx: JobContext,
    df: DataFrame,
    table: str,
    keys: list[str],
    parameters: Mapping[str, object] | None = None,
) -> Iterator[DataFrame]:
    """Gate `df` with expectations/gold.<table>.json, record the verdict, raise when it fails;
    else yield the good rows (cached until the block ends). A gold gate's rules are `fail`
    (quarantine is refused for gold in conf/quality.yml): gold never drops rows silently.

    Why a block: a job writing two tables gates both before it writes either, so a failed
    second gate leaves the first table as it was."""
    from lakehouse.quality.gate import raise_if_failed, run_gate
    from lakehouse.quality.results import record_results

    outcome = run_gate(
        df,
        f"gold.{table}",
        key_columns=keys,
        run_id=ctx.run_id,
        run_date=ctx.run_date,
        parameters={"run_date": ctx.run_date.isoformat(), **(parameters or {})},
    )
    with outcome:
        record_results(ctx.tables, outcome)
        raise_if_failed(outcome)
        yield outcome.good


def replace(
    ctx: JobContext,
    good: DataFrame,
    table: str,
    condition: str,
    partition_by: list[str] | None = None,
) -> tuple[int, int]:
    """Replace the slice `condition` of gold.<table> with `good`: (Delta version, rows)."""
    version = ctx.tables.replace_where(good, GOLD, table, condition, partition_by)
    return version, good.count()


def gate_and_replace(
    ctx: JobContext,
    df: DataFrame,
    table: str,
    keys: list[str],
    condition: str,
    parameters: Mapping[str, object] | None = None,
    partition_by: list[str] | None = None,
) -> tuple[int, int]:
    """`gated`, then `replace` with the good rows: nothing is written when the gate fails.
    Returns (Delta version, rows written)."""
    with gated(ctx, df, table, keys, parameters) as good:
        return replace(ctx, good, table, condition, partition_by)


def daily_as_written(
    ctx: JobContext, table: str, fresh: DataFrame, replaced: str, since: Column
) -> DataFrame:
    """gold.<table> as it will be once `fresh` replaces the slice `replaced`, rows `since` only:
    what a monthly mart reads, before the daily rows are written."""
    if not ctx.tables.exists(GOLD, table):
        return fresh.where(since)
    kept = ctx.tables.read(GOLD, table).where(f"NOT ({replaced})").where(since)
    return kept.unionByName(fresh.where(since).select(*kept.columns))


def total(df: DataFrame, column: str) -> float:
    """sum(column) as a float, 0 for an empty frame (a gate parameter)."""
    value = df.agg(F.sum(column)).first()[0]
    return float(value or 0)
