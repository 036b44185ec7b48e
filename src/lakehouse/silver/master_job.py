"""The silver master job: the day's products, stores and SKU map snapshots into history.

products and stores are SCD type 2 (valid_from / valid_to): prices, costs and store details
change, and margins need the cost valid at the time of sale. The SKU map keeps one row per
platform code, latest snapshot. Each snapshot is gated first (keys present and unique, enums
valid); bad rows go to silver.quarantine with their rule.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.quality.gate import raise_if_failed, run_gate
from lakehouse.quality.results import record_results
from lakehouse.runtime import JobContext, JobResult
from lakehouse.silver import master
from lakehouse.silver.sales_job import (
    SILVER_QUARANTINE,
    delivered,
    duplicate_records,
    write_quarantine,
)
from lakehouse.silver.scd2 import apply_scd2, current_versions
from lakehouse.tables import newer_when

SKU_MAP_NEWER = newer_when(["snapshot_date"])
# The silver table each master dataset lands in.
TABLE_OF = {
    "products": "silver.products",
    "stores": "silver.stores",
    "sku_mapping": "silver.sku_map",
}


def _tmall_shops(ctx: JobContext) -> DataFrame:
    """Every Tmall shop seen so far: a shop with no order today is still a store."""
    if not ctx.tables.exists("bronze", "tmall_orders"):
        return ctx.spark.createDataFrame([], "shop_name string")
    return (
        ctx.tables.read("bronze", "tmall_orders")
        .where(F.col("_delivery_date") <= F.lit(ctx.run_date))
        .select(F.trim("shop_name").alias("shop_name"))
        .where(F.col("shop_name") != "")
        .distinct()
    )


def build_master(ctx: JobContext) -> JobResult:
    tables, spark = ctx.tables, ctx.spark
    common = {"run_id": ctx.run_id, "run_date": ctx.run_date}
    bronze = {d: delivered(ctx, d) for d in ("products", "stores", "sku_mapping")}
    unique = {d: df.where(F.col("_duplicate_of").isNull()) for d, df in bronze.items()}

    products = master.products_snapshot(unique["products"])
    stores = master.stores_snapshot(unique["stores"])
    gates = [
        run_gate(products, "silver.products", key_columns=["sku_id"], **common),
        run_gate(stores, "silver.stores", key_columns=["store_code"], **common),
    ]
    try:
        for gate in gates:
            record_results(tables, gate)
        for gate in gates:
            raise_if_failed(gate)
        result = JobResult()
        good_products, good_stores = gates[0].good, gates[1].good
        online = master.online_stores(ctx.settings.silver, _tmall_shops(ctx), ctx.run_date)
        all_stores = good_stores.unionByName(online, allowMissingColumns=True)
        counts = {
            "products": apply_scd2(
                spark,
                tables.path("silver", "products"),
                good_products,
                master.PRODUCT_KEY,
                master.PRODUCT_TRACKED,
                "snapshot_date",
            ),
            "stores": apply_scd2(
                spark,
                tables.path("silver", "stores"),
                all_stores.select(*good_stores.columns),
                master.STORE_KEY,
                master.STORE_TRACKED,
                "snapshot_date",
            ),
        }
        for name in ("products", "stores"):
            tables.register("silver", name)
            result.versions[f"silver.{name}"] = tables.version("silver", name)
        current = current_versions(tables.read("silver", "products"))
        sku_map = master.sku_map(unique["sku_mapping"], current)
        sku_gate = run_gate(
            sku_map, "silver.sku_map", key_columns=["platform", "platform_sku_code"], **common
        )
        try:
            record_results(tables, sku_gate)
            raise_if_failed(sku_gate)
            result.versions["silver.sku_map"] = tables.upsert(
                sku_gate.good,
                "silver",
                "sku_map",
                ["platform", "platform_sku_code"],
                SKU_MAP_NEWER,
            )
            quarantine = [
                *(duplicate_records(df, TABLE_OF[d], ctx) for d, df in bronze.items()),
                gates[0].quarantined,
                gates[1].quarantined,
                sku_gate.quarantined,
                _mapping_problems(sku_gate.good, ctx),
            ]
            tables_written = list(TABLE_OF.values())
            result.versions[f"silver.{SILVER_QUARANTINE}"] = write_quarantine(
                ctx, quarantine, tables_written
            )
            result.rows_quarantined = sum(part.count() for part in quarantine)
        finally:
            sku_gate.release()
        result.details["scd2"] = counts
        result.rows_read = sum(df.count() for df in bronze.values())
        result.rows_written = sum(c["inserted"] + c["closed"] for c in counts.values())
        return result
    finally:
        for gate in gates:
            gate.release()


def _quarantined_keys(gate, key: str) -> DataFrame:
    return gate.quarantined.select(F.get_json_object("record", f"$.{key}").alias(key)).where(
        F.col(key).isNotNull()
    )


def _mapping_problems(sku_map: DataFrame, ctx: JobContext) -> DataFrame:
    """SKU map codes that map to nothing usable: the code stays unmapped, a record says why."""
    reason = F.when(F.col("sku_conflict"), F.lit("conflicting_sku_ids")).otherwise(
        F.lit("unknown_sku")
    )
    return sku_map.where(~F.col("sku_known") | F.col("sku_conflict")).select(
        F.lit("silver.sku_map").alias("table"),
        F.concat_ws(":", "platform", "platform_sku_code").alias("record_key"),
        reason.alias("expectation"),
        F.lit("a platform code maps to exactly one known product").alias("rule"),
        F.lit("sku_id").alias("column"),
        F.col("sku_id").alias("value"),
        reason.alias("reason"),
        F.to_json(F.struct("_source_file", "_line_no", "platform", "platform_sku_code")).alias(
            "record"
        ),
        F.lit(ctx.run_id).alias("run_id"),
        F.lit(ctx.run_date).alias("run_date"),
    )
