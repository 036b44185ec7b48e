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

from lakehouse.gold.marts.common import TOTAL, money, ratio

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
) -> DataFrame:
    """One row per campaign of `campaigns`.

    `touches`: every touch that may matter (campaign_id, touch_key, touch_time, touch_date,
    one_id or null); `orders`: paid orders (order_key, one_id, paid_at, business_date,
    campaign_id, coupon_code, net_sales, gross_profit: the order's costed gross profit, null
    when none of its lines has a cost); `members`: one_id of every CRM member.
    """
    attributed = attribute_orders(orders, campaigns, touches, window_days)
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
    member_ids = members.select("one_id").distinct()
    total_members = member_ids.count()
    buyers = orders.where(F.col("one_id").isNotNull()).join(member_ids, "one_id", "left_semi")
    in_window = (
        base.select("campaign_id", "_from", "window_end")
        .join(
            buyers.select("one_id", "business_date"),
            F.col("business_date").between(F.col("_from"), F.col("window_end")),
        )
        .select("campaign_id", "one_id")
        .distinct()
    )
    control = (
        in_window.join(touched_people, ["campaign_id", "one_id"], "left_anti")
        .groupBy("campaign_id")
        .agg(F.count(F.lit(1)).alias("control_buyers"))
    )
    touched_members = (
        touched_people.join(member_ids, "one_id", "left_semi")
        .groupBy("campaign_id")
        .agg(F.count(F.lit(1)).alias("_touched_members"))
    )

    zero = F.lit(0).cast("long")
    joined = (
        base.join(converted, "campaign_id", "left")
        .join(sales, "campaign_id", "left")
        .join(coupons, "campaign_id", "left")
        .join(control, "campaign_id", "left")
        .join(touched_members, "campaign_id", "left")
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
                )
            }
        )
        .withColumns(
            {
                "attributed_net_sales": F.coalesce("attributed_net_sales", F.lit(0)).cast(TOTAL),
                "cost": money(F.col("cost_yuan")),
                "control_members": (F.lit(total_members) - F.col("_touched_members")).cast("long"),
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
