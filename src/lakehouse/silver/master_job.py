"""The silver master job: the day's products, stores and SKU map snapshots into history.

products and stores are SCD type 2 (valid_from / valid_to): prices, costs and store details
change, and margins need the cost valid at the time of sale. The SKU map keeps one row per
platform code, latest snapshot. Each snapshot is gated first (keys present and unique, enums
valid); bad rows go to silver.quarantine with their rule.

Each dataset reconciles (bronze rows = rows handed to the SCD2 MERGE / upsert + duplicates +
quarantined, the `silver.reconciliation` suite) before its table is written: products and
stores before their SCD2 MERGEs, the SKU map (resolved against the products just written)
before its upsert. A line a snapshot superseded within the delivery (same key, later line
wins) is recorded as `superseded_in_delivery` and counts as a duplicate; so is a line of a
corrected file of an earlier day delivered beside today's (`master.newest_snapshot_files`).
"""

from __future__ import annotations

import datetime as dt

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.bronze.ingest import file_date
from lakehouse.bronze.job import FILES, INGESTED
from lakehouse.quality.gate import raise_if_failed, run_gate
from lakehouse.quality.results import record_results
from lakehouse.runtime import JobContext, JobResult
from lakehouse.silver import master
from lakehouse.silver import normalise as n
from lakehouse.silver.orders import NO_SHOP_NAME
from lakehouse.silver.sales_job import (
    SILVER_QUARANTINE,
    delivered,
    duplicate_records,
    reconcile_snapshots,
    superseded_lines,
    superseded_records,
    write_quarantine,
    write_reconciliation,
)
from lakehouse.silver.scd2 import apply_scd2
from lakehouse.spark import small_frame
from lakehouse.tables import newer_when

SKU_MAP_NEWER = newer_when(["snapshot_date"])
# The silver table each master dataset lands in.
TABLE_OF = {
    "products": "silver.products",
    "stores": "silver.stores",
    "sku_mapping": "silver.sku_map",
}


def _tmall_shops(ctx: JobContext) -> DataFrame:
    """Every Tmall shop seen so far: a shop with no order today is still a store. Orders with
    a blank 店铺名称 are one shop, `orders.NO_SHOP_NAME`, as silver.sales files them: an ONLINE
    store of their own, so their sales count in the roll-ups by store type too (like every
    online store, it has no region)."""
    if not ctx.tables.exists("bronze", "tmall_orders"):
        return small_frame(ctx.spark, [], "shop_name string")
    return (
        ctx.tables.read("bronze", "tmall_orders")
        .where(F.col("_delivery_date") <= F.lit(ctx.run_date))
        .select(F.coalesce(n.non_blank(F.col("shop_name")), F.lit(NO_SHOP_NAME)).alias("shop_name"))
        .distinct()
    )


def rejected_by_bronze(ctx: JobContext, dataset: str, source: str = "master") -> DataFrame:
    """Today's lines of `source`'s `dataset` that bronze quarantined (raw_text only)."""
    if not ctx.tables.exists("bronze", "quarantine"):
        return small_frame(ctx.spark, [], "raw_text string")
    return (
        ctx.tables.read("bronze", "quarantine")
        .where(
            (F.col("source") == source)
            & (F.col("dataset") == dataset)
            & (F.col("delivery_date") == F.lit(ctx.run_date))
        )
        .select("raw_text")
    )


def _kept_open(
    ctx: JobContext, dataset: str, delivered: DataFrame, good: DataFrame, key: list[str]
):
    """Records delivered today that do not reach the snapshot: quarantined by the gate, or on a
    line bronze could not read. Neither is evidence that the record is gone."""
    [key_col] = key
    return (
        delivered.join(good, key, "left_anti")
        .select(*key)
        .unionByName(master.keys_named_in(rejected_by_bronze(ctx, dataset), key_col))
    )


def build_master(ctx: JobContext) -> JobResult:
    bronze = {
        d: delivered(ctx, d).persist(StorageLevel.MEMORY_AND_DISK)
        for d in ("products", "stores", "sku_mapping")
    }
    try:
        return _master(ctx, bronze)
    finally:
        for df in bronze.values():
            df.unpersist()


def newest_file_dates(ctx: JobContext, datasets: list[str]) -> dict[str, dt.date]:
    """The newest date each dataset's files of the run date's delivery name, from
    bronze.ingested_files: it lists a header-only file, which lands no row in bronze."""
    if not ctx.tables.exists("bronze", FILES):
        return {}
    files = (
        ctx.tables.read("bronze", FILES)
        .where(
            (F.col("delivery_date") == F.lit(ctx.run_date))
            & (F.col("status") == INGESTED)
            & F.col("dataset").isin(*datasets)
        )
        .select("dataset", "file_name")
        .collect()
    )
    newest: dict[str, dt.date] = {}
    for f in files:
        named = file_date(ctx.settings.dataset(f.dataset)[1], f.file_name)
        if named is not None:
            day = dt.date.fromisoformat(named)
            newest[f.dataset] = max(newest.get(f.dataset, day), day)
    return newest


def _master(ctx: JobContext, bronze: dict[str, DataFrame]) -> JobResult:
    tables, spark = ctx.tables, ctx.spark
    common = {"run_id": ctx.run_id, "run_date": ctx.run_date}
    unique = {d: df.where(F.col("_duplicate_of").isNull()) for d, df in bronze.items()}
    # Today's snapshot is the newest-dated files'; lines of an earlier day's correction are
    # superseded (superseded_lines compares every unique line with the snapshot).
    named = newest_file_dates(ctx, list(unique))
    newest = {d: master.newest_snapshot_files(df, named.get(d)) for d, df in unique.items()}

    products = master.products_snapshot(newest["products"], with_checks=True)
    stores = master.stores_snapshot(newest["stores"], with_checks=True)
    superseded = {
        "products": superseded_lines(unique["products"], products),
        "stores": superseded_lines(unique["stores"], stores),
    }
    gates = [
        run_gate(products, "silver.products", key_columns=["sku_id"], **common),
        run_gate(stores, "silver.stores", key_columns=["store_code"], **common),
    ]
    all_stores = None
    try:
        for gate in gates:
            record_results(tables, gate)
        for gate in gates:
            raise_if_failed(gate)
        result = JobResult()
        good_products = gates[0].good.drop(*master.PRODUCT_READABLE)
        good_stores = gates[1].good.drop(*master.STORE_READABLE)
        online = master.online_stores(ctx.settings.silver, _tmall_shops(ctx), ctx.run_date)
        all_stores = (
            good_stores.unionByName(online, allowMissingColumns=True)
            .select(*good_stores.columns)
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        # The delivered stores are the rows with a bronze line; online stores are derived.
        delivered_stores = all_stores.where(F.col("_line_no").isNotNull())
        reconciled = [
            reconcile_snapshots(
                ctx,
                [
                    (
                        "products",
                        bronze["products"],
                        superseded["products"],
                        good_products,
                        gates[0].quarantined,
                    ),
                    (
                        "stores",
                        bronze["stores"],
                        superseded["stores"],
                        delivered_stores,
                        gates[1].quarantined,
                    ),
                ],
            )
        ]
        counts = {
            # A record delivered today but quarantined (by the gate, or by bronze: an unreadable
            # line) was not removed: it stays open.
            "products": apply_scd2(
                spark,
                tables.path("silver", "products"),
                good_products,
                master.PRODUCT_KEY,
                master.PRODUCT_TRACKED,
                "snapshot_date",
                keep_open=_kept_open(ctx, "products", products, gates[0].good, master.PRODUCT_KEY),
            ),
            # The online stores are derived, never empty: without a delivered store line (a
            # header-only file, or only yesterday's file again) the physical stores are
            # unchanged, not closed, as an empty snapshot changes nothing.
            "stores": apply_scd2(
                spark,
                tables.path("silver", "stores"),
                all_stores,
                master.STORE_KEY,
                master.STORE_TRACKED,
                "snapshot_date",
                close_missing=not newest["stores"].isEmpty(),
                keep_open=_kept_open(ctx, "stores", stores, gates[1].good, master.STORE_KEY),
            ),
        }
        for name in ("products", "stores"):
            tables.register("silver", name)
            result.versions[f"silver.{name}"] = tables.version("silver", name)
        # Every product the history holds: a map row naming one since dropped from the
        # snapshots is known (silver.sales still maps the last of its stock to it).
        sku_map = master.sku_map(newest["sku_mapping"], tables.read("silver", "products"))
        superseded["sku_mapping"] = superseded_lines(unique["sku_mapping"], sku_map)
        sku_gate = run_gate(
            sku_map, "silver.sku_map", key_columns=["platform", "platform_sku_code"], **common
        )
        try:
            record_results(tables, sku_gate)
            raise_if_failed(sku_gate)
            reconciled.append(
                reconcile_snapshots(
                    ctx,
                    [
                        (
                            "sku_mapping",
                            bronze["sku_mapping"],
                            superseded["sku_mapping"],
                            sku_gate.good,
                            sku_gate.quarantined,
                        )
                    ],
                )
            )
            result.versions["silver.sku_map"] = tables.upsert(
                sku_gate.good,
                "silver",
                "sku_map",
                ["platform", "platform_sku_code"],
                SKU_MAP_NEWER,
            )
            quarantine = [
                *(duplicate_records(df, TABLE_OF[d], ctx) for d, df in bronze.items()),
                *(superseded_records(df, TABLE_OF[d], ctx) for d, df in superseded.items()),
                gates[0].quarantined,
                gates[1].quarantined,
                sku_gate.quarantined,
            ]
            # A code that maps to nothing usable is published (unmapped) with a record saying
            # why: a flag, not a quarantined row, so the run log does not count it.
            flags = [_mapping_problems(sku_gate.good, ctx)]
            tables_written = list(TABLE_OF.values())
            result.versions[f"silver.{SILVER_QUARANTINE}"] = write_quarantine(
                ctx, [*quarantine, *flags], tables_written
            )
            result.versions["silver.reconciliation"] = write_reconciliation(
                ctx, reconciled[0].unionByName(reconciled[1])
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
        if all_stores is not None:
            all_stores.unpersist()


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
