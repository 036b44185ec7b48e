"""inventory_position: per location, SKU and snapshot day: stock, value at cost, days of supply,
stockout. Negative on-hand is flagged (`negative_on_hand`), never zeroed.

A store location's demand is its own sales (the store's orders); a warehouse serves the online
shops, whose orders name no warehouse, so a WAREHOUSE position's demand is the online
channel's units of the SKU (every online shop). docs/metrics.md states the formulas.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse.gold.marts.common import ratio

ONLINE_DEMAND = "*ONLINE*"
POSITION_KEY = ["snapshot_date", "location_code", "sku_id"]
POSITION_COLUMNS = [
    *POSITION_KEY,
    "location_type",
    "on_hand_qty",
    "reserved_qty",
    "in_transit_qty",
    "available_qty",
    "unit_cost",
    "value_at_cost",
    "window_units",
    "avg_daily_units",
    "days_of_supply",
    "stockout",
    "negative_on_hand",
    "sku_known",
    "location_known",
]


def demand_key(channel: Column, store_code: Column) -> Column:
    """Where a sale draws stock from: its store for STORE orders, the online pool otherwise."""
    return F.when(channel == "STORE", store_code).otherwise(F.lit(ONLINE_DEMAND))


def position_demand_key() -> Column:
    return F.when(F.col("location_type") == "STORE", F.col("location_code")).otherwise(
        F.lit(ONLINE_DEMAND)
    )


def daily_demand(lines: DataFrame) -> DataFrame:
    """business_date, demand_key, sku_id, units (net units of `common.sold_lines`), sold (a
    line of the day sold units).

    Why `sold` beside the net: a sale and another customer's return on one day net to 0 units,
    yet the SKU sold there that day, which is what the stockout rule asks.
    """
    return (
        lines.where(F.col("sku_id").isNotNull())
        .groupBy(
            "business_date",
            demand_key(F.col("channel"), F.col("store_code")).alias("demand_key"),
            "sku_id",
        )
        .agg(
            F.sum("units").cast("long").alias("units"),
            F.coalesce(F.bool_or(F.col("units") > 0), F.lit(False)).alias("sold"),
        )
    )


def window_units(positions: DataFrame, demand: DataFrame, window_days: int) -> DataFrame:
    """`positions` (snapshot_date, demand_key, sku_id, ...) plus window_units: the net units
    sold in the `window_days` business days ending on the snapshot date (null when nothing
    sold), and sold_in_window (a line of the window sold units: `daily_demand`'s `sold`)."""
    keys = positions.select("snapshot_date", "demand_key", "sku_id").distinct()
    d = demand.select(
        F.col("business_date").alias("_day"),
        F.col("demand_key").alias("_dk"),
        F.col("sku_id").alias("_sku"),
        F.col("units").alias("_units"),
        F.col("sold").alias("_sold"),
    )
    cond = (
        (F.col("demand_key") == F.col("_dk"))
        & (F.col("sku_id") == F.col("_sku"))
        & (F.col("_day") <= F.col("snapshot_date"))
        & (F.col("_day") > F.date_sub(F.col("snapshot_date"), window_days))
    )
    sums = (
        keys.join(d, cond, "inner")
        .groupBy("snapshot_date", "demand_key", "sku_id")
        .agg(
            F.sum("_units").cast("long").alias("window_units"),
            F.bool_or(F.col("_sold")).alias("sold_in_window"),
        )
    )
    return positions.join(sums, ["snapshot_date", "demand_key", "sku_id"], "left")


def inventory_position(stock: DataFrame, demand: DataFrame, window_days: int) -> DataFrame:
    """One row per silver.inventory_daily row (`stock`), nothing dropped or zeroed.

    available = on_hand - reserved; avg_daily_units = window_units / window_days;
    days_of_supply = on_hand / avg_daily_units (null without demand in the window or when
    on-hand is negative: a negative count has no meaningful cover); stockout = on_hand <= 0 at a
    location that sold the SKU in the window.
    """
    positions = stock.withColumn("demand_key", position_demand_key())
    with_units = window_units(positions, demand, window_days)
    # No sale in the window is a rate of 0, not an unknown one.
    avg = ratio(F.coalesce("window_units", F.lit(0)), F.lit(window_days))
    return with_units.withColumns(
        {
            "available_qty": F.col("on_hand_qty") - F.coalesce("reserved_qty", F.lit(0)),
            "window_units": F.coalesce("window_units", F.lit(0)).cast("long"),
            "avg_daily_units": avg,
            "days_of_supply": F.when(
                (F.col("on_hand_qty") >= 0) & (avg > 0), ratio(F.col("on_hand_qty"), avg)
            ),
            "stockout": F.coalesce(
                (F.col("on_hand_qty") <= 0) & F.coalesce("sold_in_window", F.lit(False)),
                F.lit(False),
            ),
            "negative_on_hand": F.coalesce(F.col("on_hand_qty") < 0, F.lit(False)),
        }
    ).select(*POSITION_COLUMNS)
