"""campaign_performance: per campaign, people touched, conversions, uplift over untouched
members, coupon redemptions, attributed sales and gross profit, ROI.

Attribution of a paid order (one campaign at most):
1. directly, when it carries a campaign's campaign_id, else a campaign's coupon_code;
2. else to the buyer's (one_id's) last touch before payment within the attribution window
   (touch_time <= paid_at < touch_time + window days; the latest touch wins, then the larger
   touch_key, so the pick is deterministic).
docs/metrics.md states every formula.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.gold.marts.common import TOTAL, member_on, money, ratio

CAMPAIGN_COLUMNS = [
    "campaign_id",
    "campaign_name",
    "channel",
    "start_date",
    "end_date",
    "window_end",
    "cost",
    "people_touched",
    "identified_touched",
    "converted_people",
    "conversion_rate",
    "control_members",
    "control_buyers",
    "control_purchase_rate",
    "uplift",
    "attributed_orders",
    "direct_orders",
    "coupon_redemptions",
    "attributed_net_sales",
    "attributed_gross_profit",
    "roi",
]


def campaigns_to_recompute(
    campaigns: DataFrame,
    touches: DataFrame,
    orders: DataFrame,
    dates: list,
    run_date,
    window_days: int,
    everything: bool = False,
    retracted: DataFrame | None = None,
) -> DataFrame:
    """campaign_id, coupon_code, _from, _to of the campaigns a run can change.

    A campaign is recomputed when a touch of it was delivered today, when its window (first
    touch, else start_date, to last touch, else end_date, + the attribution window) reaches a
    recomputed date, or when an order of a recomputed date names it by campaign_id or coupon:
    direct attribution has no window (a coupon redeemed after the touches' window counts), so
    the window alone missed those orders. `everything`: the mart is new, every campaign.

    `retracted`: touches (campaign_id, touch_date) a corrected file took back today. They are
    gone from `touches`, yet their campaign's figures still count them: such a campaign is
    recomputed as if they were delivered today, over a span that still reaches their dates.

    A touch delivered (or taken back) today, dated d, also moves the last touch of the orders
    paid from d to d + the window, maybe away from another campaign: every campaign whose
    window reaches those days is recomputed too, else the order stays in the row of the
    campaign it left as well as in the one it joined (or, taken back, in neither).
    """
    day = F.lit(run_date).cast("date")
    if retracted is not None:
        touches = touches.select("campaign_id", "touch_date", "_delivery_date").unionByName(
            retracted.select("campaign_id", "touch_date", day.alias("_delivery_date"))
        )
    spans = touches.groupBy("campaign_id").agg(
        F.min("touch_date").alias("_first"),
        F.max("touch_date").alias("_last"),
        F.bool_or(F.col("_delivery_date") == day).alias("_today"),
    )
    moved_days = F.broadcast(
        touches.where(F.col("_delivery_date") == day)
        .select(F.col("touch_date").alias("_moved_from"))
        .where(F.col("_moved_from").isNotNull())
        .distinct()
        .withColumn("_moved_to", F.date_add("_moved_from", window_days))
    )
    lo, hi = min(dates), max(dates)
    day_orders = orders.where(F.col("business_date").isin(dates))
    named = (
        day_orders.where(F.col("campaign_id").isNotNull())
        .select("campaign_id")
        .unionByName(
            campaigns.join(
                day_orders.where(F.col("coupon_code").isNotNull()).select(
                    F.col("coupon_code").alias("_coupon")
                ),
                F.col("coupon_code") == F.col("_coupon"),
                "left_semi",
            ).select("campaign_id")
        )
        .distinct()
        .withColumn("_named", F.lit(True))
    )
    windows = (
        campaigns.join(spans, "campaign_id", "left")
        .join(named, "campaign_id", "left")
        .withColumn("_from", F.coalesce("_first", "start_date"))
        .withColumn("_to", F.date_add(F.coalesce("_last", "end_date", "start_date"), window_days))
    )
    moved = (
        windows.join(
            moved_days,
            (F.col("_from") <= F.col("_moved_to")) & (F.col("_to") >= F.col("_moved_from")),
        )
        .select("campaign_id")
        .distinct()
        .withColumn("_moved", F.lit(True))
    )
    return (
        windows.join(moved, "campaign_id", "left")
        .where(
            F.coalesce("_today", F.lit(False))
            | F.coalesce("_named", F.lit(False))
            | F.coalesce("_moved", F.lit(False))
            | ((F.col("_from") <= F.lit(hi)) & (F.col("_to") >= F.lit(lo)))
            | F.lit(everything)
        )
        .select("campaign_id", "coupon_code", "_from", "_to")
    )


def orders_in_scope(orders: DataFrame, chosen: DataFrame, start, end, run_date) -> DataFrame:
    """The orders the chosen campaigns' figures read: every order of [start, end] (touch
    attribution and the control group), and every order up to the run date that names one of
    them by campaign_id or coupon (direct attribution, whenever it was paid)."""
    ids = [r[0] for r in chosen.select("campaign_id").distinct().collect()]
    coupons = [
        r[0]
        for r in chosen.where(F.col("coupon_code").isNotNull())
        .select("coupon_code")
        .distinct()
        .collect()
    ]
    names = F.col("campaign_id").isin(ids) | F.col("coupon_code").isin(coupons)
    return orders.where(
        F.col("business_date").between(start, end)
        | (F.coalesce(names, F.lit(False)) & (F.col("business_date") <= F.lit(run_date)))
    )


def attribute_orders(
    orders: DataFrame, campaigns: DataFrame, touches: DataFrame, window_days: int
) -> DataFrame:
    """order_key, one_id, campaign_id, direct (bool), net_sales, gross_profit for each paid
    order attributed to a campaign.

    `orders`: paid orders with order_key, one_id, paid_at, campaign_id, coupon_code,
    net_sales, gross_profit; `touches`: campaign_id, touch_key, touch_time, one_id."""
    by_id = campaigns.select(F.col("campaign_id").alias("_by_id"))
    by_coupon = campaigns.where(F.col("coupon_code").isNotNull()).select(
        F.col("coupon_code").alias("_coupon"), F.col("campaign_id").alias("_by_coupon")
    )
    coupon_pick = by_coupon.groupBy("_coupon").agg(F.min("_by_coupon").alias("_by_coupon"))
    direct = (
        orders.join(F.broadcast(by_id), orders["campaign_id"] == F.col("_by_id"), "left")
        .join(F.broadcast(coupon_pick), orders["coupon_code"] == F.col("_coupon"), "left")
        .withColumn("_direct", F.coalesce("_by_id", "_by_coupon"))
        .drop("_by_id", "_by_coupon", "_coupon")
    )
    t = touches.where(F.col("one_id").isNotNull()).select(
        F.col("one_id").alias("_tone"),
        F.col("campaign_id").alias("_tcamp"),
        F.col("touch_time").alias("_ttime"),
        F.col("touch_key").alias("_tkey"),
    )
    cond = (
        (F.col("one_id") == F.col("_tone"))
        & (F.col("_ttime") <= F.col("paid_at"))
        & (F.col("paid_at") < F.col("_ttime") + F.expr(f"INTERVAL {int(window_days)} DAYS"))
    )
    candidates = direct.where(F.col("_direct").isNull()).join(t, cond, "inner")
    last = Window.partitionBy("order_key").orderBy(F.col("_ttime").desc(), F.col("_tkey").desc())
    by_touch = (
        candidates.withColumn("_n", F.row_number().over(last))
        .where("_n = 1")
        .select("order_key", F.col("_tcamp").alias("_touch"))
    )
    return (
        direct.join(by_touch, "order_key", "left")
        .withColumn("attributed_to", F.coalesce("_direct", "_touch"))
        .where(F.col("attributed_to").isNotNull())
        .select(
            "order_key",
            "one_id",
            F.col("attributed_to").alias("campaign_id"),
            F.col("_direct").isNotNull().alias("direct"),
            "net_sales",
            "gross_profit",
        )
    )


def campaign_performance(
    campaigns: DataFrame,
    touches: DataFrame,
    orders: DataFrame,
    members: DataFrame,
    window_days: int,
    every_campaign: DataFrame | None = None,
) -> DataFrame:
    """One row per campaign of `campaigns`.

    `every_campaign`: all campaigns, when `campaigns` is the subset a run recomputes. Orders are
    attributed among all of them, so an order naming a campaign outside the subset is that
    campaign's, not a touch's of one inside it.

    `touches`: every touch that may matter (campaign_id, touch_key, touch_time, touch_date,
    one_id or null); `orders`: paid orders (order_key, one_id, paid_at, business_date,
    campaign_id, coupon_code, net_sales, gross_profit: the order's costed gross profit, null
    when none of its lines has a cost); `members`: one_id, member_from, member_until of every
    CRM member (`common.member_one_ids`)."""
    attributed = attribute_orders(
        orders, every_campaign if every_campaign is not None else campaigns, touches, window_days
    ).join(campaigns.select("campaign_id"), "campaign_id", "left_semi")
    person = F.coalesce(F.col("one_id"), F.concat(F.lit("touch:"), F.col("touch_key")))
    touched = touches.groupBy("campaign_id").agg(
        F.count_distinct(person).alias("people_touched"),
        F.count_distinct("one_id").alias("identified_touched"),
        F.min("touch_date").alias("_first_touch"),
        F.max("touch_date").alias("_last_touch"),
    )
    touched_people = (
        touches.where(F.col("one_id").isNotNull()).select("campaign_id", "one_id").distinct()
    )
    converted = (
        attributed.join(touched_people, ["campaign_id", "one_id"], "left_semi")
        .groupBy("campaign_id")
        .agg(F.count_distinct("one_id").alias("converted_people"))
    )
    sales = attributed.groupBy("campaign_id").agg(
        F.count(F.lit(1)).alias("attributed_orders"),
        F.count_if("direct").alias("direct_orders"),
        F.sum("net_sales").cast(TOTAL).alias("attributed_net_sales"),
        F.sum("gross_profit").cast(TOTAL).alias("attributed_gross_profit"),
    )
    coupons = (
        orders.where(F.col("coupon_code").isNotNull())
        .select("coupon_code")
        .join(
            campaigns.where(F.col("coupon_code").isNotNull()).select(
                "campaign_id", F.col("coupon_code").alias("_c")
            ),
            F.col("coupon_code") == F.col("_c"),
        )
        .groupBy("campaign_id")
        .agg(F.count(F.lit(1)).alias("coupon_redemptions"))
    )

    # Control: CRM members this campaign did not touch, buying in the same window.
    base = campaigns.join(touched, "campaign_id", "left").withColumns(
        {
            "_from": F.coalesce("_first_touch", "start_date"),
            "window_end": F.date_add(
                F.coalesce("_last_touch", "end_date", "start_date"), window_days
            ),
        }
    )
    # Members as of each day (`common.member_on`): the control group holds the members of the
    # day the campaign's window opened (not one registered later, nor one whose account was
    # closed before), and a buyer among them counts while a member.
    total_members = members.count()
    buyers = (
        orders.where(F.col("one_id").isNotNull())
        .join(members, "one_id")
        .where(member_on(F.col("business_date")))
    )
    in_window = (
        base.select("campaign_id", "_from", "window_end")
        .join(
            buyers.select("one_id", "business_date", "member_from", "member_until"),
            F.col("business_date").between(F.col("_from"), F.col("window_end")),
        )
        .where(member_on(F.col("_from")))
        .select("campaign_id", "one_id")
        .distinct()
    )
    control = (
        in_window.join(touched_people, ["campaign_id", "one_id"], "left_anti")
        .groupBy("campaign_id")
        .agg(F.count(F.lit(1)).alias("control_buyers"))
    )
    opened = base.select("campaign_id", "_from")
    touched_members = (
        touched_people.join(opened, "campaign_id")
        .join(members, "one_id")
        .where(member_on(F.col("_from")))
        .groupBy("campaign_id")
        .agg(F.count(F.lit(1)).alias("_touched_members"))
    )
    # Nearly every member has a registration date: the non-equi join takes the members counted
    # by (member_from, member_until), a few thousand pairs, not every member.
    not_members_then = (
        members.where(F.col("member_from").isNotNull() | F.col("member_until").isNotNull())
        .groupBy("member_from", "member_until")
        .agg(F.count(F.lit(1)).alias("_members"))
        .join(F.broadcast(opened), ~member_on(F.col("_from")))
        .groupBy("campaign_id")
        .agg(F.sum("_members").alias("_not_members_then"))
    )

    zero = F.lit(0).cast("long")
    joined = (
        base.join(converted, "campaign_id", "left")
        .join(sales, "campaign_id", "left")
        .join(coupons, "campaign_id", "left")
        .join(control, "campaign_id", "left")
        .join(touched_members, "campaign_id", "left")
        .join(not_members_then, "campaign_id", "left")
        .withColumns(
            {
                c: F.coalesce(c, zero).cast("long")
                for c in (
                    "people_touched",
                    "identified_touched",
                    "converted_people",
                    "attributed_orders",
                    "direct_orders",
                    "coupon_redemptions",
                    "control_buyers",
                    "_touched_members",
                    "_not_members_then",
                )
            }
        )
        .withColumns(
            {
                "attributed_net_sales": F.coalesce("attributed_net_sales", F.lit(0)).cast(TOTAL),
                "cost": money(F.col("cost_yuan")),
                "control_members": (
                    F.lit(total_members) - F.col("_not_members_then") - F.col("_touched_members")
                ).cast("long"),
            }
        )
    )
    conversion = ratio(F.col("converted_people"), F.col("people_touched"))
    control_rate = ratio(F.col("control_buyers"), F.col("control_members"))
    return joined.withColumns(
        {
            "conversion_rate": conversion,
            "control_purchase_rate": control_rate,
            "uplift": conversion - control_rate,
            "roi": ratio(F.col("attributed_gross_profit") - F.col("cost"), F.col("cost")),
        }
    ).select(*CAMPAIGN_COLUMNS)
