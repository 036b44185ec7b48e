from datetime import date, timedelta

from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakehouse.gold.marts.common import sold_lines
from lakehouse.gold.marts.store import store_daily, store_monthly
from tests.gold.marts.rows import D, frames, line, order, product, store, yuan

D2 = D + timedelta(days=1)


def _inputs(spark):
    orders = [
        order("POS:S1:1", store="S1", net=100),  # member X
        order("POS:S1:2", store="S1", net=50, day=D2),  # member X again, next day
        # returns exceeding sales on D2: a return ticket of 150 (paid 0)
        order("POS:S1:3", store="S1", net=-150, paid=0, refunded=150, day=D2, status="REFUNDED"),
        order("POS:S2:1", store="S2", net=80),  # zero floor area and staff; anonymous
        order("POS:S3:1", store="S3", net=30),  # closes on D2; buyer Y
    ]
    lines = [
        line("POS:S1:1", 1, qty=2, amount=100),
        line("POS:S1:2", 1, qty=1, amount=50),
        line("POS:S1:3", 1, qty=-3, amount=-150, refunded_qty=3, refunded=150),
        line("POS:S2:1", 1, qty=1, amount=80),
        line("POS:S3:1", 1, sku="UNKNOWN", qty=1, amount=30),
    ]
    stores = [
        store("S1"),
        store("S2", area=0, staff=0),
        store("S3", closed=D2),
        store("S4"),  # open, sells nothing
    ]
    o, ln, p, s = frames(spark, orders, lines, [product(cost=30)], stores)
    buyers = spark.createDataFrame(
        [
            ("POS:S1:1", "X", True),
            ("POS:S1:2", "X", True),
            ("POS:S1:3", None, False),
            ("POS:S2:1", None, False),
            ("POS:S3:1", "Y", False),
        ],
        "order_key string, one_id string, is_member boolean",
    )
    return o, buyers, sold_lines(o, ln, p), s


COLS = [
    "business_date",
    "store_code",
    "is_open",
    "net_sales",
    "paid_orders",
    "units",
    "avg_order_value",
    "gross_profit",
    "margin_rate",
    "returns_amount",
    "returned_units",
    "member_sales_share",
    "sales_per_sqm",
    "sales_per_staff",
]
SCHEMA = (
    "business_date date, store_code string, is_open boolean, net_sales decimal(28,2), "
    "paid_orders long, units long, avg_order_value decimal(18,2), "
    "gross_profit decimal(28,2), margin_rate double, returns_amount decimal(28,2), "
    "returned_units long, member_sales_share double, sales_per_sqm decimal(18,2), "
    "sales_per_staff decimal(18,2)"
)


def test_store_daily_and_monthly_edge_cases(spark):
    orders, buyers, lines, stores = _inputs(spark)
    daily = store_daily(orders, buyers, lines, stores, [D, D2]).persist()
    z = yuan(0)
    expected = spark.createDataFrame(
        [
            # S1: 2 units x cost 30 -> gross profit 40 of 100
            (
                D,
                "S1",
                True,
                yuan(100),
                1,
                2,
                yuan(100),
                yuan(40),
                0.4,
                z,
                0,
                1.0,
                yuan(1),
                yuan(25),
            ),
            # S1 D2: returns (150) exceed sales (50): net -100, 3 units back
            (
                D2,
                "S1",
                True,
                yuan(-100),
                1,
                -2,
                yuan(-100),
                yuan(-40),
                0.4,
                yuan(150),
                3,
                -0.5,
                yuan(-1),
                yuan(-25),
            ),
            # S2: zero floor area and staff -> per m2 / per staff null, not an error
            (D, "S2", True, yuan(80), 1, 1, yuan(80), yuan(50), 0.625, z, 0, 0.0, None, None),
            (D2, "S2", True, z, 0, 0, None, z, None, z, 0, None, None, None),
            # S3: unknown SKU -> no cost: its sales stay, gross profit covers costed lines only
            (D, "S3", True, yuan(30), 1, 1, yuan(30), z, None, z, 0, 0.0, yuan(0.30), yuan(7.50)),
            # S3 closed on D2: no row; S4 open without sales: zeros
            (D, "S4", True, z, 0, 0, None, z, None, z, 0, None, z, z),
            (D2, "S4", True, z, 0, 0, None, z, None, z, 0, None, z, z),
        ],
        SCHEMA,
    )
    assert_df_equality(daily.select(*COLS), expected, ignore_row_order=True, ignore_nullable=True)
    assert daily.where("store_code = 'S3'").select("uncosted_net_sales").first()[0] == yuan(30)

    march = D.replace(day=1)
    monthly = store_monthly(daily, None, orders, buyers, stores, [march]).select(
        "store_code",
        "net_sales",
        "identified_buyers",
        "repeat_buyers",
        "repurchase_rate",
        "comparable",
        "net_sales_growth",
        "open_days",
    )
    expected_m = spark.createDataFrame(
        [
            ("S1", yuan(0), 1, 1, 1.0, True, None, 2),
            ("S2", yuan(80), 0, 0, None, True, None, 2),
            ("S3", yuan(30), 1, 0, 0.0, False, None, 1),
            ("S4", yuan(0), 0, 0, None, True, None, 2),
        ],
        "store_code string, net_sales decimal(28,2), identified_buyers long, "
        "repeat_buyers long, repurchase_rate double, comparable boolean, "
        "net_sales_growth double, open_days long",
    )
    assert_df_equality(monthly, expected_m, ignore_row_order=True, ignore_nullable=True)

    # Growth on comparable stores: April against March (previous rows passed in).
    april = date(2026, 4, 1)
    previous = spark.createDataFrame(
        [(march, "S1", yuan(200)), (march, "S3", yuan(30))],
        "month date, store_code string, net_sales decimal(28,2)",
    )
    april_daily = daily.withColumn("business_date", F.add_months("business_date", 1))
    april_orders = orders.withColumn("business_date", F.add_months("business_date", 1))
    grown = store_monthly(april_daily, previous, april_orders, buyers, stores, [april])
    got = {r.store_code: r.net_sales_growth for r in grown.collect()}
    assert got["S1"] == -1.0  # 0 vs 200
    assert got["S3"] is None  # closed in March: not comparable
    daily.unpersist()


def test_a_store_that_drops_out_of_the_snapshot_is_not_open(spark):
    """S5's last version closed on D2 (the stores snapshot of D2 no longer held it). Before,
    with no version its open / close dates were null, which read as open for good: a zero row
    every day after and a comparable store in every later month."""
    gone = ("S5", "S5", "DIRECT", "East", yuan(100), 4, date(2025, 1, 1), None)
    orders, lines, products, stores = frames(
        spark, stores=[store("S1"), (*gone, date(2025, 1, 1), D2, False)]
    )
    buyers = spark.createDataFrame([], "order_key string, one_id string, is_member boolean")
    daily = store_daily(orders, buyers, sold_lines(orders, lines, products), stores, [D, D2])
    got = sorted((r.business_date, r.store_code) for r in daily.where("is_open").collect())
    assert got == [(D, "S1"), (D, "S5"), (D2, "S1")]

    april = date(2026, 4, 1)
    april_daily = daily.withColumn("business_date", F.add_months("business_date", 1))
    monthly = store_monthly(april_daily, None, orders, buyers, stores, [april])
    assert {r.store_code: r.comparable for r in monthly.collect()} == {"S1": True, "S5": False}
    # S5 left the snapshot before the month's end: its month keeps the attributes it traded
    # under (before: every one null, its sales in a null region and type).
    march = store_monthly(daily, None, orders, buyers, stores, [D.replace(day=1)])
    s5 = {r.store_code: r for r in march.collect()}["S5"]
    assert (s5.store_type, s5.region, s5.floor_area_sqm, s5.comparable) == (
        "DIRECT",
        "East",
        yuan(100),
        False,
    )
    assert s5.sales_per_sqm is not None


def test_a_store_s_sales_after_it_left_the_snapshot_keep_its_attributes_in_store_daily(spark):
    """S5's last version closed on D2, and a return ticket of S5 came on D2. Before: that day's
    row had net sales but a null name, type, region and floor area, so the money dropped out of
    every roll-up of store_daily by region or type while the grand total still reconciled."""
    gone = ("S5", "S5", "DIRECT", "East", yuan(100), 4, date(2025, 1, 1), None)
    orders, lines, products, stores = frames(
        spark,
        orders=[order("POS:S5:9", store="S5", net=-20, paid=0, refunded=20, day=D2)],
        lines=[line("POS:S5:9", 1, qty=-1, amount=-20, refunded_qty=1, refunded=20)],
        stores=[(*gone, date(2025, 1, 1), D2, False)],
    )
    buyers = spark.createDataFrame([], "order_key string, one_id string, is_member boolean")
    daily = store_daily(orders, buyers, sold_lines(orders, lines, products), stores, [D2])
    [s5] = daily.collect()
    assert (s5.store_code, s5.is_open, s5.net_sales) == ("S5", False, yuan(-20))
    assert (s5.store_name, s5.store_type, s5.region, s5.floor_area_sqm) == (
        "S5",
        "DIRECT",
        "East",
        yuan(100),
    )
