"""Daily stock snapshot: typed, valued at cost, and checked against master data.

Why: stock value and availability by location feed replenishment and the balance-sheet view.
The warehouse system now and then reports a negative on-hand quantity (a system error): it is
flagged, never zeroed or dropped, so the error stays visible and value totals reconcile with
the source. Unknown SKUs and locations are flagged the same way; judging them (quarantine,
unmapped rate) is the quality gate's job.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse.silver import normalise as n
from lakehouse.silver.master import LINEAGE, iso_date, latest_line

INVENTORY_KEY = ["snapshot_date", "location_code", "sku_id"]
INVENTORY_COLUMNS = [
    *INVENTORY_KEY,
    "location_type",
    "on_hand_qty",
    "reserved_qty",
    "in_transit_qty",
    "unit_cost",
    "value_at_cost",
    "negative_on_hand",
    "sku_known",
    "location_known",
    "_delivery_date",
    *LINEAGE,
]
WAREHOUSE = "WAREHOUSE"
STORE = "STORE"
WAREHOUSE_CODE = r"^WH-[0-9A-Z]+$"


def _ids(df: DataFrame, candidates: tuple[str, ...], alias: str) -> DataFrame:
    """Distinct non-null codes of the first of `candidates` that `df` has, as column `alias`."""
    col = next((c for c in candidates if c in df.columns), None)
    if col is None:
        raise ValueError(f"expected one of the columns {', '.join(candidates)}; got {df.columns}")
    return df.select(n.code(F.col(col)).alias(alias)).where(F.col(alias).isNotNull()).distinct()


def _flag(col: str) -> Column:
    return F.col(col).isNotNull()


def inventory_daily(
    bronze_inventory: DataFrame, known_skus: DataFrame, known_locations: DataFrame
) -> DataFrame:
    """Bronze inventory rows → one typed row per (snapshot_date, location_code, sku_id).

    `known_skus` has `sku_id`, `known_locations` `store_code` (or `location_code`): every
    product and store the master's history holds, a delisted product or a closed store too
    (their last stock is still theirs). A WAREHOUSE row is at a known location when its code
    is a warehouse code (WH-xx; warehouses are not in the stores master); a STORE row when the
    store exists. value_at_cost = on_hand_qty x unit_cost, negative when on-hand is. A key
    delivered twice (duplicate line, a later corrected file) keeps the later line.
    """
    location_type = n.code(F.col("location_type"))
    location = n.code(F.col("location_code"))
    on_hand = n.quantity(F.col("on_hand_qty"))
    unit_cost = n.yuan(F.col("unit_cost"))
    typed = bronze_inventory.select(
        iso_date(F.col("snapshot_date")).alias("snapshot_date"),
        location.alias("location_code"),
        n.code(F.col("sku_id")).alias("sku_id"),
        location_type.alias("location_type"),
        on_hand.alias("on_hand_qty"),
        n.quantity(F.col("reserved_qty")).alias("reserved_qty"),
        n.quantity(F.col("in_transit_qty")).alias("in_transit_qty"),
        unit_cost.alias("unit_cost"),
        (on_hand * unit_cost).try_cast(n.MONEY).alias("value_at_cost"),
        F.coalesce(on_hand < 0, F.lit(False)).alias("negative_on_hand"),
        "_delivery_date",
        *LINEAGE,
    )
    one = latest_line(typed, INVENTORY_KEY)
    skus = _ids(known_skus, ("sku_id",), "_known_sku")
    stores = _ids(known_locations, ("store_code", "location_code"), "_known_store")
    checked = one.join(F.broadcast(skus), F.col("sku_id") == F.col("_known_sku"), "left").join(
        F.broadcast(stores), F.col("location_code") == F.col("_known_store"), "left"
    )
    warehouse = (F.col("location_type") == WAREHOUSE) & F.col("location_code").rlike(WAREHOUSE_CODE)
    store = (F.col("location_type") == STORE) & _flag("_known_store")
    return checked.withColumns(
        {
            "sku_known": _flag("_known_sku"),
            "location_known": F.coalesce(warehouse | store, F.lit(False)),
        }
    ).select(*INVENTORY_COLUMNS)
