"""The silver sales job: one day's bronze orders of every platform into silver.orders and
silver.order_lines, gated, deduplicated, latest state wins.

Steps, all before the first write so that a failed gate or reconciliation commits nothing:
1. read the bronze rows delivered on the run date (Tmall orders and items, JD, mall, POS);
2. split off exact duplicate lines (quarantined as `exact_duplicate`);
3. conform every platform into the one order / line shape and map the lines' SKUs (an unknown
   code keeps its row, marked unmapped: sales totals must not shrink);
4. gate lines, then orders, with their Great Expectations suites (bad rows → quarantine); a
   line is checked against its order (this delivery's or silver.orders) and a mapped SKU
   against silver.products; lines of a quarantined order follow it (`order_quarantined`);
5. map stores; unknown SKUs and stores leave a quarantine record; too many unknown SKUs fail
   the run;
6. reconcile per bronze dataset: bronze rows = rows handed to the MERGE + duplicates +
   quarantined, and bronze amount = accepted + quarantined amount to the cent, judged by the
   `silver.reconciliation` suite (policy fail);
7. keep the latest state per key and MERGE it (a late, older state never overwrites a newer;
   a JD or mall order's lines are those of the order version kept, see `lines_to_merge`;
   a store's corrected POS file drops the lines it no longer holds, see `pos_corrections`),
   then write quarantine and reconciliation.

The reconciliation helpers at the end of this module serve every silver job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import reduce
from zoneinfo import ZoneInfo

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType

from lakehouse.bronze.job import FILES, INGESTED
from lakehouse.config import SilverLimits
from lakehouse.quality.gate import (
    QUARANTINE_SCHEMA,
    GateFailed,
    failure_message,
    raise_if_failed,
    run_gate,
)
from lakehouse.quality.results import record_results
from lakehouse.runtime import JobContext, JobError, JobResult
from lakehouse.silver import master
from lakehouse.silver import normalise as n
from lakehouse.silver.dedup import day_file, dropped_by_correction, mark_exact_duplicates
from lakehouse.silver.order_lines import (
    jd_lines,
    mall_lines,
    pos_amount,
    pos_lines,
    pos_order_lines,
    reused_ticket_numbers,
    tmall_lines,
)
from lakehouse.silver.orders import (
    READABLE_CHECKS,
    jd_orders,
    latest_state,
    mall_orders,
    pos_tickets,
    tmall_orders,
)
from lakehouse.silver.scd2 import latest_versions, valid_at
from lakehouse.spark import small_frame
from lakehouse.tables import in_few_files, newer_when

ORDER_VERSION = ["updated_at", "_delivery_date", "_source_file", "_line_no"]
ORDER_NEWER = newer_when(ORDER_VERSION)
LINE_NEWER = newer_when(["_delivery_date", "_source_file", "_line_no"])
LINEAGE_KEY = ["_delivery_date", "_source_file", "_line_no"]
# Platforms whose records carry an order's whole item list (see lines_to_merge).
WHOLE_ORDER_PLATFORMS = ("JD", "MALL")
REPLACE, DELETE = "_merge_replace", "_merge_delete"
# A line of an order's newer version replaces what silver holds; any other line only a
# line of an earlier delivery.
LINE_MERGE = f"s.`{REPLACE}` OR ({LINE_NEWER})"
LINE_FLAGS = {"delete_flag": DELETE}
SILVER_QUARANTINE = "quarantine"
RECONCILIATION = "reconciliation"
COORDS = ["_source_file", "_line_no"]


@dataclass(frozen=True)
class Platform:
    """Where one platform's bronze rows come from and how they reconcile.

    `reconciled_by`: the silver frame one bronze row of the dataset becomes (`orders`: one
    order version per row; `lines`: one order line per row), `platform` its platform value
    there, and `amount` the silver column that must add up to `bronze_amount`, the same money
    read straight off the bronze row.
    """

    name: str
    dataset: str
    reconciled_by: str
    amount: str
    bronze_amount: str  # a Spark SQL expression over the bronze row's columns; see _BRONZE_AMOUNT


PLATFORMS = [
    Platform("TMALL", "tmall_orders", "orders", "paid_amount", "tmall_paid"),
    Platform("TMALL", "tmall_order_items", "lines", "line_amount", "tmall_line"),
    Platform("JD", "jd_orders", "orders", "paid_amount", "jd_paid"),
    Platform("MALL", "mall_orders", "orders", "paid_amount", "mall_paid"),
    Platform("POS", "pos_sales", "lines", "line_amount", "pos_line"),
]


def _bronze_amounts() -> dict[str, Column]:
    """The revenue of one bronze row, parsed from bronze as delivered: orders their paid amount
    in yuan, lines their line amount. A function: Columns need a live session."""
    return {
        "tmall_paid": n.yuan(F.col("paid_amount")),
        # try_cast: an absurd price x quantity can overflow (ANSI would fail the job); such a
        # line is quarantined by its price rule, and a null adds to neither side.
        "tmall_line": (n.quantity(F.col("quantity")) * n.yuan(F.col("unit_price"))).try_cast(
            n.MONEY
        ),
        "jd_paid": n.yuan(F.col("orderPayment")),
        "mall_paid": n.fen_to_yuan(F.col("paid_fen")),
        # A return's amount counts as money going back whatever its printed sign (`pos_amount`).
        "pos_line": pos_amount(n.quantity(F.col("qty")), n.yuan(F.col("amount"))),
    }


def future_limit(run_date, tolerance_hours: int) -> str:
    """The latest believable time: the end of the run date in Shanghai plus a tolerance, UTC."""
    shanghai = ZoneInfo("Asia/Shanghai")
    end = datetime.combine(run_date + timedelta(days=1), time(0), tzinfo=shanghai)
    limit = end.astimezone(ZoneInfo("UTC")) + timedelta(hours=tolerance_hours)
    return limit.replace(tzinfo=None).isoformat(sep=" ")


def earliest_time(earliest_business_date) -> str:
    """The earliest believable time: the first instant of conf's earliest business date, UTC.

    Shanghai's midnight is eight hours earlier in UTC; a day's slack either way changes nothing
    for what this catches (1970-01-01, 1900-01-01: a source's default for a missing time)."""
    return datetime.combine(earliest_business_date, time(0)).isoformat(sep=" ")


def sales_parameters(run_date, limits: SilverLimits) -> dict:
    """The orders and order-lines suites' run-time parameters: conf/silver.yml's limits."""
    return {
        "future_limit": future_limit(run_date, limits.future_tolerance_hours),
        "earliest_time": earliest_time(limits.earliest_business_date),
        "max_order_amount": limits.max_order_amount,
        "max_unit_price": limits.max_unit_price,
        "max_line_quantity": limits.max_line_quantity,
        "max_order_units": limits.max_order_units,
        "min_return_quantity": -limits.max_line_quantity,
    }


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


def _returns_naming_no_ticket(lines: DataFrame, known: DataFrame) -> DataFrame:
    """POS return lines with `_original_known`: whether the ticket they return (same store,
    `orig_ticket_no`) is one silver holds or this delivery brings.

    Why: a return naming a ticket that is nowhere (another store's, a mistyped number) is a
    code that maps to nothing; like an unknown SKU it is kept (the goods came back) and says
    so in silver.quarantine (`unknown_original_ticket`), rather than pass unnoticed.
    """
    originals = known.select(F.col("order_key").alias("_original")).distinct()
    return (
        lines.where(F.col("orig_order_key").isNotNull())
        .join(originals, F.col("orig_order_key") == F.col("_original"), "left")
        .withColumn("_original_known", F.col("_original").isNotNull())
        .drop("_original")
    )


def build_sales(ctx: JobContext) -> JobResult:
    """Conform, gate, reconcile and publish one day's orders and order lines."""
    cfg = ctx.settings.silver
    limits = cfg.limits
    bronze = {p.dataset: delivered(ctx, p.dataset) for p in PLATFORMS}
    cached = [df.persist(StorageLevel.MEMORY_AND_DISK) for df in bronze.values()]
    try:
        return _publish(ctx, bronze, cfg, limits)
    finally:
        for df in cached:
            df.unpersist()


def quarantine_coords(quarantined: DataFrame) -> DataFrame:
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
    parameters = sales_parameters(ctx.run_date, limits)
    common = {"run_id": ctx.run_id, "run_date": ctx.run_date, "parameters": parameters}
    products = _master(ctx, "products")
    masters = {
        "sku_map": _master(ctx, "sku_map"),
        "products": products,
        "stores": _master(ctx, "stores"),
    }

    # Lines first: a bad line takes its whole bronze record (a JD / mall order, a POS line)
    # with it, and a POS ticket is summed from its good lines only. SKUs are mapped before the
    # gate, so the gate can check that a mapped sku_id is a product.
    pos = pos_lines(unique["pos_sales"])
    conformed = {
        "TMALL": tmall_orders(unique["tmall_orders"], cfg),
        "JD": jd_orders(unique["jd_orders"], cfg),
        "MALL": mall_orders(unique["mall_orders"], cfg),
    }
    held = held_tmall_lines(ctx, conformed["TMALL"])
    tmall_items = unique["tmall_order_items"]
    if held is not None:
        tmall_items = tmall_items.unionByName(released_bronze(ctx, held), allowMissingColumns=True)
    lines = reduce(
        DataFrame.unionByName,
        [
            tmall_lines(tmall_items),
            jd_lines(unique["jd_orders"]),
            mall_lines(unique["mall_orders"]),
            pos_order_lines(pos),
        ],
    )
    corrections = pos_corrections(ctx, pos)
    published_pos = _published_pos_lines(ctx, pos, corrections)
    lines = with_ticket_check(
        lines,
        reused_ticket_numbers(pos if published_pos is None else pos.unionByName(published_pos)),
    )
    mapped = _map_skus(lines, masters["sku_map"], products.where("is_current"), products)
    line_gate = run_gate(
        mapped,
        "silver.order_lines",
        key_columns=["order_key", "line_id"],
        references={
            "silver.orders": known_orders(ctx, [*conformed.values(), pos]),
            "silver.products": products,
        },
        **common,
    )
    try:
        bad_lines = quarantine_coords(line_gate.quarantined).localCheckpoint()
        ticket_lines = _with_published_lines(
            pos.join(bad_lines, COORDS, "left_anti"), published_pos, corrections
        )
        orders = reduce(
            DataFrame.unionByName,
            [
                conformed["TMALL"],
                conformed["JD"].join(bad_lines, COORDS, "left_anti"),
                conformed["MALL"].join(bad_lines, COORDS, "left_anti"),
                pos_tickets(ticket_lines),
            ],
        )
        order_gate = run_gate(orders, "silver.orders", key_columns=["order_key"], **common)
        try:
            return _finish(
                ctx,
                cfg,
                order_gate,
                line_gate,
                bad_lines,
                duplicates,
                bronze,
                masters,
                held,
                corrections.with_emptied(ticket_lines) if corrections else None,
            )
        finally:
            order_gate.release()
    finally:
        line_gate.release()


# The line gate's helper column: null on a line of a POS ticket whose number another till or
# day (not the minutes across midnight) also used (`reused_ticket_numbers`), so
# `ticket_number_not_reused` quarantines it.
TICKET_CHECK = "_ticket_one_sale"


def with_ticket_check(lines: DataFrame, reused: DataFrame) -> DataFrame:
    """Lines with `TICKET_CHECK`: null where the line's order_key is a reused ticket number."""
    flagged = reused.select("order_key", F.lit(True).alias("_reused"))
    return (
        lines.join(flagged, "order_key", "left")
        .withColumn(TICKET_CHECK, F.when(F.col("_reused").isNull(), F.lit(True)))
        .drop("_reused")
    )


def _published_pos_lines(
    ctx: JobContext, pos: DataFrame, corrections: Corrections | None = None
) -> DataFrame | None:
    """The POS lines silver already publishes for today's tickets, as `pos_lines` conforms them.

    Why: a ticket is summed from its lines, and a line delivered a day after the rest of its
    ticket (late data) made the ticket that line alone; and a ticket number used again by
    another till or day is told from a late line by the till and day of the lines published
    under it. The earlier lines are read back from bronze (silver.order_lines lacks the till,
    the discount and the member fields) by their exact coordinates, in the few deliveries that
    hold them. With `corrections`, the tickets they touch are read back too, without the
    dropped lines: such a ticket is summed again from what is left of it. None when there are
    none.
    """
    if not ctx.tables.exists("silver", "order_lines"):
        return None
    tickets = pos.select("order_key")
    if corrections is not None:
        tickets = tickets.unionByName(corrections.tickets)
    published = (
        ctx.tables.read("silver", "order_lines")
        .where((F.col("platform") == "POS") & (F.col("_delivery_date") < F.lit(ctx.run_date)))
        .join(tickets.distinct(), "order_key", "left_semi")
    )
    if corrections is not None:
        published = published.join(
            corrections.dropped.select("order_key", "line_id"),
            ["order_key", "line_id"],
            "left_anti",
        )
    published = published.select(*LINEAGE_KEY).localCheckpoint()
    days = [row[0] for row in published.select("_delivery_date").distinct().collect()]
    if not days:
        return None
    earlier = (
        ctx.tables.read("bronze", "pos_sales")
        .where(F.col("_delivery_date").isin(days))
        .join(published, LINEAGE_KEY, "left_semi")
    )
    return pos_lines(earlier).localCheckpoint()


def _with_published_lines(
    good_pos: DataFrame, published_pos: DataFrame | None, corrections: Corrections | None = None
) -> DataFrame:
    """Today's good POS lines plus the published lines of the same tickets (and of the tickets
    a correction touched); a line delivered again today replaces its earlier version in
    `pos_tickets`, as it does in silver.order_lines."""
    if published_pos is None:
        return good_pos
    tickets = good_pos.select("order_key")
    if corrections is not None:
        tickets = tickets.unionByName(corrections.tickets)
    earlier = published_pos.join(tickets.distinct(), "order_key", "left_semi")
    return good_pos.unionByName(earlier)


# One row per POS line a store's corrected file dropped from silver (LINEAGE_KEY of the line),
# with the day that dropped it: what silver.order_lines no longer holds, and why.
RETRACTIONS = "retracted_pos_lines"


@dataclass(frozen=True)
class Corrections:
    """POS lines silver publishes that today's corrected files of their store-days no longer
    hold (`dropped_by_correction`).

    `dropped`: their silver.order_lines rows, materialised; `emptied`: the order_keys of the
    tickets left with no line at all (deleted from silver.orders), set by `with_emptied`.
    """

    dropped: DataFrame
    corrected_files: DataFrame
    emptied: DataFrame | None = None

    @property
    def tickets(self) -> DataFrame:
        return self.dropped.select("order_key").distinct()

    def with_emptied(self, ticket_lines: DataFrame) -> Corrections:
        """`emptied` from the lines today's tickets are summed from (`_with_published_lines`)."""
        left = ticket_lines.select("order_key").distinct()
        emptied = self.tickets.join(left, "order_key", "left_anti").localCheckpoint()
        return Corrections(self.dropped, self.corrected_files, emptied)


def pos_corrections(ctx: JobContext, pos: DataFrame) -> Corrections | None:
    """The published POS lines that today's files of a store-day delivered before no longer
    hold (`dropped_by_correction`, `corrected_files`); None when there are none. A day without
    a correcting file never scans silver."""
    tables = ctx.tables
    if not tables.exists("silver", "order_lines"):
        return None
    found = corrected_files(ctx, "pos_sales")
    if found is None:
        return None
    earlier, corrected = found
    run_date = F.lit(ctx.run_date)
    published = tables.read("silver", "order_lines").where(
        (F.col("platform") == "POS")
        & (F.col("_delivery_date") < run_date)
        & F.col("_source_file").isin(earlier)
    )
    delivered = pos.select("order_key", F.col("line_no").cast("string").alias("line_id"))
    dropped = dropped_by_correction(
        published,
        corrected,
        delivered,
        ["order_key", "line_id"],
        unreadable_lines(ctx, "pos_sales", corrected),
        [F.substring_index(F.col("order_key"), ":", -1), F.col("line_id")],
    ).localCheckpoint()
    if dropped.isEmpty():
        return None
    return Corrections(dropped, corrected)


def unreadable_lines(ctx: JobContext, dataset: str, corrected: DataFrame) -> DataFrame:
    """`source_file`, `raw_text` of the lines of today's correcting files (`corrected`, see
    `corrected_files`) that bronze could not read (bronze.quarantine)."""
    if not ctx.tables.exists("bronze", "quarantine"):
        return small_frame(ctx.spark, [], "source_file string, raw_text string")
    return (
        ctx.tables.read("bronze", "quarantine")
        .where((F.col("dataset") == dataset) & (F.col("delivery_date") == F.lit(ctx.run_date)))
        .join(F.broadcast(corrected), "source_file", "left_semi")
        .select("source_file", "raw_text")
    )


def corrected_files(ctx: JobContext, dataset: str) -> tuple[list[str], DataFrame] | None:
    """For a dataset whose file is one day's whole (POS: a store's day; inventory: the day's
    snapshot; campaign_touches: the day's touches): the earlier deliveries' files of the days
    today's files correct (`day_file`), and today's correcting files (`source_file`). None on a
    day without such a file, which costs one small read of bronze.ingested_files.

    A file delivered again with the same name and bytes is a re-delivery (bronze lands nothing
    of it) and corrects nothing; several files of one day in one delivery are read together.
    """
    if not ctx.tables.exists("bronze", FILES):
        return None
    files = (
        ctx.tables.read("bronze", FILES)
        .where(
            (F.col("dataset") == dataset)
            & (F.col("status") == INGESTED)
            & (F.col("delivery_date") <= F.lit(ctx.run_date))
        )
        .select("source_file", "delivery_date", day_file(F.col("source_file")).alias("_day"))
    )
    today_days = files.where(F.col("delivery_date") == F.lit(ctx.run_date)).select("_day")
    same_days = files.join(today_days, "_day", "left_semi").collect()
    before = [r for r in same_days if r.delivery_date < ctx.run_date]
    if not before:
        return None
    days = {r._day for r in before}
    today = sorted(
        {r.source_file for r in same_days if r.delivery_date == ctx.run_date and r._day in days}
    )
    earlier = sorted({r.source_file for r in before})
    return earlier, small_frame(ctx.spark, [(f,) for f in today], "source_file string")


HELD_FOR_ORDER = ("order_known", "order_quarantined")
# One row per Tmall line judged again (LINEAGE_KEY), with the last day that did it.
RELEASES = "held_line_releases"


@dataclass(frozen=True)
class HeldLines:
    """Tmall lines held in quarantine for want of their order, judged again today.

    `lines`: their bronze coordinates (LINEAGE_KEY) and order_key, one row per line;
    `earlier_rows`: the quarantine rows of earlier days that held them (table, source_file,
    line_no, delivery_date), deleted once today's MERGE and quarantine hold the lines.
    """

    lines: DataFrame
    earlier_rows: DataFrame | None


def held_tmall_lines(ctx: JobContext, tmall_orders_today: DataFrame) -> HeldLines | None:
    """The Tmall lines to judge again today, None when there are none: those an earlier day's
    quarantine holds only for want of their order (`order_known`, `order_quarantined`) when a
    version of the order is delivered today, and those an earlier run of this same day
    released (silver.held_line_releases), so that a rerun judges them again as it did.

    Why: Tmall exports orders and lines in two files, and a delivery may hold late records: a
    line can come a day before its order (or beside a version of it that was quarantined).
    Kept in quarantine, the order would be published without it for good. A held line is
    judged again, from its own bronze row, the day a version of its order comes.
    """
    tables = ctx.tables
    today = F.lit(ctx.run_date)
    parts, earlier_rows = [], None
    if tables.exists("silver", SILVER_QUARANTINE):
        record = F.col("record")
        earlier_rows = (
            tables.read("silver", SILVER_QUARANTINE)
            .where(
                (F.col("table") == "silver.order_lines")
                & F.col("expectation").isin(*HELD_FOR_ORDER)
                & (F.col("delivery_date") < today)
                & F.col("value").startswith("TMALL:")
            )
            .join(
                tmall_orders_today.select(F.col("order_key").alias("value")).distinct(),
                "value",
                "left_semi",
            )
            .select(
                "table",
                "source_file",
                "line_no",
                "delivery_date",
                F.get_json_object(record, "$._delivery_date").cast("date").alias("_delivery_date"),
                F.get_json_object(record, "$._source_file").alias("_source_file"),
                F.get_json_object(record, "$._line_no").cast("int").alias("_line_no"),
                F.col("value").alias("order_key"),
            )
            .where(F.col("_delivery_date").isNotNull())
            .distinct()
            .localCheckpoint()
        )
        parts.append(earlier_rows.select(*LINEAGE_KEY, "order_key"))
    if tables.exists("silver", RELEASES):
        # Released by an earlier run of this day, and by no later day since.
        parts.append(
            tables.read("silver", RELEASES)
            .where(F.col("released_on") == today)
            .select(*LINEAGE_KEY, "order_key")
        )
    if not parts:
        return None
    lines = reduce(DataFrame.unionByName, parts).distinct().localCheckpoint()
    if lines.isEmpty():
        return None
    return HeldLines(lines, earlier_rows)


def released_bronze(ctx: JobContext, held: HeldLines) -> DataFrame:
    """The bronze rows of held Tmall lines, read only in the deliveries that hold them."""
    days = [row[0] for row in held.lines.select("_delivery_date").distinct().collect()]
    return (
        ctx.tables.read("bronze", "tmall_order_items")
        .where(F.col("_delivery_date").isin(days))
        .join(F.broadcast(held.lines.select(*LINEAGE_KEY)), LINEAGE_KEY, "left_semi")
    )


def known_orders(ctx: JobContext, conformed: Sequence[DataFrame]) -> DataFrame:
    """The order keys a line may name: this delivery's orders, before their gate (a line of an
    order quarantined today follows it as `order_quarantined`, it is not unknown), and every
    order silver.orders already holds."""
    keys = reduce(DataFrame.unionByName, [df.select("order_key") for df in conformed])
    if ctx.tables.exists("silver", "orders"):
        keys = keys.unionByName(ctx.tables.read("silver", "orders").select("order_key"))
    return keys


def lines_following_their_order(
    quarantined_orders: DataFrame, good_orders: DataFrame
) -> tuple[DataFrame, DataFrame]:
    """What takes an order's lines into quarantine with it: (bronze coordinates of the
    quarantined order records, order keys with no version through the gate today).

    Several versions of one order in a delivery are normal. Keyed by order alone, one bad
    version took the lines of a good one along: a JD or mall order then counted as both
    published and quarantined (the day failed to reconcile), and Tmall lines of a published
    order went to quarantine.
    """
    records = quarantine_coords(quarantined_orders)
    keys = (
        quarantined_orders.select(F.get_json_object("record", "$.order_key").alias("order_key"))
        .where(F.col("order_key").isNotNull())
        .distinct()
        .join(good_orders.select("order_key"), "order_key", "left_anti")
    )
    return records, keys


def _finish(
    ctx, cfg, order_gate, line_gate, bad_lines, duplicates, bronze, masters, held, corrections
):
    tables = ctx.tables
    for outcome in (line_gate, order_gate):
        record_results(tables, outcome)
    raise_if_failed(line_gate)
    raise_if_failed(order_gate)

    # Lines follow their order into quarantine: the lines of a quarantined record (JD / mall
    # items, which come in it), and every line of an order with no good version today
    # (Tmall's separate line export, a POS ticket). A good version delivered beside a bad
    # one keeps its lines. Lines whose record lost another line (JD / mall) follow their
    # record. The small frames the later steps join on are checkpointed: each gate's plan
    # already holds the other's, and without the cut the plans of the steps below (and the
    # reconciliation over all of them) grow too big to optimise.
    bad_orders = lines_following_their_order(order_gate.quarantined, order_gate.good)
    bad_records, bad_order_keys = (frame.localCheckpoint() for frame in bad_orders)
    gate_good = line_gate.good.drop(TICKET_CHECK)
    good_lines = gate_good.join(bad_lines, COORDS, "left_anti")
    follow = (
        good_lines.join(bad_order_keys.withColumn("_bad_order", F.lit(True)), "order_key", "left")
        .join(bad_records.withColumn("_bad_record", F.lit(True)), COORDS, "left")
        .withColumn(
            "_follows_order",
            F.coalesce(F.col("_bad_order"), F.lit(False))
            | F.coalesce(F.col("_bad_record"), F.lit(False)),
        )
    )
    lines_good = follow.where(~F.col("_follows_order")).select(*good_lines.columns)
    orphaned = (
        follow.where(F.col("_follows_order"))
        .select(*good_lines.columns)
        .unionByName(gate_good.join(bad_lines, COORDS, "left_semi"))
        .localCheckpoint()
    )

    products, stores = masters["products"], masters["stores"]
    # Every store the history holds, not the current ones: a store dropped from the snapshots
    # (closed) still sends its last tickets, a late file or a correction of its days.
    known_stores = stores.select("store_code").distinct().withColumn("store_known", F.lit(True))
    orders_good = (
        order_gate.good.drop(*READABLE_CHECKS)
        .join(known_stores, "store_code", "left")
        .withColumn("store_known", F.coalesce("store_known", F.lit(False)))
    )

    # What the MERGEs get, before latest-state selection: every row here is "accepted" in the
    # reconciliation, so a row lost (or doubled) by any step after the gates is caught.
    # Checkpointed (materialised once), so the upserts write exactly the rows that were counted.
    order_rows = orders_good.localCheckpoint()
    order_latest = latest_state(order_rows, "order_key")
    line_rows = _costed(tables, lines_good, order_latest, products).localCheckpoint()
    removed = (
        quarantine_coords(order_gate.quarantined)
        .unionByName(bad_lines)
        .unionByName(orphaned.select(*COORDS))
        .localCheckpoint()
    )
    return _commit(
        ctx,
        cfg,
        (order_rows, order_latest, line_rows, lines_good),
        (order_gate, line_gate, orphaned, removed, duplicates),
        bronze,
        held,
        corrections,
    )


def _costed(tables, lines: DataFrame, order_latest: DataFrame, products: DataFrame) -> DataFrame:
    """Lines with the unit cost of their product valid when the order was sold."""
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
    return valid_at(
        lines.join(times, "order_key", "left"),
        products,
        ["sku_id"],
        "_sold_at",
        columns=["unit_cost"],
        last_holds=True,
    ).drop("_sold_at")


def _commit(ctx, cfg, frames, quarantined, bronze, held, corrections=None) -> JobResult:
    """Check the unmapped rate and the reconciliation, then write: the MERGEs, quarantine,
    reconciliation. Nothing is written when a check fails.

    Lines a store's corrected POS file dropped (`corrections`) are logged in
    silver.retracted_pos_lines first, then deleted by the MERGEs, with the tickets left
    without a line; a ticket they touched is written as summed today, whatever its lineage.

    Held lines judged again today (`held`) were counted by their own delivery's
    reconciliation, as quarantined: they are left out of today's accepted rows, and their
    earlier quarantine rows are deleted once the MERGE holds them (or today's quarantine does).
    """
    tables = ctx.tables
    order_rows, order_latest, line_rows, lines_good = frames
    order_gate, line_gate, orphaned, removed, duplicates = quarantined
    returns = _returns_naming_no_ticket(lines_good, known_orders(ctx, [order_rows]))
    stats = line_rows.agg(
        F.count(F.lit(1)).alias("total"), F.count_if(~F.col("sku_mapped")).alias("unmapped")
    ).first()
    total, unmapped = int(stats["total"]), int(stats["unmapped"])
    threshold, setting = cfg.unmapped_threshold(total)
    if threshold is not None and total and unmapped / total > threshold:
        raise JobError(
            f"{unmapped} of {total} order lines ({unmapped / total:.1%}) have an unknown SKU, "
            f"above {setting} {threshold:.1%}: "
            "check silver.sku_map / the sku_mapping delivery before publishing"
        )

    rows = {"orders": order_rows, "lines": line_rows}
    if held is not None:
        rows["lines"] = line_rows.join(
            F.broadcast(held.lines.select(*LINEAGE_KEY)), LINEAGE_KEY, "left_anti"
        )
    accepted = reduce(
        DataFrame.unionByName,
        [
            rows[p.reconciled_by]
            .where(F.col("platform") == p.name)
            .select(
                F.lit(p.dataset).alias("dataset"),
                F.col(p.amount).cast(n.MONEY).alias("_amount"),
            )
            for p in PLATFORMS
        ],
    )
    amounts = _bronze_amounts()
    delivered_rows = reduce(
        DataFrame.unionByName,
        [
            bronze_side(bronze[p.dataset], p.dataset, amount=amounts[p.bronze_amount])
            for p in PLATFORMS
        ],
    )
    reconciled = reconcile(
        ctx,
        reconciliation_counts(
            delivered_rows, accepted, removed, {p.dataset: True for p in PLATFORMS}
        ),
    )

    # Decided against silver as it is before either MERGE, and materialised: the choice of an
    # order's lines must not see the orders MERGE just below.
    line_merge = lines_to_merge(
        line_rows,
        order_latest,
        tables.read("silver", "orders") if tables.exists("silver", "orders") else None,
        tables.read("silver", "order_lines") if tables.exists("silver", "order_lines") else None,
    ).localCheckpoint()
    result = JobResult()
    result.details["unknown_sku_lines"] = {"lines": total, "unknown_sku": unmapped}
    if corrections is None:
        result.versions["silver.orders"] = tables.upsert(
            order_latest, "silver", "orders", ["order_key"], ORDER_NEWER
        )
    else:
        # Logged before the deletes: a rerun (or a run killed after a MERGE) finds the lines
        # silver still holds and drops them as this run did; the log keeps what went.
        result.versions[f"silver.{RETRACTIONS}"] = tables.upsert(
            retraction_log(ctx, corrections),
            "silver",
            RETRACTIONS,
            LINEAGE_KEY,
            "s.retracted_on >= t.retracted_on",
        )
        result.versions["silver.orders"] = tables.upsert(
            orders_to_merge(order_latest, corrections),
            "silver",
            "orders",
            ["order_key"],
            f"s.`{REPLACE}` OR ({ORDER_NEWER})",
            **LINE_FLAGS,
        )
        line_merge = line_merge.unionByName(
            delete_rows(corrections.dropped.select("order_key", "line_id"), line_merge)
        )
        result.details["retracted_lines"] = corrections.dropped.count()
    result.versions["silver.order_lines"] = tables.upsert(
        line_merge, "silver", "order_lines", ["order_key", "line_id"], LINE_MERGE, **LINE_FLAGS
    )
    quarantine = [
        *duplicates,
        order_gate.quarantined,
        line_gate.quarantined,
        _orphans(orphaned, ctx),
        _unmapped(
            line_rows, "silver.order_lines", "sku_mapped", "platform_sku_code", "unknown_sku", ctx
        ),
        _unmapped(
            returns,
            "silver.order_lines",
            "_original_known",
            "orig_order_key",
            "unknown_original_ticket",
            ctx,
        ),
        # Every line of a ticket from an unknown store says so, not only the first.
        _unmapped(
            order_rows.select("order_key", "store_known", "store_code")
            .join(lines_good.drop("store_code"), "order_key")
            .where(F.col("platform") == "POS"),
            "silver.orders",
            "store_known",
            "store_code",
            "unknown_store",
            ctx,
        ),
        _unmapped(
            order_rows.where(F.col("platform") != "POS"),
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
    if held is not None:
        # Logged before their earlier quarantine rows go: a rerun of this day (or a run killed
        # after the delete) finds them there and judges them again, as this run did.
        result.versions[f"silver.{RELEASES}"] = tables.upsert(
            held.lines.select(
                *LINEAGE_KEY,
                "order_key",
                F.lit(ctx.run_date).alias("released_on"),
                F.lit(ctx.run_id).alias("run_id"),
            ),
            "silver",
            RELEASES,
            LINEAGE_KEY,
            "s.released_on >= t.released_on",
        )
        if held.earlier_rows is not None:
            # Every earlier row of a re-judged line goes, whatever its rule: today's gate said
            # again what still holds, in today's slice. Only the partitions of those days are
            # read, so other jobs writing today's quarantine do not conflict with the delete.
            days = [r[0] for r in held.earlier_rows.select("delivery_date").distinct().collect()]
            if days:
                result.versions[f"silver.{SILVER_QUARANTINE}"] = tables.delete_matching(
                    held.earlier_rows,
                    "silver",
                    SILVER_QUARANTINE,
                    ["table", "source_file", "line_no", "delivery_date"],
                    target_where=F.col("t.delivery_date").isin(days),
                )
        result.details["released_lines"] = held.lines.count()
    result.versions[f"silver.{RECONCILIATION}"] = write_reconciliation(ctx, reconciled)
    report = reconciliation_report(reconciled)
    result.details["reconciliation"] = report
    result.rows_read = sum(v["bronze_rows"] for v in report.values())
    result.rows_written = order_latest.count() + line_merge.where(~F.col(DELETE)).count()
    result.rows_quarantined = sum(
        v["quarantined_rows"] + v["duplicate_rows"] for v in report.values()
    )
    return result


def lines_to_merge(
    line_rows: DataFrame,
    order_latest: DataFrame,
    silver_orders: DataFrame | None,
    silver_lines: DataFrame | None,
) -> DataFrame:
    """The MERGE source for silver.order_lines: one row per (order_key, line_id), with the
    steering flags `_merge_replace` and `_merge_delete` (see LINE_MERGE).

    Why two rules: a JD or mall record carries its order's whole item list at one version
    (its change time), so an order's lines are the lines of the version silver keeps for the
    order: they replace every line silver held for it (a line the new version no longer holds
    is deleted), and a version older than silver's order leaves its lines alone. Tmall's line
    export and POS lines carry no version of their order: each line is its own latest
    delivery (`LINE_NEWER`). A version that brings no line (an empty or missing item list)
    leaves the order's lines as they are rather than deleting them.
    """
    whole = F.col("platform").isin(*WHOLE_ORDER_PLATFORMS)
    per_line = latest_state(
        line_rows.where(~whole).withColumn("_line_key", F.concat_ws("#", "order_key", "line_id")),
        "_line_key",
        change_time="_delivery_date",
    ).drop("_line_key")

    versions = order_latest.where(whole).select("order_key", *ORDER_VERSION)
    if silver_orders is not None:
        # The day's orders are few beside silver's: silver.orders is cut to them by a broadcast
        # semi-join first, so the large table is scanned, not shuffled.
        kept = silver_orders.select("order_key", *ORDER_VERSION, F.lit(True).alias("_kept")).join(
            F.broadcast(versions.select("order_key")), "order_key", "left_semi"
        )
        versions = (
            versions.alias("s")
            .join(kept.alias("t"), "order_key", "left")
            .where(F.col("t._kept").isNull() | F.expr(ORDER_NEWER))
            .select("order_key", *[F.col(f"s.{c}").alias(c) for c in ORDER_VERSION])
        )
    of_version = line_rows.where(whole).join(
        versions.select("order_key", *LINEAGE_KEY), ["order_key", *LINEAGE_KEY], "left_semi"
    )
    flags = [F.lit(True).alias(REPLACE), F.lit(False).alias(DELETE)]
    merged = per_line.select("*", F.lit(False).alias(REPLACE), F.lit(False).alias(DELETE))
    merged = merged.unionByName(of_version.select("*", *flags))
    if silver_lines is None:
        return merged
    # Only the keys of silver's lines are read (two columns of a large table), and the day's
    # replaced orders are broadcast: a delete row needs its key, nothing else.
    replaced = F.broadcast(of_version.select("order_key").distinct())
    dropped = (
        silver_lines.select("order_key", "line_id")
        .join(replaced, "order_key", "left_semi")
        .join(of_version.select("order_key", "line_id"), ["order_key", "line_id"], "left_anti")
    )
    return merged.unionByName(delete_rows(dropped, merged))


def delete_rows(keys: DataFrame, shape: DataFrame) -> DataFrame:
    """MERGE source rows in `shape`'s columns that delete the target rows of `keys` (a delete
    row needs its key columns, the others null, and the steering flags)."""
    columns = [
        F.col(c) if c in keys.columns else F.lit(None).cast(t).alias(c)
        for c, t in shape.dtypes
        if c not in (REPLACE, DELETE)
    ]
    return keys.select(*columns, F.lit(False).alias(REPLACE), F.lit(True).alias(DELETE))


def orders_to_merge(order_latest: DataFrame, corrections: Corrections) -> DataFrame:
    """The orders MERGE source on a day a POS correction dropped lines: a ticket it touched is
    replaced as summed today (`_merge_replace`: its newest line may be one of earlier
    deliveries, older than silver's version of it), a ticket left without a line deleted."""
    touched = corrections.tickets.withColumn("_touched", F.lit(True))
    marked = (
        order_latest.join(touched, "order_key", "left")
        .withColumn(REPLACE, F.coalesce(F.col("_touched"), F.lit(False)))
        .withColumn(DELETE, F.lit(False))
        .drop("_touched")
    )
    emptied = corrections.emptied
    if emptied is None:
        return marked
    return marked.unionByName(delete_rows(emptied, marked))


def retraction_log(ctx: JobContext, corrections: Corrections) -> DataFrame:
    """silver.retracted_pos_lines rows: the dropped line, its ticket's business date (a mart
    recomputes that day, `touched_dates`), the files that corrected it, the day and run."""
    tickets = ctx.tables.read("silver", "orders").select("order_key", "business_date")
    return (
        with_corrected_by(corrections.dropped, corrections.corrected_files)
        .join(tickets.join(corrections.tickets, "order_key", "left_semi"), "order_key", "left")
        .select(
            *retraction_columns(
                ctx,
                [
                    "order_key",
                    "line_id",
                    "platform_sku_code",
                    "quantity",
                    "line_amount",
                    "business_date",
                ],
            )
        )
    )


def retraction_columns(ctx: JobContext, logged: Sequence[str]) -> list[Column | str]:
    """The columns of a retraction log's row: the dropped row's lineage, `logged`, the files
    that corrected it, the day and the run (every log is keyed by lineage)."""
    return [
        *LINEAGE_KEY,
        *logged,
        "corrected_by",
        F.lit(ctx.run_date).alias("retracted_on"),
        F.lit(ctx.run_id).alias("run_id"),
    ]


def with_corrected_by(dropped: DataFrame, corrected_files: DataFrame) -> DataFrame:
    """`dropped` (rows with `_source_file`) with `corrected_by`: the names of today's files of
    the same day (`day_file`), comma-separated."""
    names = corrected_files.groupBy(day_file(F.col("source_file")).alias("_day")).agg(
        F.array_join(
            F.array_sort(F.collect_set(F.regexp_extract("source_file", r"([^/]*)$", 1))), ", "
        ).alias("corrected_by")
    )
    return (
        dropped.withColumn("_day", day_file(F.col("_source_file")))
        .join(names, "_day", "left")
        .drop("_day")
    )


PAST_PRODUCTS = "sku_id string, barcode string"


def _map_skus(
    lines: DataFrame, sku_map: DataFrame, current: DataFrame, products: DataFrame
) -> DataFrame:
    """Internal sku_id per line: platform codes through the SKU map, POS barcodes through
    the current products, JD's outerSkuId and mall ids accepted when they are product ids; a
    code none of these finds may be a product since dropped from the snapshots (its last
    version: `master.resolve_sku`'s `products_past`). Row count preserved."""
    # Held by the driver: a few rows, broadcast in each platform's lookup, where a plan would
    # recompute the window over the whole product history inside each of four broadcasts.
    # Until a product is delisted there are none, and the lookups are those of the current
    # products alone; after that the list holds every delisted product (over SMALL_FRAME_ROWS
    # of them, small_frame goes through createDataFrame).
    past_rows = (
        latest_versions(products, ["sku_id"])
        .join(current.select("sku_id"), "sku_id", "left_anti")
        .select("sku_id", "barcode")
        .collect()
    )
    past = (
        small_frame(lines.sparkSession, [tuple(r) for r in past_rows], PAST_PRODUCTS)
        if past_rows
        else None
    )
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
                current,
                barcode=barcode,
                accept_internal_ids=internal,
                products_past=past,
                with_route=past is not None,
            )
        )
    mapped = reduce(DataFrame.unionByName, parts)
    # JD: the merchant's own code (outerSkuId) is a product id when the platform code is not.
    # Distinct ids: products holds one row per version, and a line must stay one line.
    ever = products.select(F.col("sku_id").alias("_outer")).distinct()
    mapped = mapped.join(ever, mapped["outer_sku_id"] == ever["_outer"], "left")
    if past is None:
        sku_id = F.coalesce("sku_id", "_outer")
    else:
        # A current product it names beats a delisted one the platform code found; a delisted
        # one it names comes after every route.
        now = current.select(F.col("sku_id").alias("_outer_now")).distinct()
        mapped = mapped.join(now, mapped["outer_sku_id"] == now["_outer_now"], "left")
        found_current = F.when(F.col("sku_route") <= master.CURRENT_ROUTES, F.col("sku_id"))
        sku_id = F.coalesce(found_current, "_outer_now", "sku_id", "_outer")
    return (
        mapped.withColumn("sku_id", sku_id)
        .withColumn("sku_mapped", F.col("sku_id").isNotNull())
        .drop("_outer_now", "_outer", "sku_route")
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
    return ctx.tables.replace_where(
        in_few_files(rows), "silver", SILVER_QUARANTINE, slice_, ["delivery_date"]
    )


# --- reconciliation: bronze = accepted + duplicates + quarantined, for every silver job -------

AMOUNT = DecimalType(28, 2)  # sums of MONEY
COUNT_COLUMNS = ["bronze_rows", "duplicate_rows", "quarantined_rows", "accepted_rows"]
AMOUNT_COLUMNS = ["bronze_amount", "accepted_amount", "quarantined_amount"]
RECONCILIATION_DDL = (
    "dataset string, delivery_date date, run_id string, bronze_rows long, duplicate_rows long, "
    "quarantined_rows long, accepted_rows long, bronze_amount decimal(28,2), "
    "accepted_amount decimal(28,2), quarantined_amount decimal(28,2)"
)


def bronze_side(
    bronze: DataFrame,
    dataset: str,
    *,
    superseded: DataFrame | None = None,
    amount: Column | None = None,
) -> DataFrame:
    """One dataset's delivered bronze rows in `reconciliation_counts`' shape: `dataset`,
    `_source_file`, `_line_no`, `_duplicate` and `_amount` (null without an amount).

    `_duplicate`: an exact duplicate line (`_duplicate_of`), or a line `superseded` (a frame of
    coordinates) by a later line of the same delivery with the same key.
    """
    duplicate = F.col("_duplicate_of").isNotNull()
    rows = bronze
    if superseded is not None:
        marks = superseded.select(*COORDS).distinct().withColumn("_superseded", F.lit(True))
        rows = rows.join(marks, COORDS, "left")
        duplicate = duplicate | F.col("_superseded").isNotNull()
    return rows.select(
        F.lit(dataset).alias("dataset"),
        *COORDS,
        duplicate.alias("_duplicate"),
        (amount if amount is not None else F.lit(None)).cast(n.MONEY).alias("_amount"),
    )


def accepted_side(df: DataFrame, dataset: str, amount: str | None = None) -> DataFrame:
    """The rows handed to a MERGE for `dataset`, in `reconciliation_counts`' shape."""
    value = F.col(amount) if amount else F.lit(None)
    return df.select(F.lit(dataset).alias("dataset"), value.cast(n.MONEY).alias("_amount"))


def reconciliation_counts(
    bronze: DataFrame,
    accepted: DataFrame,
    removed: DataFrame,
    datasets: Mapping[str, bool],
) -> DataFrame:
    """Per dataset of `datasets` (name → whether it carries an amount), one row:

    - `bronze_rows`, `bronze_amount`: every delivered bronze row (`bronze`: dataset,
      _source_file, _line_no, _duplicate, _amount), duplicates included;
    - `duplicate_rows`: bronze rows marked `_duplicate`;
    - `quarantined_rows`: the other bronze rows whose coordinates are in `removed`
      (_source_file, _line_no: rows moved to quarantine; repeats are fine);
    - `quarantined_amount`: the bronze amount of duplicate and quarantined rows;
    - `accepted_rows`, `accepted_amount`: the rows of `accepted` (dataset, _amount), the frames
      handed to the MERGE, counted independently of bronze.

    So bronze = accepted + duplicates + quarantined holds only when every bronze row reached
    the MERGE or quarantine exactly once. Amounts are null for a dataset without one, 0.00
    for an empty delivery of one that has.
    """
    spark = bronze.sparkSession
    gone = removed.select(*COORDS).distinct().withColumn("_removed", F.lit(True))
    rows = bronze.join(gone, COORDS, "left")
    duplicate = F.col("_duplicate")
    quarantined = ~duplicate & F.col("_removed").isNotNull()
    from_bronze = rows.groupBy("dataset").agg(
        F.count(F.lit(1)).alias("bronze_rows"),
        F.count_if(duplicate).alias("duplicate_rows"),
        F.count_if(quarantined).alias("quarantined_rows"),
        F.sum("_amount").alias("bronze_amount"),
        F.sum(F.when(duplicate | quarantined, F.col("_amount"))).alias("quarantined_amount"),
    )
    from_merge = accepted.groupBy("dataset").agg(
        F.count(F.lit(1)).alias("accepted_rows"), F.sum("_amount").alias("accepted_amount")
    )
    names = small_frame(spark, list(datasets.items()), "dataset string, _has_amount boolean")
    joined = names.join(from_bronze, "dataset", "left").join(from_merge, "dataset", "left")

    def money(column: str) -> Column:
        return F.when(F.col("_has_amount"), F.coalesce(F.col(column), F.lit(0))).cast(AMOUNT)

    return joined.select(
        "dataset",
        *[F.coalesce(F.col(c), F.lit(0)).cast("long").alias(c) for c in COUNT_COLUMNS],
        *[money(c).alias(c) for c in AMOUNT_COLUMNS],
    )


def with_totals(counts: DataFrame) -> DataFrame:
    """Add what the `silver.reconciliation` suite compares with bronze: `accounted_rows`
    (accepted + duplicates + quarantined) and `accounted_amount` (accepted + quarantined)."""
    return counts.withColumns(
        {
            "accounted_rows": F.col("accepted_rows")
            + F.col("duplicate_rows")
            + F.col("quarantined_rows"),
            "accounted_amount": (F.col("accepted_amount") + F.col("quarantined_amount")).cast(
                AMOUNT
            ),
        }
    )


def _mismatch(row) -> str | None:
    accounted = row.accepted_rows + row.duplicate_rows + row.quarantined_rows
    parts = []
    if row.bronze_rows != accounted:
        parts.append(
            f"bronze {row.bronze_rows} rows != accepted {row.accepted_rows} + duplicates "
            f"{row.duplicate_rows} + quarantined {row.quarantined_rows} ({accounted})"
        )
    if row.bronze_amount is not None and (
        row.accepted_amount is None
        or row.quarantined_amount is None
        or row.bronze_amount != row.accepted_amount + row.quarantined_amount
    ):
        parts.append(
            f"bronze amount {row.bronze_amount} != accepted {row.accepted_amount} + "
            f"quarantined {row.quarantined_amount}"
        )
    return f"{row.dataset}: " + "; ".join(parts) if parts else None


def reconcile(ctx: JobContext, counts: DataFrame) -> DataFrame:
    """Judge `reconciliation_counts` with the `silver.reconciliation` suite; record the verdict
    in ops.dq_results and raise GateFailed (naming each dataset off) before anything is
    published. Returns the rows for `write_reconciliation` (computed once, held locally)."""
    collected = counts.collect()
    frame = small_frame(
        ctx.spark,
        [
            (r.dataset, ctx.run_date, ctx.run_id, *(r[c] for c in COUNT_COLUMNS + AMOUNT_COLUMNS))
            for r in collected
        ],
        RECONCILIATION_DDL,
    )
    outcome = run_gate(
        with_totals(frame),
        "silver.reconciliation",
        key_columns=["dataset", "delivery_date"],
        run_id=ctx.run_id,
        run_date=ctx.run_date,
    )
    with outcome:
        record_results(ctx.tables, outcome)
        if not outcome.passed:
            off = [m for m in map(_mismatch, collected) if m]
            raise GateFailed(
                "silver does not reconcile with bronze for "
                f"{ctx.run_date}; nothing was published\n"
                + "\n".join(f"  {m}" for m in off)
                + "\n"
                + failure_message(outcome)
            )
    return frame


def write_reconciliation(ctx: JobContext, frame: DataFrame) -> int:
    """Replace this delivery date's rows of the reconciled datasets in silver.reconciliation."""
    datasets = sorted({r.dataset for r in frame.select("dataset").collect()})
    return ctx.tables.replace_where(
        in_few_files(frame),
        "silver",
        RECONCILIATION,
        f"delivery_date = '{ctx.run_date.isoformat()}' AND dataset IN "
        f"({', '.join(repr(d) for d in datasets)})",
        ["delivery_date"],
    )


def reconciliation_report(frame: DataFrame) -> dict[str, dict[str, int | str | None]]:
    """The reconciliation as a plain dict per dataset, for the job result."""
    report: dict[str, dict[str, int | str | None]] = {}
    for r in frame.collect():
        entry: dict[str, int | str | None] = {c: int(r[c]) for c in COUNT_COLUMNS}
        for c in AMOUNT_COLUMNS:
            entry[c] = None if r[c] is None else str(r[c])
        report[r.dataset] = entry
    return report


def reconcile_snapshots(
    ctx: JobContext,
    parts: Sequence[tuple[str, DataFrame, DataFrame | None, DataFrame, DataFrame]],
) -> DataFrame:
    """`reconcile` for datasets without an amount. Each part: (dataset, its delivered bronze
    rows, the coordinates of lines superseded within the delivery or None, the rows handed to
    the MERGE, the gate's quarantine rows)."""
    return reconcile(
        ctx,
        reconciliation_counts(
            reduce(
                DataFrame.unionByName,
                [bronze_side(b, d, superseded=s) for d, b, s, _, _ in parts],
            ),
            reduce(DataFrame.unionByName, [accepted_side(a, d) for d, _, _, a, _ in parts]),
            reduce(DataFrame.unionByName, [quarantine_coords(q) for *_, q in parts]),
            {d: False for d, *_ in parts},
        ),
    )


def superseded_lines(unique: DataFrame, conformed: DataFrame) -> DataFrame:
    """Coordinates of the delivered lines a snapshot model collapsed: same key as a later line
    of the same delivery (`master.latest_line` and the like keep one row per key)."""
    return unique.select(*COORDS).join(conformed.select(*COORDS), COORDS, "left_anti")


SUPERSEDED_RULE = (
    "one row per key and snapshot: the delivery's newest-dated files, and in them the later line "
    "of the key, win"
)
SUPERSEDED_REASON = (
    "a later line of the same delivery has the same key, or the line is in a file of an earlier "
    "day than the delivery's newest snapshot file"
)


def superseded_records(lines: DataFrame, table: str, ctx: JobContext) -> DataFrame:
    """Quarantine rows for superseded lines (see `superseded_lines`): not published, not lost."""
    return lines.select(
        F.lit(table).alias("table"),
        F.concat_ws(":", "_source_file", F.col("_line_no").cast("string")).alias("record_key"),
        F.lit("superseded_in_delivery").alias("expectation"),
        F.lit(SUPERSEDED_RULE).alias("rule"),
        F.lit(None).cast("string").alias("column"),
        F.lit(None).cast("string").alias("value"),
        F.lit(SUPERSEDED_REASON).alias("reason"),
        F.to_json(F.struct(*COORDS)).alias("record"),
        F.lit(ctx.run_id).alias("run_id"),
        F.lit(ctx.run_date).alias("run_date"),
    )
