"""Bundles: association rules over baskets with Spark MLlib's FP-Growth, at SKU and category
level. A basket is the distinct items of one paid order of the window (lines with a known SKU
and a positive quantity); baskets of one item carry no rule but count in the support's
denominator; baskets with more than `max_basket_size` items are left out (bulk buys).
"""

from __future__ import annotations

from datetime import date, timedelta

from pyspark.ml.fpm import FPGrowth
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.gold.marts.settings import BundleSettings
from lakehouse.silver.scd2 import latest_versions
from lakehouse.spark import small_frame

BUNDLE_COLUMNS = [
    "as_of",
    "level",
    "antecedent",
    "consequent",
    "support",
    "confidence",
    "lift",
    "baskets",
    "window_start",
]
SKU, CATEGORY = "SKU", "CATEGORY"


def baskets(lines: DataFrame, item: str) -> DataFrame:
    """order_key, items: the distinct non-null `item` values of each paid order's lines with a
    positive quantity."""
    return (
        lines.where(F.col("paid") & (F.col("quantity") > 0) & F.col(item).isNotNull())
        .groupBy("order_key")
        .agg(F.array_sort(F.collect_set(item)).alias("items"))
    )


def rules(basket_df: DataFrame, cfg: BundleSettings) -> DataFrame:
    """antecedent (sorted array), consequent (one item), support (of antecedent ∪ consequent),
    confidence, lift, baskets (the number of baskets mined): FP-Growth with the configured
    min support and confidence, then lift >= min_lift."""
    mined = basket_df.where(F.size("items") <= cfg.max_basket_size).select("items")
    count = mined.count()
    spark = basket_df.sparkSession
    empty = small_frame(
        spark,
        [],
        "antecedent array<string>, consequent string, support double, confidence double, "
        "lift double, baskets long",
    )
    if count == 0:
        return empty
    model = FPGrowth(
        itemsCol="items", minSupport=cfg.min_support, minConfidence=cfg.min_confidence
    ).fit(mined)
    found = model.associationRules
    return found.where(F.col("lift") >= cfg.min_lift).select(
        F.array_sort("antecedent").alias("antecedent"),
        F.col("consequent")[0].alias("consequent"),
        F.col("support").cast("double").alias("support"),
        F.col("confidence").cast("double").alias("confidence"),
        F.col("lift").cast("double").alias("lift"),
        F.lit(count).cast("long").alias("baskets"),
    )


def window_start(as_of: date, cfg: BundleSettings) -> date:
    return as_of - timedelta(days=cfg.window_days - 1)


def bundle_rules(lines: DataFrame, products: DataFrame, as_of: date, cfg: BundleSettings):
    """The rules of both levels for the window ending `as_of`; `lines` are
    `common.sold_lines` rows of the window, `products` the silver.products history (the latest
    version's category: a SKU since dropped from the snapshots keeps its last one, and its
    baskets count at category level too)."""
    start = window_start(as_of, cfg)
    scoped = lines.where(F.col("business_date").between(start, as_of))
    latest = latest_versions(products, ["sku_id"]).select(
        "sku_id", F.col(cfg.category).alias("category")
    )
    categorised = scoped.join(latest, "sku_id", "left")
    parts = []
    for level, item in ((SKU, "sku_id"), (CATEGORY, "category")):
        parts.append(rules(baskets(categorised, item), cfg).withColumn("level", F.lit(level)))
    out = parts[0].unionByName(parts[1])
    return out.withColumns(
        {"as_of": F.lit(as_of).cast("date"), "window_start": F.lit(start).cast("date")}
    ).select(*BUNDLE_COLUMNS)
