"""Master data: products, stores and the SKU map, typed from the daily full snapshots.

Why: every fact joins master data (a sale needs its product's cost, its store's region), and
master data changes over time. These functions turn one day's bronze snapshot into typed rows,
one per key, ready for `scd2.apply_scd2` (products and stores keep history, because margin
needs the unit cost valid at the time of sale). The SKU map translates the platforms' own SKU
codes into the internal sku_id; a code that maps to nothing, or to two products at once, is
flagged and reported, never guessed.

Nothing is dropped here: a row with an unreadable key passes through with a null key so the
quality gate can quarantine it with its reason; only exact repeats of a key within one
snapshot collapse (the later line wins, deterministically).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType, StringType

from lakehouse.config import PLATFORMS, SilverSettings
from lakehouse.silver import normalise as n
from lakehouse.spark import small_frame
from lakehouse.tables import file_order

LINEAGE = ["_record_hash", "_source_file", "_line_no"]
AREA = DecimalType(10, 2)

PRODUCT_KEY = ["sku_id"]
PRODUCT_TRACKED = [
    "barcode",
    "sku_name",
    "brand",
    "category_l1",
    "category_l2",
    "category_l3",
    "list_price",
    "unit_cost",
    "launch_date",
    "status",
]
PRODUCT_COLUMNS = [*PRODUCT_KEY, *PRODUCT_TRACKED, "snapshot_date", *LINEAGE]
# Beside the snapshot until its gate (`with_checks=True`): null where a value was written but
# cannot be read (`normalise.readable`); the gate's `*_readable` rules quarantine such a row,
# and the job drops these columns before the SCD2 step.
PRODUCT_READABLE = ["_list_price_read", "_launch_date_read"]

STORE_KEY = ["store_code"]
STORE_TRACKED = [
    "store_name",
    "store_type",
    "province",
    "city",
    "region",
    "floor_area_sqm",
    "staff_count",
    "open_date",
    "close_date",
    "store_phone",
]
# store_phone_raw rides along untracked: a new spelling of the same number is no new version.
STORE_COLUMNS = [*STORE_KEY, *STORE_TRACKED, "store_phone_raw", "snapshot_date", *LINEAGE]
STORE_READABLE = ["_floor_area_read", "_staff_count_read", "_open_date_read", "_close_date_read"]
ONLINE = "ONLINE"

SKU_MAP_COLUMNS = [
    "platform",
    "platform_sku_code",
    "sku_id",
    "sku_known",
    "sku_conflict",
    "snapshot_date",
    *LINEAGE,
]


def iso_date(col: Column) -> Column:
    """DateType from `YYYY-MM-DD` (or `YYYY/M/D`, `YYYYMMDD`: `normalise.calendar_date`),
    surrounding blanks ignored; null otherwise.

    Why: master files write plain ISO dates; an empty or impossible one (2026-02-30) is null,
    never an ANSI error.
    """
    return n.calendar_date(col)


def latest_line(df: DataFrame, key: Sequence[str], order: Sequence[Column] = ()) -> DataFrame:
    """One row per `key`; the later delivery, file and line wins (after `order`, if given).

    Why: a snapshot may repeat a key (an exact duplicate line, a corrected file in the same
    delivery); the pick must be deterministic. Rows with a null key part are not a key's and
    all pass through, for the quality gate to quarantine.
    """
    has_key = F.lit(True)
    for k in key:
        has_key = has_key & F.col(k).isNotNull()
    ranking = [
        *order,
        F.col("_delivery_date").desc(),
        file_order().desc(),
        F.col("_line_no").desc(),
    ]
    w = Window.partitionBy(*key).orderBy(*ranking)
    ranked = df.withColumn("_has_key", has_key).withColumn("_rank", F.row_number().over(w))
    return ranked.where(~F.col("_has_key") | (F.col("_rank") == 1)).drop("_has_key", "_rank")


def newest_snapshot_files(bronze: DataFrame, newest_named: dt.date | None = None) -> DataFrame:
    """The rows of a delivery's newest-dated files (`_file_date`, from the file name).

    Why: a full snapshot replaces the one before it. A corrected file of an earlier day
    (`stores_<d-1>_2.csv` arriving beside `stores_<d>.csv`) describes that earlier day, not
    this one: taken into today's snapshot, it would reopen what today's file no longer lists.
    Its lines are not published (the history of an earlier day is not rewritten; see
    `scd2.apply_scd2`) and are quarantined as superseded. Rows of a file without a date are kept.

    `newest_named` is the newest date a file of the delivery names, rows or not: a header-only
    `stores_<d>.csv` has no row to say it came, and without it the correction of d-1 would be
    taken for the day's whole snapshot (every store it does not list closed).
    """
    newest = F.max("_file_date").over(Window.partitionBy("_delivery_date"))
    if newest_named is not None:
        newest = F.greatest(newest, F.lit(newest_named))
    return (
        bronze.withColumn("_newest_file_date", newest)
        .where(F.col("_file_date").isNull() | (F.col("_file_date") == F.col("_newest_file_date")))
        .drop("_newest_file_date")
    )


def _upper(col: Column) -> Column:
    """An enumeration value: trimmed, upper case, null when blank."""
    return F.upper(n.non_blank(col))


# --- products ---------------------------------------------------------------------------------


def products_snapshot(bronze_products: DataFrame, with_checks: bool = False) -> DataFrame:
    """One day's products file → one typed row per (snapshot_date, sku_id).

    The snapshot date is the delivery date (`dt=`): a full snapshot tells the state on the day
    it arrived. Prices and costs are decimal yuan; history is `scd2.apply_scd2`'s job with
    PRODUCT_KEY / PRODUCT_TRACKED. `with_checks` adds PRODUCT_READABLE for the gate.
    """
    typed = bronze_products.select(
        n.code(F.col("sku_id")).alias("sku_id"),
        n.code(F.col("barcode")).alias("barcode"),
        n.non_blank(F.col("sku_name")).alias("sku_name"),
        n.non_blank(F.col("brand")).alias("brand"),
        n.non_blank(F.col("category_l1")).alias("category_l1"),
        n.non_blank(F.col("category_l2")).alias("category_l2"),
        n.non_blank(F.col("category_l3")).alias("category_l3"),
        n.yuan(F.col("list_price")).alias("list_price"),
        n.yuan(F.col("unit_cost")).alias("unit_cost"),
        iso_date(F.col("launch_date")).alias("launch_date"),
        _upper(F.col("status")).alias("status"),
        F.col("_delivery_date").alias("snapshot_date"),
        "_delivery_date",
        *LINEAGE,
        n.readable(F.col("list_price"), n.yuan(F.col("list_price"))).alias("_list_price_read"),
        n.readable(F.col("launch_date"), iso_date(F.col("launch_date"))).alias("_launch_date_read"),
    )
    columns = [*PRODUCT_COLUMNS, *(PRODUCT_READABLE if with_checks else [])]
    return latest_line(typed, ["snapshot_date", *PRODUCT_KEY]).select(*columns)


# --- stores -----------------------------------------------------------------------------------


def stores_snapshot(bronze_stores: DataFrame, with_checks: bool = False) -> DataFrame:
    """One day's stores file → one typed row per (snapshot_date, store_code).

    `store_phone` is the normalised mobile (null for a landline or garbage, which
    `store_phone_raw` keeps as delivered): One ID needs it to recognise the store's own number
    keyed in for walk-in customers. `with_checks` adds STORE_READABLE for the gate: an
    unreadable close date read as none would keep a closed store trading.
    """
    parsed = {
        "floor_area_sqm": n.non_blank(F.col("floor_area_sqm")).try_cast(AREA),
        "staff_count": n.quantity(F.col("staff_count")),
        "open_date": iso_date(F.col("open_date")),
        "close_date": iso_date(F.col("close_date")),
    }
    typed = bronze_stores.select(
        n.code(F.col("store_code")).alias("store_code"),
        n.non_blank(F.col("store_name")).alias("store_name"),
        n.code(F.col("store_type")).alias("store_type"),
        n.non_blank(F.col("province")).alias("province"),
        n.non_blank(F.col("city")).alias("city"),
        n.non_blank(F.col("region")).alias("region"),
        *[value.alias(column) for column, value in parsed.items()],
        n.phone(F.col("store_phone")).alias("store_phone"),
        n.non_blank(F.col("store_phone")).alias("store_phone_raw"),
        F.col("_delivery_date").alias("snapshot_date"),
        "_delivery_date",
        *LINEAGE,
        *[
            n.readable(F.col(column), value).alias(check)
            for check, (column, value) in zip(STORE_READABLE, parsed.items(), strict=True)
        ],
    )
    columns = [*STORE_COLUMNS, *(STORE_READABLE if with_checks else [])]
    return latest_line(typed, ["snapshot_date", *STORE_KEY]).select(*columns)


def online_stores(
    settings_silver: SilverSettings,
    shop_names: DataFrame | Sequence[str],
    snapshot_date: dt.date | None = None,
) -> DataFrame:
    """The virtual stores of the online shops, in the stores' shape (STORE_COLUMNS).

    Why: online orders carry a store_code too (orders.py builds it), so sales by store and
    the location checks can treat every channel alike. Tmall has one store per shop name
    (`TMALL:<shop>`, shop names trimmed as orders.py does); JD and the own mall have one each
    (`JD:POP`, `MALL:OWN` with the configured defaults). `shop_names` is a list of Tmall shop
    names or a DataFrame with a `shop_name` column (e.g. silver orders). Area, staff, address
    and phone are null; store_type is ONLINE.
    """
    prefix = settings_silver.online_store_prefix
    defaults = settings_silver.online_default_shop
    if isinstance(shop_names, DataFrame):
        spark = shop_names.sparkSession
        tmall = shop_names.select(n.non_blank(F.col("shop_name")).alias("shop"))
    else:
        spark = SparkSession.active()
        tmall = small_frame(spark, [(s,) for s in shop_names], "shop string").select(
            n.non_blank(F.col("shop")).alias("shop")
        )
    tmall = tmall.where(F.col("shop").isNotNull()).distinct()
    tmall = tmall.select(
        F.concat(F.lit(prefix["TMALL"]), F.col("shop")).alias("store_code"), "shop"
    )
    others = small_frame(
        spark,
        [(prefix[p] + defaults[p], defaults[p]) for p in ("JD", "MALL")],
        "store_code string, shop string",
    )
    typed = {
        "store_name": F.col("shop"),
        "store_type": F.lit(ONLINE),
        "floor_area_sqm": F.lit(None).cast(AREA),
        "staff_count": F.lit(None).cast("int"),
        "open_date": F.lit(None).cast("date"),
        "close_date": F.lit(None).cast("date"),
        "snapshot_date": F.lit(snapshot_date).cast("date"),
        "_line_no": F.lit(None).cast("int"),
    }
    text = [c for c in STORE_COLUMNS if c not in typed and c != "store_code"]
    return (
        tmall.unionByName(others)
        .withColumns({**typed, **{c: F.lit(None).cast(StringType()) for c in text}})
        .select(*STORE_COLUMNS)
    )


def keys_named_in(rejected_lines: DataFrame, key: str) -> DataFrame:
    """The values (as `key`, normalised with `normalise.code`) of every field of the raw lines
    bronze could not read (`raw_text` of bronze.quarantine: undecodable bytes, a wrong number
    of fields).

    Why: such a line never reaches the snapshot, yet it is no evidence that its record is gone;
    the SCD2 step keeps an open record that one of these lines names (`keep_open`). Fields are
    split on commas without a CSV reader (the line is broken): any field equal to an open key
    keeps that key open, and the others match nothing.
    """
    field = F.explode(F.split(F.coalesce("raw_text", F.lit("")), ","))
    unquoted = F.regexp_replace(F.col("_field"), r'^\s*"|"\s*$', "")
    return (
        rejected_lines.select(field.alias("_field"))
        .select(n.code(unquoted).alias(key))
        .where(F.col(key).isNotNull())
        .distinct()
    )


# --- SKU map ----------------------------------------------------------------------------------


def _known(products_current: DataFrame, col: str = "sku_id") -> DataFrame:
    """The distinct non-null values of `col` in the products, with a True marker column."""
    return (
        products_current.select(F.col(col).alias("_known_id"))
        .where(F.col("_known_id").isNotNull())
        .distinct()
        .withColumn("_is_known", F.lit(True))
    )


def _mapping_rows(bronze_sku_mapping: DataFrame) -> DataFrame:
    """Typed mapping rows plus, per (snapshot_date, platform, code), the distinct sku_ids that
    the newest file mapping the code gives it.

    A corrected file (`_2`) replaces its original: a code it maps differently is corrected,
    not in conflict. Within one file two sku_ids for a code are a conflict."""
    typed = bronze_sku_mapping.select(
        n.code(F.col("platform")).alias("platform"),
        n.code(F.col("platform_sku_code")).alias("platform_sku_code"),
        n.code(F.col("sku_id")).alias("sku_id"),
        F.col("_delivery_date").alias("snapshot_date"),
        "_delivery_date",
        *LINEAGE,
    )
    code = Window.partitionBy("snapshot_date", "platform", "platform_sku_code")
    newest = file_order()
    in_newest_file = typed.withColumn("_file", newest).withColumn(
        "_newest_file", F.max("_file").over(code)
    )
    sku_ids = F.collect_set(F.when(F.col("_file") == F.col("_newest_file"), F.col("sku_id")))
    return in_newest_file.withColumn("_candidates", F.array_sort(sku_ids.over(code))).drop(
        "_file", "_newest_file"
    )


def sku_map(bronze_sku_mapping: DataFrame, products: DataFrame) -> DataFrame:
    """One day's sku_mapping file → one row per (snapshot_date, platform, platform_sku_code).

    Codes are normalised with `normalise.code` (merchant codes carry stray spaces and lower
    case). A code mapped to two different sku_ids in one snapshot is not resolved by guessing:
    its sku_id is null and `sku_conflict` true (see `sku_map_conflicts`). `sku_known` says
    whether the sku_id is a product of `products` (a DataFrame with `sku_id`: silver.master
    passes the whole history, so a product since dropped from the snapshots is known). Rows
    with a null platform or code pass through for the gate; platform values outside
    TMALL/JD/MALL/POS are kept as delivered (upper case) for the gate to judge.
    """
    rows = _mapping_rows(bronze_sku_mapping)
    # The newest file first (a correction replaces its original), then within it a line that
    # maps the code over one that leaves it blank.
    prefer_mapped = [file_order().desc(), F.col("sku_id").isNull().asc()]
    one = latest_line(rows, ["snapshot_date", "platform", "platform_sku_code"], prefer_mapped)
    conflict = F.size("_candidates") > 1
    resolved = one.withColumns(
        {"sku_conflict": conflict, "sku_id": F.when(~conflict, F.col("sku_id"))}
    )
    known = _known(products)
    return (
        resolved.join(F.broadcast(known), F.col("sku_id") == F.col("_known_id"), "left")
        .withColumn("sku_known", F.coalesce(F.col("_is_known"), F.lit(False)))
        .select(*SKU_MAP_COLUMNS)
    )


def sku_map_conflicts(bronze_sku_mapping: DataFrame, products: DataFrame) -> DataFrame:
    """The mapping problems to report: one row per (snapshot_date, platform, code, reason).

    reason 'conflicting_sku_ids': the code maps to two or more sku_ids in one snapshot
    (`sku_ids` lists them); 'unknown_sku': it maps to a single sku_id that is no product of
    `products` (or to none). Both make the code unmapped in `sku_map`.
    """
    rows = _mapping_rows(bronze_sku_mapping)
    codes = latest_line(rows, ["snapshot_date", "platform", "platform_sku_code"]).where(
        F.col("platform").isNotNull() & F.col("platform_sku_code").isNotNull()
    )
    known = _known(products)
    single = F.get(F.col("_candidates"), 0)
    checked = codes.join(F.broadcast(known), single == F.col("_known_id"), "left")
    reason = F.when(F.size("_candidates") > 1, F.lit("conflicting_sku_ids")).when(
        F.col("_is_known").isNull(), F.lit("unknown_sku")
    )
    return (
        checked.withColumn("reason", reason)
        .where(F.col("reason").isNotNull())
        .select(
            "snapshot_date",
            "platform",
            "platform_sku_code",
            F.col("_candidates").alias("sku_ids"),
            "reason",
        )
    )


# resolve_sku's routes 1-3 find a current product, 4-6 one since dropped from the snapshots.
CURRENT_ROUTES = 3


def resolve_sku(
    lines: DataFrame,
    sku_map: DataFrame,
    platform: str,
    code_col: str,
    products_current: DataFrame,
    barcode: bool = False,
    *,
    accept_internal_ids: bool = False,
    products_past: DataFrame | None = None,
    with_route: bool = False,
) -> DataFrame:
    """`lines` plus `sku_id` (the internal product) and `sku_mapped` (it was found).

    The code in `code_col` is normalised with `normalise.code` and looked up, first hit wins:
    1. with `barcode=True` (POS), products_current.barcode (the contract's route for POS);
       a barcode that two products share resolves to neither;
    2. the SKU map's rows for `platform` (its latest snapshot_date, if it holds several);
    3. with `accept_internal_ids`, the code itself when it is a product sku_id (mall items,
       JD outerSkuId already carry the internal id).
    4. `products_past` (the last versions of products no longer in the snapshots), when given,
       by the same routes: their barcodes (with `barcode=True`; unique among them, and carried
       by no current product), then the map rows naming them, then (with
       `accept_internal_ids`) their sku_ids. Why: the last of a delisted product's stock still
       sells, and a code that matches nothing current is that product, not an unknown one; a
       current product always wins (a barcode handed on to a new SKU goes to it, a current
       product's own id beats a map row naming a delisted one).
    Only known products count: a mapping that points at a sku_id missing from
    `products_current` (and `products_past`) leaves the line unmapped, so `sku_mapped` =
    `sku_id IS NOT NULL` = "the line has a product". Line count is preserved; an existing sku_id
    column is replaced. With `with_route`, `sku_route` says which route found it: 1-3 as
    numbered above (up to CURRENT_ROUTES, a current product), 4-6 the past products' barcode,
    map row and id; null when none did. A caller with a route of its own (JD's outerSkuId)
    places it between the current and the past ones.
    """
    platform = platform.strip().upper()
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}; known: {', '.join(PLATFORMS)}")
    known_now = _known(products_current)
    # Products no longer in the snapshots, and only those: a current product is never "past".
    known_past = (
        None
        if products_past is None
        else _known(products_past).join(known_now.select("_known_id"), "_known_id", "left_anti")
    )

    def by_barcode(products: DataFrame, prio: int) -> DataFrame:
        """Codes that exactly one of `products` carries as its barcode."""
        return (
            products.select(n.code(F.col("barcode")).alias("_code"), "sku_id")
            .where(F.col("_code").isNotNull() & F.col("sku_id").isNotNull())
            .groupBy("_code")
            .agg(F.collect_set("sku_id").alias("_ids"))
            .where(F.size("_ids") == 1)
            .select("_code", F.get(F.col("_ids"), 0).alias("_sku"), F.lit(prio).alias("_prio"))
        )

    def own_ids(known: DataFrame, prio: int) -> DataFrame:
        return known.select(
            F.col("_known_id").alias("_code"),
            F.col("_known_id").alias("_sku"),
            F.lit(prio).alias("_prio"),
        )

    mapping = sku_map.where(F.col("platform") == platform)
    if "snapshot_date" in sku_map.columns:
        newest = Window.partitionBy("platform_sku_code").orderBy(F.col("snapshot_date").desc())
        mapping = mapping.withColumn("_r", F.row_number().over(newest)).where("_r = 1")
    mapping = mapping.select(
        F.col("platform_sku_code").alias("_code"), F.col("sku_id").alias("_sku")
    )

    def mapped_to(known: DataFrame, prio: int) -> DataFrame:
        """The map rows naming one of `known` (a row naming no known product maps nothing)."""
        return mapping.join(
            F.broadcast(known), F.col("_sku") == F.col("_known_id"), "left_semi"
        ).withColumn("_prio", F.lit(prio))

    # Every current route first, then the past products' (a current product always wins).
    candidates: list[DataFrame] = []
    if barcode:
        candidates.append(by_barcode(products_current, 1))
    candidates.append(mapped_to(known_now, 2))
    if accept_internal_ids:
        candidates.append(own_ids(known_now, 3))
    if known_past is not None:
        if barcode:
            # A barcode some current product carries (even one it shares) is not a past one's.
            current_codes = products_current.select(n.code(F.col("barcode")).alias("_code"))
            past_codes = by_barcode(
                products_past.join(known_past, F.col("sku_id") == F.col("_known_id"), "left_semi"),
                4,
            )
            candidates.append(past_codes.join(current_codes, "_code", "left_anti"))
        candidates.append(mapped_to(known_past, 5))
        if accept_internal_ids:
            candidates.append(own_ids(known_past, 6))
    lookup = reduce(DataFrame.unionByName, candidates)
    first_hit = Window.partitionBy("_code").orderBy("_prio")
    lookup = (
        lookup.withColumn("_r", F.row_number().over(first_hit))
        .where("_r = 1")
        .select("_code", "_sku", "_prio")
    )
    kept = [c for c in lines.columns if c not in ("sku_id", "sku_mapped")]
    out = lines.withColumn("_code", n.code(F.col(code_col))).join(
        F.broadcast(lookup), "_code", "left"
    )
    route = [F.col("_prio").alias("sku_route")] if with_route else []
    return out.select(
        *kept,
        F.col("_sku").alias("sku_id"),
        F.col("_sku").isNotNull().alias("sku_mapped"),
        *route,
    )
