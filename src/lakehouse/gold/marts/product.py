"""product_daily and product_rankings: what a category manager looks at.

product_daily: per business date, platform and SKU (channel beside it), from
`common.sold_lines`. product_rankings: per month, channel (ONLINE, STORE, ALL) and SKU:
sums, ranks within the category, contribution, sell-through, turnover days, days of supply,
stockout locations and the slow-mover flag. docs/metrics.md states every formula.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.gold.marts.common import TOTAL, ratio
from lakehouse.gold.marts.inventory import position_demand_key, window_units
from lakehouse.gold.marts.settings import MartSettings
from lakehouse.silver.scd2 import latest_versions
from lakehouse.spark import small_frame

DAILY_KEY = ["business_date", "platform", "sku_id"]
RANKING_KEY = ["month", "channel", "sku_id"]
ALL = "ALL"

DAILY_COLUMNS = [
    "business_date",
    "platform",
    "channel",
    "sku_id",
    "orders",
    "units",
    "net_sales",
    "cogs",
    "gross_profit",
    "costed_net_sales",
]


def product_daily(lines: DataFrame) -> DataFrame:
    """One row per (business_date, platform, sku_id) of `common.sold_lines` rows; sku_id null
    gathers lines of unknown SKUs and orders without lines, so totals equal silver's."""
    costed = F.col("unit_cost").isNotNull()
    return (
        lines.groupBy(*DAILY_KEY)
        .agg(
            F.first("channel").alias("channel"),
            F.count_distinct("order_key").alias("orders"),
            F.sum("units").cast("long").alias("units"),
            F.sum("line_net_sales").cast(TOTAL).alias("net_sales"),
            F.sum("cogs").cast(TOTAL).alias("cogs"),
            F.sum(F.when(costed, F.col("gross_profit"))).cast(TOTAL).alias("gross_profit"),
            F.coalesce(F.sum(F.when(costed, F.col("line_net_sales"))), F.lit(0))
            .cast(TOTAL)
            .alias("costed_net_sales"),
        )
        .select(*DAILY_COLUMNS)
    )


RANKING_COLUMNS = [
    "month",
    "channel",
    "sku_id",
    "category",
    "as_of",
    "units",
    "net_sales",
    "gross_profit",
    "cogs",
    "rank_units",
    "rank_net_sales",
    "rank_gross_profit",
    "gross_profit_contribution",
    "ending_on_hand",
    "sell_through",
    "avg_inventory_cost",
    "cogs_per_day",
    "turnover_days",
    "window_units",
    "avg_daily_units",
    "days_of_supply",
    "stockout_locations",
    "slow_mover",
]


def _channel_rows(df: DataFrame, channel_col: str = "channel") -> DataFrame:
    """Each row once under its own channel and once under ALL."""
    return df.unionByName(df.withColumn(channel_col, F.lit(ALL)))


def _location_channel() -> F.Column:
    return F.when(F.col("location_type") == "STORE", F.lit("STORE")).otherwise(F.lit("ONLINE"))


def product_rankings(
    daily: DataFrame,
    products: DataFrame,
    stock: DataFrame,
    location_demand: DataFrame,
    months: list[date],
    run_date: date,
    cfg: MartSettings,
) -> DataFrame:
    """One row per (month, channel, sku_id) with sales in the month or stock at its end.

    `daily`: product_daily rows covering the months and the demand window before each month's
    `as_of` (the month's last day, or the run date for the running month); `products`: the
    silver.products history (the latest version gives the category); `stock`:
    silver.inventory_daily rows of the months; `location_demand`: `inventory.daily_demand` of
    the sold lines of the demand windows (for stockouts by location). Channel of a stock
    location: STORE for stores, ONLINE for warehouses (they serve the online shops).
    """
    spark = daily.sparkSession
    window = cfg.demand_window_days
    level = cfg.product.ranking_category
    periods = small_frame(spark, [(m,) for m in months], "month date").withColumn(
        "as_of", F.least(F.last_day("month"), F.lit(run_date).cast("date"))
    )
    known = daily.where(F.col("sku_id").isNotNull())

    sales = _channel_rows(
        known.withColumn("month", F.trunc("business_date", "month"))
        .join(periods, "month")
        .where(F.col("business_date") <= F.col("as_of"))
    )
    sums = sales.groupBy(*RANKING_KEY).agg(
        F.sum("units").cast("long").alias("units"),
        F.sum("net_sales").cast(TOTAL).alias("net_sales"),
        F.sum("gross_profit").cast(TOTAL).alias("gross_profit"),
        F.sum("cogs").cast(TOTAL).alias("cogs"),
    )

    stock_rows = _channel_rows(
        stock.where(F.col("sku_id").isNotNull())
        .withColumn("month", F.trunc("snapshot_date", "month"))
        .join(periods, "month")
        .where(F.col("snapshot_date") <= F.col("as_of"))
        .withColumn("channel", _location_channel())
    )
    last_snapshot = stock_rows.groupBy("month").agg(F.max("snapshot_date").alias("_last"))
    ending = stock_rows.join(last_snapshot, "month").where(F.col("snapshot_date") == F.col("_last"))
    # Stockout at the ending snapshot: on-hand <= 0 where the location sold the SKU in the window.
    demand = _channel_rows(
        known.select(
            "business_date",
            F.when(F.col("channel") == "STORE", F.lit("STORE"))
            .otherwise("ONLINE")
            .alias("channel"),
            "sku_id",
            "units",
        )
    )
    located = window_units(
        ending.withColumn("demand_key", position_demand_key()).select(
            "month", "channel", "snapshot_date", "demand_key", "sku_id", "on_hand_qty"
        ),
        location_demand,
        window,
    )
    stock_end = located.groupBy(*RANKING_KEY).agg(
        F.sum("on_hand_qty").cast("long").alias("ending_on_hand"),
        F.count_if((F.col("on_hand_qty") <= 0) & F.coalesce("sold_in_window", F.lit(False))).alias(
            "stockout_locations"
        ),
    )
    # Over every snapshot date of the month: a full snapshot without the SKU held none of it
    # (a SKU launched on the 21st is not as costly to hold as one held all month).
    snapshots = stock_rows.groupBy("month").agg(F.count_distinct("snapshot_date").alias("_dates"))
    avg_cost = (
        stock_rows.groupBy(*RANKING_KEY)
        .agg(F.sum("value_at_cost").alias("_value"))
        .join(snapshots, "month")
        .select(
            *RANKING_KEY,
            (F.col("_value") / F.col("_dates")).cast(TOTAL).alias("avg_inventory_cost"),
        )
    )
    stock_rows_keys = stock_rows.select(*RANKING_KEY)

    recent = (
        demand.join(periods, F.col("business_date") <= F.col("as_of"))
        .where(F.col("business_date") > F.date_sub(F.col("as_of"), window))
        .groupBy(*RANKING_KEY)
        .agg(F.sum("units").cast("long").alias("window_units"))
    )

    keys = sums.select(*RANKING_KEY).unionByName(stock_rows_keys).distinct()
    # The latest version's: a SKU dropped from the snapshots still ranks in its last category.
    latest = latest_versions(products, ["sku_id"]).select("sku_id", F.col(level).alias("category"))
    joined = (
        keys.join(periods, "month")
        .join(sums, RANKING_KEY, "left")
        .join(stock_end, RANKING_KEY, "left")
        .join(avg_cost, RANKING_KEY, "left")
        .join(recent, RANKING_KEY, "left")
        .join(latest, "sku_id", "left")
        .withColumns(
            {
                "units": F.coalesce("units", F.lit(0)).cast("long"),
                "net_sales": F.coalesce("net_sales", F.lit(0)).cast(TOTAL),
                "window_units": F.coalesce("window_units", F.lit(0)).cast("long"),
                "stockout_locations": F.coalesce("stockout_locations", F.lit(0)).cast("long"),
                "_days": F.datediff("as_of", "month") + 1,
            }
        )
    )
    in_category = Window.partitionBy("month", "channel", "category")
    period = Window.partitionBy("month", "channel")
    avg_daily = ratio(F.col("window_units"), F.lit(window))
    cogs_per_day = ratio(F.col("cogs"), F.col("_days"))
    on_hand = F.col("ending_on_hand")
    stock_left = F.greatest(F.coalesce(on_hand, F.lit(0)), F.lit(0))
    dos = F.when((on_hand >= 0) & (avg_daily > 0), ratio(on_hand, avg_daily))
    ranked = joined.withColumns(
        {
            "rank_units": F.rank().over(in_category.orderBy(F.col("units").desc())),
            "rank_net_sales": F.rank().over(in_category.orderBy(F.col("net_sales").desc())),
            "rank_gross_profit": F.rank().over(
                in_category.orderBy(F.col("gross_profit").desc_nulls_last())
            ),
            "gross_profit_contribution": ratio(
                F.col("gross_profit"), F.sum("gross_profit").over(period)
            ),
            # Negative on-hand is a system error (silver keeps and flags it): counted as none,
            # it cannot push the share sold past 1. Net returns (units < 0) sell through nothing.
            "sell_through": F.when(
                (F.col("units") >= 0) & (F.col("units") + stock_left > 0),
                ratio(F.col("units"), F.col("units") + stock_left),
            ),
            "cogs_per_day": cogs_per_day,
            "turnover_days": ratio(F.col("avg_inventory_cost"), cogs_per_day),
            "avg_daily_units": avg_daily,
            "days_of_supply": dos,
            "slow_mover": F.coalesce(on_hand > 0, F.lit(False))
            & (
                (F.col("window_units") <= cfg.product.slow_mover_max_units)
                | F.coalesce(dos > cfg.product.slow_mover_days_of_supply, F.lit(False))
            ),
        }
    )
    return ranked.select(*RANKING_COLUMNS)
