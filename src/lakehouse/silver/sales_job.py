"""The silver sales job: one day's bronze orders of every platform into silver.orders and
silver.order_lines, gated, deduplicated, latest state wins.

Steps, all before the first write so that a failed gate commits nothing:
1. read the bronze rows delivered on the run date (Tmall orders and items, JD, mall, POS);
2. split off exact duplicate lines (quarantined as `exact_duplicate`);
3. conform every platform into the one order / line shape;
4. gate orders and lines with their Great Expectations suites (bad rows → quarantine);
   lines of a quarantined order follow it (`order_quarantined`);
5. map SKUs and stores; an unknown code keeps its row (totals must not shrink), is marked
   unmapped and leaves a quarantine record; too many unknown codes fail the run;
6. keep the latest state per key and MERGE it (a late, older state never overwrites a newer).
Then record quarantine, reconciliation (bronze = accepted + duplicates + quarantined, per
platform) and the gate results.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import reduce
from zoneinfo import ZoneInfo

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.quality.gate import QUARANTINE_SCHEMA, raise_if_failed, run_gate
from lakehouse.quality.results import record_results
from lakehouse.runtime import JobContext, JobError, JobResult
from lakehouse.silver import master
from lakehouse.silver.dedup import mark_exact_duplicates
from lakehouse.silver.order_lines import (
    jd_lines,
    mall_lines,
    pos_lines,
    pos_order_lines,
    tmall_lines,
)
from lakehouse.silver.orders import (
    jd_orders,
    latest_state,
    mall_orders,
    pos_tickets,
    tmall_orders,
)
from lakehouse.silver.scd2 import valid_at
from lakehouse.tables import newer_when

ORDER_NEWER = newer_when(["updated_at", "_delivery_date", "_source_file", "_line_no"])
LINE_NEWER = newer_when(["_delivery_date", "_source_file", "_line_no"])
SILVER_QUARANTINE = "quarantine"
RECONCILIATION = "reconciliation"


@dataclass(frozen=True)
class Platform:
    """Where one platform's bronze rows come from and how they conform."""

    name: str
    dataset: str


PLATFORMS = [
    Platform("TMALL", "tmall_orders"),
    Platform("TMALL", "tmall_order_items"),
    Platform("JD", "jd_orders"),
    Platform("MALL", "mall_orders"),
    Platform("POS", "pos_sales"),
]


def future_limit(run_date, tolerance_hours: int) -> str:
    """The latest believable time: the end of the run date in Shanghai plus a tolerance, UTC."""
    shanghai = ZoneInfo("Asia/Shanghai")
    end = datetime.combine(run_date + timedelta(days=1), time(0), tzinfo=shanghai)
    limit = end.astimezone(ZoneInfo("UTC")) + timedelta(hours=tolerance_hours)
    return limit.replace(tzinfo=None).isoformat(sep=" ")


def delivered(ctx: JobContext, dataset: str) -> DataFrame:
    """The bronze rows of `dataset` delivered on the run date, exact duplicates marked."""
    if not ctx.tables.exists("bronze", dataset):
        raise JobError(f"bronze.{dataset} does not exist: run the bronze jobs for {ctx.run_date}")
    return mark_exact_duplicates(
        ctx.tables.read("bronze", dataset).where(F.col("_delivery_date") == F.lit(ctx.run_date))
    )


def _master(ctx: JobContext, table: str) -> DataFrame:
    if not ctx.tables.exists("silver", table):
        raise JobError(f"silver.{table} does not exist: run silver.master for {ctx.run_date} first")
    return ctx.tables.read("silver", table)


def duplicate_records(df: DataFrame, table: str, ctx: JobContext) -> DataFrame:
    """Quarantine rows for exact duplicate lines, in the gate's quarantine shape."""
    return df.where(F.col("_duplicate_of").isNotNull()).select(
        F.lit(table).alias("table"),
        F.concat_ws(":", "_source_file", F.col("_line_no").cast("string")).alias("record_key"),
        F.lit("exact_duplicate").alias("expectation"),
        F.lit("the same line appears earlier in the same file").alias("rule"),
        F.lit("_record_hash").alias("column"),
        F.col("_record_hash").alias("value"),
        F.concat(F.lit("exact duplicate of line "), F.col("_duplicate_of").cast("string")).alias(
            "reason"
        ),
        F.to_json(F.struct("_source_file", "_line_no", "_delivery_date")).alias("record"),
        F.lit(ctx.run_id).alias("run_id"),
        F.lit(ctx.run_date).alias("run_date"),
    )


def _unmapped(df: DataFrame, table: str, flag: str, column: str, reason: str, ctx) -> DataFrame:
    """Quarantine records for kept rows whose code maps to nothing."""
    return df.where(~F.col(flag)).select(
        F.lit(table).alias("table"),
        F.concat_ws(":", "order_key", *(["line_id"] if "line_id" in df.columns else [])).alias(
            "record_key"
        ),
        F.lit(reason).alias("expectation"),
        F.lit(f"{column} must map to a known code (row kept, marked unmapped)").alias("rule"),
        F.lit(column).alias("column"),
        F.col(column).cast("string").alias("value"),
        F.lit(reason).alias("reason"),
        F.to_json(F.struct("_source_file", "_line_no", "_delivery_date")).alias("record"),
        F.lit(ctx.run_id).alias("run_id"),
        F.lit(ctx.run_date).alias("run_date"),
    )


def build_sales(ctx: JobContext) -> JobResult:
    """Conform, gate and publish one day's orders and order lines."""
    cfg = ctx.settings.silver
    limits = cfg.limits
    bronze = {p.dataset: delivered(ctx, p.dataset) for p in PLATFORMS}
    cached = [df.persist(StorageLevel.MEMORY_AND_DISK) for df in bronze.values()]
    try:
        return _publish(ctx, bronze, cfg, limits)
    finally:
        for df in cached:
            df.unpersist()


def _coords(quarantined: DataFrame) -> DataFrame:
    """The bronze lines (file, line number) behind gate quarantine rows."""
    return quarantined.select(
        F.get_json_object("record", "$._source_file").alias("_source_file"),
        F.get_json_object("record", "$._line_no").cast("int").alias("_line_no"),
    ).distinct()


def _publish(ctx: JobContext, bronze: dict[str, DataFrame], cfg, limits) -> JobResult:
    unique = {name: df.where(F.col("_duplicate_of").isNull()) for name, df in bronze.items()}
    duplicates = [
        duplicate_records(
            df, "silver.order_lines" if name == "tmall_order_items" else "silver.orders", ctx
        )
        for name, df in bronze.items()
    ]
    parameters = {
        "future_limit": future_limit(ctx.run_date, limits.future_tolerance_hours),
        "max_order_amount": limits.max_order_amount,
        "max_unit_price": limits.max_unit_price,
        "max_line_quantity": limits.max_line_quantity,
        "max_order_units": limits.max_order_units,
        "min_return_quantity": -limits.max_line_quantity,
    }
    common = {"run_id": ctx.run_id, "run_date": ctx.run_date, "parameters": parameters}

    # Lines first: a bad line takes its whole bronze record (a JD / mall order, a POS line)
    # with it, and a POS ticket is summed from its good lines only.
    pos = pos_lines(unique["pos_sales"])
    lines = reduce(
        DataFrame.unionByName,
        [
            tmall_lines(unique["tmall_order_items"]),
            jd_lines(unique["jd_orders"]),
            mall_lines(unique["mall_orders"]),
            pos_order_lines(pos),
        ],
    )
    line_gate = run_gate(
        lines, "silver.order_lines", key_columns=["order_key", "line_id"], **common
    )
    try:
        bad_lines = _coords(line_gate.quarantined)
        orders = reduce(
            DataFrame.unionByName,
            [
                tmall_orders(unique["tmall_orders"], cfg),
                jd_orders(unique["jd_orders"], cfg).join(
                    bad_lines, ["_source_file", "_line_no"], "left_anti"
                ),
                mall_orders(unique["mall_orders"], cfg).join(
                    bad_lines, ["_source_file", "_line_no"], "left_anti"
                ),
                pos_tickets(pos.join(bad_lines, ["_source_file", "_line_no"], "left_anti")),
            ],
        )
        order_gate = run_gate(orders, "silver.orders", key_columns=["order_key"], **common)
        try:
            return _finish(ctx, cfg, order_gate, line_gate, bad_lines, duplicates, bronze)
        finally:
            order_gate.release()
    finally:
        line_gate.release()


def _finish(ctx, cfg, order_gate, line_gate, bad_lines, duplicates, bronze) -> JobResult:
    tables = ctx.tables
    for outcome in (line_gate, order_gate):
        record_results(tables, outcome)
    raise_if_failed(line_gate)
    raise_if_failed(order_gate)

    # Lines of an order quarantined today follow it; lines whose record lost another line
    # (JD / mall) follow their record.
    bad_orders = order_gate.quarantined.select(
        F.get_json_object("record", "$.order_key").alias("order_key")
    ).distinct()
    good_lines = line_gate.good.join(bad_lines, ["_source_file", "_line_no"], "left_anti")
    orphaned = good_lines.join(bad_orders, "order_key", "left_semi")
    lines_good = good_lines.join(bad_orders, "order_key", "left_anti")
    orphaned = orphaned.unionByName(
        line_gate.good.join(bad_lines, ["_source_file", "_line_no"], "left_semi")
    )

    sku_map = _master(ctx, "sku_map")
    products = _master(ctx, "products")
    stores = _master(ctx, "stores")
    current_products = products.where("is_current")
    mapped = _map_skus(lines_good, sku_map, current_products)
    orders_good = order_gate.good.join(
        stores.where("is_current").select("store_code").withColumn("store_known", F.lit(True)),
        "store_code",
        "left",
    ).withColumn("store_known", F.coalesce("store_known", F.lit(False)))

    total = mapped.count()
    unmapped = mapped.where(~F.col("sku_mapped")).count()
    if total and unmapped / total > cfg.unmapped_rate_threshold:
        raise JobError(
            f"{unmapped} of {total} order lines ({unmapped / total:.1%}) have an unknown SKU, "
            f"above silver.unmapped_rate_threshold {cfg.unmapped_rate_threshold:.1%}: "
            "check silver.sku_map / the sku_mapping delivery before publishing"
        )

    order_latest = latest_state(orders_good, "order_key")
    sale_time = order_latest.select(
        "order_key", F.coalesce("paid_at", "created_at").alias("_sold_at")
    )
    known_times = (
        tables.read("silver", "orders").select(
            "order_key", F.coalesce("paid_at", "created_at").alias("_sold_at")
        )
        if tables.exists("silver", "orders")
        else sale_time.limit(0)
    )
    times = (
        sale_time.unionByName(known_times)
        .groupBy("order_key")
        .agg(F.max("_sold_at").alias("_sold_at"))
    )
    line_latest = latest_state(
        mapped.withColumn("_line_key", F.concat_ws("#", "order_key", "line_id")),
        "_line_key",
        change_time="_delivery_date",
    ).drop("_line_key")
    with_cost = valid_at(
        line_latest.join(times, "order_key", "left"),
        products,
        ["sku_id"],
        "_sold_at",
        columns=["unit_cost"],
    ).drop("_sold_at")

    result = JobResult()
    result.versions["silver.orders"] = tables.upsert(
        order_latest, "silver", "orders", ["order_key"], ORDER_NEWER
    )
    result.versions["silver.order_lines"] = tables.upsert(
        with_cost, "silver", "order_lines", ["order_key", "line_id"], LINE_NEWER
    )
    quarantine = [
        *duplicates,
        order_gate.quarantined,
        line_gate.quarantined,
        _orphans(orphaned, ctx),
        _unmapped(
            mapped, "silver.order_lines", "sku_mapped", "platform_sku_code", "unknown_sku", ctx
        ),
        # Every line of a ticket from an unknown store says so, not only the first.
        _unmapped(
            orders_good.select("order_key", "store_known", "store_code")
            .join(lines_good.drop("store_code"), "order_key")
            .where(F.col("platform") == "POS"),
            "silver.orders",
            "store_known",
            "store_code",
            "unknown_store",
            ctx,
        ),
        _unmapped(
            orders_good.where(F.col("platform") != "POS"),
            "silver.orders",
            "store_known",
            "store_code",
            "unknown_store",
            ctx,
        ),
    ]
    result.versions[f"silver.{SILVER_QUARANTINE}"] = write_quarantine(
        ctx, quarantine, ["silver.orders", "silver.order_lines"]
    )
    result.details["reconciliation"] = _reconcile(ctx, bronze, order_gate, line_gate, orphaned)
    result.rows_read = sum(v["bronze_rows"] for v in result.details["reconciliation"].values())
    result.rows_written = order_latest.count() + line_latest.count()
    result.rows_quarantined = sum(
        v["quarantined_rows"] + v["duplicate_rows"]
        for v in result.details["reconciliation"].values()
    )
    return result


def _map_skus(lines: DataFrame, sku_map: DataFrame, products: DataFrame) -> DataFrame:
    """Internal sku_id per line: platform codes through the SKU map, POS barcodes through
    products, JD's outerSkuId and mall ids accepted when they are product ids."""
    parts = []
    for platform, barcode, internal in (
        ("TMALL", False, False),
        ("JD", False, True),
        ("MALL", False, True),
        ("POS", True, False),
    ):
        subset = lines.where(F.col("platform") == platform)
        parts.append(
            master.resolve_sku(
                subset,
                sku_map,
                platform,
                "platform_sku_code",
                products,
                barcode=barcode,
                accept_internal_ids=internal,
            )
        )
    mapped = reduce(DataFrame.unionByName, parts)
    # JD: the merchant's own code (outerSkuId) is a product id when the platform code is not.
    known = products.select(F.col("sku_id").alias("_outer"))
    return (
        mapped.join(known, mapped["outer_sku_id"] == known["_outer"], "left")
        .withColumn("sku_id", F.coalesce("sku_id", "_outer"))
        .withColumn("sku_mapped", F.col("sku_id").isNotNull())
        .drop("_outer")
    )


def _orphans(lines: DataFrame, ctx: JobContext) -> DataFrame:
    return lines.select(
        F.lit("silver.order_lines").alias("table"),
        F.concat_ws(":", "order_key", "line_id").alias("record_key"),
        F.lit("order_quarantined").alias("expectation"),
        F.lit("a line follows its order version into quarantine").alias("rule"),
        F.lit("order_key").alias("column"),
        F.col("order_key").alias("value"),
        F.lit("order_quarantined").alias("reason"),
        F.to_json(F.struct("_source_file", "_line_no", "_delivery_date")).alias("record"),
        F.lit(ctx.run_id).alias("run_id"),
        F.lit(ctx.run_date).alias("run_date"),
    )


def write_quarantine(ctx: JobContext, parts: list[DataFrame], tables: list[str]) -> int:
    """Replace this day's quarantine slice of `tables`; lineage pulled out of the record JSON."""
    quarantine = reduce(DataFrame.unionByName, parts)
    rows = quarantine.select(*QUARANTINE_SCHEMA.fieldNames()).select(
        "*",
        F.get_json_object("record", "$._source_file").alias("source_file"),
        F.get_json_object("record", "$._line_no").cast("int").alias("line_no"),
        F.lit(ctx.run_date).alias("delivery_date"),
    )
    names = ", ".join(f"'{t}'" for t in tables)
    slice_ = f"table IN ({names}) AND delivery_date = '{ctx.run_date.isoformat()}'"
    return ctx.tables.replace_where(rows, "silver", SILVER_QUARANTINE, slice_, ["delivery_date"])


def _reconcile(ctx, bronze, order_gate, line_gate, orphaned) -> dict[str, dict[str, int]]:
    """Per bronze dataset: rows = accepted + exact duplicates + quarantined, or fail."""
    quarantined_lines = (
        _coords(order_gate.quarantined)
        .unionByName(_coords(line_gate.quarantined))
        .unionByName(orphaned.select("_source_file", "_line_no"))
        .distinct()
    )
    report: dict[str, dict[str, int]] = {}
    rows = []
    for dataset, df in bronze.items():
        counts = (
            df.join(
                quarantined_lines.withColumn("_q", F.lit(True)),
                ["_source_file", "_line_no"],
                "left",
            )
            .agg(
                F.count(F.lit(1)).alias("bronze_rows"),
                F.count_if(F.col("_duplicate_of").isNotNull()).alias("duplicate_rows"),
                F.count_if(F.col("_duplicate_of").isNull() & F.col("_q").isNotNull()).alias(
                    "quarantined_rows"
                ),
                F.count_if(F.col("_duplicate_of").isNull() & F.col("_q").isNull()).alias(
                    "accepted_rows"
                ),
            )
            .first()
            .asDict()
        )
        counts = {k: int(v) for k, v in counts.items()}
        if counts["bronze_rows"] != (
            counts["accepted_rows"] + counts["duplicate_rows"] + counts["quarantined_rows"]
        ):
            raise JobError(f"silver sales for {dataset} do not reconcile with bronze: {counts}")
        report[dataset] = counts
        rows.append((dataset, ctx.run_date, ctx.run_id, *counts.values()))
    frame = ctx.spark.createDataFrame(
        rows,
        "dataset string, delivery_date date, run_id string, bronze_rows long, "
        "duplicate_rows long, quarantined_rows long, accepted_rows long",
    )
    ctx.tables.replace_where(
        frame,
        "silver",
        RECONCILIATION,
        f"delivery_date = '{ctx.run_date.isoformat()}' AND dataset IN "
        f"({', '.join(repr(d) for d in bronze)})",
        ["delivery_date"],
    )
    return report
