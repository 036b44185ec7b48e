"""The gold mart jobs (registered in lakehouse.registry): read silver and One ID, compute the
slices the run must recompute, gate each mart with expectations/gold.<table>.json, replace the
slices atomically.

What a run recomputes: every business date (and month) of an order silver changed in this run
(`common.touched_dates`; all dates when the mart does not exist yet), so a rerun changes
nothing and a late refund reaches the day it belongs to.
"""

from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.gold.marts import bundles as bundle_model
from lakehouse.gold.marts import campaign as campaign_model
from lakehouse.gold.marts import inventory as inventory_model
from lakehouse.gold.marts import product as product_model
from lakehouse.gold.marts import store as store_model
from lakehouse.gold.marts.common import (
    GOLD,
    crm_membership,
    daily_as_written,
    gate_and_replace,
    gated,
    in_list,
    member_one_ids,
    months_of,
    next_month,
    one_id_inputs,
    order_one_ids,
    replace,
    require,
    sold_lines,
    total,
    touched_dates,
)
from lakehouse.runtime import JobContext, JobResult
from lakehouse.silver.entity_jobs import RETRACTED_POSITIONS, RETRACTED_TOUCHES

_SALES = (
    ("silver", "orders", "silver.sales"),
    ("silver", "order_lines", "silver.sales"),
    ("silver", "products", "silver.master"),
)
TOLERANCE = 0.005  # yuan: sums are decimals, GX compares them as floats


def _sales(ctx: JobContext) -> tuple[DataFrame, DataFrame, DataFrame]:
    require(ctx, *_SALES)
    t = ctx.tables
    return t.read("silver", "orders"), t.read("silver", "order_lines"), t.read("silver", "products")


def _lines_of(orders: DataFrame, lines: DataFrame, products: DataFrame) -> DataFrame:
    return sold_lines(
        orders, lines.join(orders.select("order_key"), "order_key", "left_semi"), products
    )


def _between(orders: DataFrame, start: date, end: date) -> DataFrame:
    return orders.where(F.col("business_date").between(start, end))


def _sum_bounds(value: float, name: str = "net_sales") -> dict[str, float]:
    return {f"{name}_min": round(value - TOLERANCE, 3), f"{name}_max": round(value + TOLERANCE, 3)}


def build_store_marts(ctx: JobContext) -> JobResult:
    """gold.store_daily for the touched dates, then gold.store_monthly for their months (and
    the month after each, whose growth compares with them)."""
    require(ctx, ("silver", "stores", "silver.master"))
    orders, lines, products = _sales(ctx)
    stores = ctx.tables.read("silver", "stores")
    identity_map, identities, suppressed = one_id_inputs(ctx)
    membership = crm_membership(ctx)
    result = JobResult()

    dates = touched_dates(ctx, orders, lines, "store_daily")
    run_month = ctx.run_date.replace(day=1)
    months = sorted({m for m in months_of(dates)} | {next_month(m) for m in months_of(dates)})
    months = [m for m in months if m <= run_month]
    month_col = F.trunc("business_date", "month")
    # As of the run date: a rerun of an earlier day must not count later days already in silver.
    as_of = F.col("business_date") <= F.lit(ctx.run_date)
    scoped = orders.where(F.col("business_date").isin(dates)).persist()
    month_orders = orders.where(month_col.isin(months) & as_of).persist()
    daily_slice = in_list("business_date", dates)
    try:
        buyers = order_one_ids(scoped, identity_map, identities, suppressed, membership)
        daily = store_model.store_daily(
            scoped, buyers, _lines_of(scoped, lines, products), stores, dates
        )
        silver_total = total(scoped, "net_sales")
        # Both gates pass before either table is written (a failed monthly gate must not leave
        # today's daily rows published): the month reads store_daily as it will be.
        with gated(
            ctx, daily, "store_daily", store_model.DAILY_KEY, _sum_bounds(silver_total)
        ) as daily_good:
            month_buyers = order_one_ids(
                month_orders, identity_map, identities, suppressed, membership
            )
            # The month's daily rows as of the run date too: after later days ran, their rows
            # are in store_daily, and a rerun of an earlier day summed them against silver as
            # of it (the gate failed).
            all_daily = daily_as_written(ctx, "store_daily", daily_good, daily_slice, as_of)
            previous = (
                ctx.tables.read(GOLD, "store_monthly")
                if ctx.tables.exists(GOLD, "store_monthly")
                else None
            )
            monthly = store_model.store_monthly(
                all_daily, previous, month_orders, month_buyers, stores, months
            )
            with gated(
                ctx,
                monthly,
                "store_monthly",
                store_model.MONTHLY_KEY,
                _sum_bounds(total(month_orders, "net_sales")),
            ) as monthly_good:
                version, written = replace(ctx, daily_good, "store_daily", daily_slice)
                result.versions["gold.store_daily"] = version
                result.rows_written += written
                version, written = replace(
                    ctx, monthly_good, "store_monthly", in_list("month", months)
                )
                result.versions["gold.store_monthly"] = version
                result.rows_written += written
    finally:
        scoped.unpersist()
        month_orders.unpersist()
    result.rows_read = len(dates)
    result.details = {
        "dates": [d.isoformat() for d in dates],
        "months": [m.isoformat() for m in months],
        "net_sales": str(silver_total),
    }
    return result


def build_product_marts(ctx: JobContext) -> JobResult:
    """gold.product_daily for the touched dates, gold.product_rankings for their months."""
    require(ctx, ("silver", "inventory_daily", "silver.inventory"))
    orders, lines, products = _sales(ctx)
    cfg = ctx.settings.gold.marts
    result = JobResult()

    dates = touched_dates(ctx, orders, lines, "product_daily")
    scoped = orders.where(F.col("business_date").isin(dates))
    daily = product_model.product_daily(_lines_of(scoped, lines, products))
    daily_slice = in_list("business_date", dates)
    months = months_of(dates)
    first = months[0] - timedelta(days=cfg.demand_window_days)
    # Both gates pass before either table is written; the rankings read product_daily as it
    # will be.
    with gated(
        ctx,
        daily,
        "product_daily",
        product_model.DAILY_KEY,
        _sum_bounds(total(scoped, "net_sales")),
    ) as daily_good:
        window_lines = _lines_of(_between(orders, first, ctx.run_date), lines, products)
        all_daily = daily_as_written(
            ctx, "product_daily", daily_good, daily_slice, F.col("business_date") >= first
        )
        stock = ctx.tables.read("silver", "inventory_daily").where(
            F.trunc("snapshot_date", "month").isin(months)
            & (F.col("snapshot_date") <= F.lit(ctx.run_date))
        )
        rankings = product_model.product_rankings(
            all_daily,
            products,
            stock,
            inventory_model.daily_demand(window_lines),
            months,
            ctx.run_date,
            cfg,
        )
        with gated(ctx, rankings, "product_rankings", product_model.RANKING_KEY) as ranked:
            version, written = replace(ctx, daily_good, "product_daily", daily_slice)
            result.versions["gold.product_daily"] = version
            result.rows_written += written
            version, written = replace(ctx, ranked, "product_rankings", in_list("month", months))
            result.versions["gold.product_rankings"] = version
            result.rows_written += written
    result.rows_read = len(dates)
    result.details = {
        "dates": [d.isoformat() for d in dates],
        "months": [m.isoformat() for m in months],
    }
    return result


def build_bundles(ctx: JobContext) -> JobResult:
    """gold.bundles: the rules of the window ending on the run date (slice as_of = run date)."""
    orders, lines, products = _sales(ctx)
    cfg = ctx.settings.gold.marts.bundles
    start = bundle_model.window_start(ctx.run_date, cfg)
    sold = _lines_of(_between(orders, start, ctx.run_date), lines, products)
    found = bundle_model.bundle_rules(sold, products, ctx.run_date, cfg)
    version, written = gate_and_replace(
        ctx,
        found,
        "bundles",
        ["as_of", "level", "antecedent", "consequent"],
        f"as_of = '{ctx.run_date.isoformat()}'",
        {"min_lift": cfg.min_lift, "min_support": cfg.min_support},
    )
    return JobResult(
        rows_written=written,
        versions={"gold.bundles": version},
        details={"window_start": start.isoformat()},
    )


def _touch_one_ids(touches: DataFrame, identity_map, identities, suppressed) -> DataFrame:
    from lakehouse.oneid.golden import record_one_ids

    scoped = identities.where(F.col("source") == "campaign_touches").join(
        touches.select(F.col("touch_key").alias("record_key")), "record_key", "left_semi"
    )
    ids = record_one_ids(identity_map, scoped, suppressed).select(
        F.col("record_key").alias("touch_key"), "one_id"
    )
    return touches.join(ids, "touch_key", "left")


def build_campaign_performance(ctx: JobContext) -> JobResult:
    """gold.campaign_performance for the campaigns the day can change
    (`campaign.campaigns_to_recompute`), those a corrected touches file took touches from
    today among them."""
    require(
        ctx,
        ("silver", "campaigns", "silver.campaigns"),
        ("silver", "campaign_touches", "silver.campaigns"),
    )
    orders, lines, products = _sales(ctx)
    window = ctx.settings.gold.marts.campaigns.attribution_window_days
    t = ctx.tables
    campaigns = t.read("silver", "campaigns")
    touches_all = t.read("silver", "campaign_touches")
    identity_map, identities, suppressed = one_id_inputs(ctx)

    dates = touched_dates(ctx, orders, lines, "campaign_performance")
    day = F.lit(ctx.run_date).cast("date")
    retracted = (
        t.read("silver", RETRACTED_TOUCHES).where(F.col("retracted_on") == day)
        if t.exists("silver", RETRACTED_TOUCHES)
        else None
    )
    chosen = campaign_model.campaigns_to_recompute(
        campaigns,
        touches_all,
        orders,
        dates,
        ctx.run_date,
        window,
        everything=not t.exists(GOLD, "campaign_performance"),
        retracted=retracted,
    ).localCheckpoint()
    ids = sorted(r[0] for r in chosen.select("campaign_id").collect())
    bounds = chosen.agg(F.min("_from"), F.max("_to")).first()
    start = bounds[0] or ctx.run_date
    end = min(bounds[1] or ctx.run_date, ctx.run_date)
    # Touches of every campaign in the span: the last touch may belong to another campaign.
    touches = _touch_one_ids(
        touches_all.where(F.col("touch_date").between(start - timedelta(days=window), end)),
        identity_map,
        identities,
        suppressed,
    )
    paid = campaign_model.orders_in_scope(orders, chosen, start, end, ctx.run_date).where(
        F.col("paid_at").isNotNull() & (F.col("paid_amount") > 0)
    )
    membership = crm_membership(ctx)
    buyers = order_one_ids(paid, identity_map, identities, suppressed, membership)
    costed = F.col("unit_cost").isNotNull()
    profit = (
        _lines_of(paid, lines, products)
        .groupBy("order_key")
        .agg(F.sum(F.when(costed, F.col("gross_profit"))).alias("gross_profit"))
    )
    order_rows = paid.join(buyers.select("order_key", "one_id"), "order_key", "left").join(
        profit, "order_key", "left"
    )
    # Read four times (the count, buyers, touched members, those not members yet or any more).
    members = member_one_ids(identity_map, identities, suppressed, membership).persist()
    try:
        perf = campaign_model.campaign_performance(
            campaigns.where(F.col("campaign_id").isin(ids)),
            touches,
            order_rows,
            members,
            window,
            every_campaign=campaigns,
        ).withColumn("as_of", day)
        version, written = gate_and_replace(
            ctx, perf, "campaign_performance", ["campaign_id"], in_list("campaign_id", ids)
        )
    finally:
        members.unpersist()
    return JobResult(
        rows_read=len(ids),
        rows_written=written,
        versions={"gold.campaign_performance": version},
        details={"campaigns": len(ids)},
    )


def build_inventory_position(ctx: JobContext) -> JobResult:
    """gold.inventory_position for the snapshot dates delivered today (all when new), and those
    a corrected inventory file took positions from today."""
    require(ctx, ("silver", "inventory_daily", "silver.inventory"))
    orders, lines, products = _sales(ctx)
    window = ctx.settings.gold.marts.demand_window_days
    stock = ctx.tables.read("silver", "inventory_daily")
    day = F.lit(ctx.run_date).cast("date")
    delivered = (
        stock
        if not ctx.tables.exists(GOLD, "inventory_position")
        else stock.where(F.col("_delivery_date") == day)
    )
    snapshot_dates = delivered.select("snapshot_date")
    if ctx.tables.exists("silver", RETRACTED_POSITIONS):
        # A snapshot a corrected file emptied has no row delivered today: the log names it.
        retracted = ctx.tables.read("silver", RETRACTED_POSITIONS)
        snapshot_dates = snapshot_dates.unionByName(
            retracted.where(F.col("retracted_on") == day).select("snapshot_date")
        )
    dates = sorted(
        r[0] for r in snapshot_dates.where(F.col("snapshot_date").isNotNull()).distinct().collect()
    )
    if not dates:
        return JobResult(details={"snapshot_dates": []})
    scoped = stock.where(F.col("snapshot_date").isin(dates))
    sold = _lines_of(
        _between(orders, dates[0] - timedelta(days=window), dates[-1]), lines, products
    )
    positions = inventory_model.inventory_position(
        scoped, inventory_model.daily_demand(sold), window
    )
    expected = scoped.count()
    version, written = gate_and_replace(
        ctx,
        positions,
        "inventory_position",
        inventory_model.POSITION_KEY,
        in_list("snapshot_date", dates),
        {"expected_rows": expected},
    )
    return JobResult(
        rows_read=expected,
        rows_written=written,
        versions={"gold.inventory_position": version},
        details={"snapshot_dates": [d.isoformat() for d in dates]},
    )
