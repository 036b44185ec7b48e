"""product_rankings on a hand-made month: ranks, ending stock, sell-through at its edges."""

from __future__ import annotations

from datetime import timedelta

from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakehouse.gold.marts.product import DAILY_COLUMNS, product_rankings
from lakehouse.gold.marts.settings import MartSettings
from tests.gold.marts.rows import PRODUCTS, D, product, yuan

DAILY = (
    "business_date date, platform string, channel string, sku_id string, orders long, "
    "units long, net_sales decimal(18,2), cogs decimal(18,2), gross_profit decimal(18,2), "
    "costed_net_sales decimal(18,2)"
)
STOCK = (
    "snapshot_date date, location_code string, location_type string, sku_id string, "
    "on_hand_qty int, value_at_cost decimal(18,2)"
)
RUN = D + timedelta(days=9)  # 2026-03-10: the running month is ranked as of that day


def _sold(sku: str, units: int, day=D):
    net = yuan(10 * units)
    return (day, "POS", "STORE", sku, 1, units, net, yuan(6 * units), yuan(4 * units), net)


def _at_store_s1(daily):
    """inventory.daily_demand's shape, every sale at store S1."""
    return daily.select(
        "business_date",
        F.lit("S1").alias("demand_key"),
        "sku_id",
        "units",
        (F.col("units") > 0).alias("sold"),
    )


def test_sell_through_ranks_and_ending_stock_of_the_stores(spark):
    """Before: SKU A (10 sold, the store's stock -3, a system error) sold through 10 / 7 =
    1.43, and C (net returns, -2 units) -2 / 3 = -0.67."""
    daily = spark.createDataFrame(
        [
            _sold("A", 4),
            _sold("A", 6, D + timedelta(days=5)),
            _sold("B", 6),
            _sold("C", 3),
            _sold("C", -5, D + timedelta(days=2)),
            _sold("A", 99, D + timedelta(days=12)),  # after the run date: not in the month yet
        ],
        DAILY,
    ).select(*DAILY_COLUMNS)
    products = spark.createDataFrame([product(sku) for sku in "ABCD"], PRODUCTS)
    stock = spark.createDataFrame(
        [
            (RUN - timedelta(days=1), "S1", "STORE", "A", 50, yuan(300)),  # not the last day
            (RUN, "S1", "STORE", "A", -3, yuan(-18)),
            (RUN, "S1", "STORE", "B", 2, yuan(12)),
            (RUN, "S1", "STORE", "C", 5, yuan(30)),
            (RUN, "S1", "STORE", "D", 4, yuan(24)),
            (RUN, "WH-1", "WAREHOUSE", "A", 7, yuan(42)),  # ONLINE's, and ALL's
        ],
        STOCK,
    )
    demand = _at_store_s1(daily)
    got = product_rankings(daily, products, stock, demand, [D], RUN, MartSettings())
    got = got.where("channel IN ('STORE', 'ALL')").select(
        "channel", "sku_id", "as_of", "units", "rank_units", "ending_on_hand", "sell_through"
    )
    expected = spark.createDataFrame(
        [
            ("STORE", "A", RUN, 10, 1, -3, 1.0),
            ("STORE", "B", RUN, 6, 2, 2, 0.75),
            ("STORE", "C", RUN, -2, 4, 5, None),
            ("STORE", "D", RUN, 0, 3, 4, 0.0),  # stock and no sale: ranked, sold none of it
            # ALL adds the warehouse: A ends with 4 in all, 10 / 14 sold through.
            ("ALL", "A", RUN, 10, 1, 4, 10 / 14),
            ("ALL", "B", RUN, 6, 2, 2, 0.75),
            ("ALL", "C", RUN, -2, 4, 5, None),
            ("ALL", "D", RUN, 0, 3, 4, 0.0),
        ],
        "channel string, sku_id string, as_of date, units long, rank_units int, "
        "ending_on_hand long, sell_through double",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_average_stock_counts_a_snapshot_without_the_sku_as_none_held(spark):
    """Two snapshots this month: A is held on both (30 each), B, new, only on the second (60).
    Before: B's average was 60 (the mean of the dates it had rows on), twice A's, though it
    was held for half the time; its turnover days came out doubled."""
    daily = spark.createDataFrame([_sold("A", 1), _sold("B", 1)], DAILY).select(*DAILY_COLUMNS)
    products = spark.createDataFrame([product(sku) for sku in "AB"], PRODUCTS)
    stock = spark.createDataFrame(
        [
            (D, "S1", "STORE", "A", 3, yuan(30)),
            (D + timedelta(days=1), "S1", "STORE", "A", 3, yuan(30)),
            (D + timedelta(days=1), "S1", "STORE", "B", 6, yuan(60)),
        ],
        STOCK,
    )
    demand = _at_store_s1(daily)
    got = product_rankings(daily, products, stock, demand, [D], RUN, MartSettings())
    assert sorted(
        (r.sku_id, r.avg_inventory_cost) for r in got.where("channel = 'STORE'").collect()
    ) == [("A", yuan(30)), ("B", yuan(30))]


def test_a_sku_dropped_from_the_snapshots_ranks_in_its_last_category(spark):
    """B, sold this month, left the snapshots before the run date: it ranks beside A in C1.
    Before: it ranked alone in a null category."""
    daily = spark.createDataFrame([_sold("A", 4), _sold("B", 6)], DAILY).select(*DAILY_COLUMNS)
    products = spark.createDataFrame(
        [product("A", cat="C1"), product("B", cat="C1", end=D + timedelta(days=3))], PRODUCTS
    )
    stock = spark.createDataFrame([], STOCK)
    got = product_rankings(
        daily, products, stock, _at_store_s1(daily), [D], RUN, MartSettings()
    ).where("channel = 'STORE'")
    assert sorted((r.sku_id, r.category, r.rank_units) for r in got.collect()) == [
        ("A", "C1", 2),
        ("B", "C1", 1),
    ]
