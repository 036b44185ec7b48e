from datetime import datetime, timedelta

import pytest
from chispa import assert_df_equality
from pydantic import ValidationError
from pyspark.sql import functions as F

from lakehouse.gold.marts.bundles import baskets, rules
from lakehouse.gold.marts.campaign import (
    attribute_orders,
    campaign_performance,
    campaigns_to_recompute,
    orders_in_scope,
)
from lakehouse.gold.marts.inventory import ONLINE_DEMAND, daily_demand, inventory_position
from lakehouse.gold.marts.settings import BundleSettings, MartSettings
from tests.gold.marts.rows import D, yuan

CAMPAIGNS = (
    "campaign_id string, campaign_name string, channel string, start_date date, "
    "end_date date, cost_yuan decimal(18,2), coupon_code string"
)
TOUCHES = (
    "campaign_id string, touch_key string, touch_time timestamp, touch_date date, one_id string"
)
MEMBERS = "one_id string, member_from date, member_until date"
ORDERS = (
    "order_key string, one_id string, paid_at timestamp, business_date date, "
    "campaign_id string, coupon_code string, net_sales decimal(18,2), "
    "gross_profit decimal(18,2)"
)


def test_campaign_attribution_last_touch_direct_coupon_and_roi(spark):
    t0 = datetime(2026, 3, 1, 2)
    campaigns = spark.createDataFrame(
        [
            ("C1", "one", "SMS", D, D, yuan(100), None),
            ("C2", "two", "SMS", D, D, yuan(0), "CPN2"),  # cost 0 -> ROI null
            ("C3", "three", "APP_PUSH", D, D, yuan(10), None),
        ],
        CAMPAIGNS,
    )
    touches = spark.createDataFrame(
        [
            ("C1", "t1", t0, D, "P"),  # P touched by C1, then by C3: the last touch wins
            ("C3", "t2", t0 + timedelta(hours=1), D, "P"),
            ("C1", "t3", t0, D, "Q"),  # Q buys after the window: no conversion
            ("C1", "t4", t0, D, "R"),  # R buys with C2's coupon: direct to C2
        ],
        TOUCHES,
    )
    day = lambda d: D + timedelta(days=d)  # noqa: E731
    orders = spark.createDataFrame(
        [
            ("O1", "P", t0 + timedelta(hours=5), D, None, None, yuan(200), yuan(80)),
            ("O2", "Q", t0 + timedelta(days=8), day(8), None, None, yuan(50), yuan(20)),
            ("O3", "R", t0 + timedelta(hours=2), D, None, "CPN2", yuan(30), yuan(10)),
            ("O4", "M", t0 + timedelta(hours=3), D, None, None, yuan(40), yuan(5)),
        ],
        ORDERS,
    )
    attributed = attribute_orders(orders, campaigns, touches, 7).select(
        "order_key", "campaign_id", "direct"
    )
    assert_df_equality(
        attributed,
        spark.createDataFrame(
            [("O1", "C3", False), ("O3", "C2", True)],
            "order_key string, campaign_id string, direct boolean",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    members = spark.createDataFrame([(m, None, None) for m in "PQRMN"], MEMBERS)
    perf = campaign_performance(campaigns, touches, orders, members, 7).select(
        "campaign_id",
        "people_touched",
        "converted_people",
        "conversion_rate",
        "control_members",
        "control_buyers",
        "coupon_redemptions",
        "attributed_gross_profit",
        "roi",
    )
    expected = spark.createDataFrame(
        [
            # C1 touched P, Q, R; none converted to C1. Control: M, N untouched; M bought.
            ("C1", 3, 0, 0.0, 2, 1, 0, None, None),
            ("C2", 0, 0, None, 5, 3, 1, yuan(10), None),
            ("C3", 1, 1, 1.0, 4, 2, 0, yuan(80), 7.0),
        ],
        "campaign_id string, people_touched long, converted_people long, "
        "conversion_rate double, control_members long, control_buyers long, "
        "coupon_redemptions long, attributed_gross_profit decimal(28,2), roi double",
    )
    assert_df_equality(perf, expected, ignore_row_order=True, ignore_nullable=True)


def test_the_control_group_holds_members_while_they_are_members(spark):
    """C1's window opens on D (its touch of P and of T). L's only record left the CRM the day
    before, E's on D itself: no control members, and L's order on D no member's. T, touched,
    had left too: not taken off the control group twice. K's left on D+2: a control member (a
    member when the window opened), whose order on D+3 is no longer a member's. N registered
    on D+1, after the window opened, and bought on D+2: in no control group (before: a control
    buyer counted against members that did not hold N); Y registered on D, the first day: a
    control member."""
    t0 = datetime(2026, 3, 1, 2)
    day = lambda d: D + timedelta(days=d)  # noqa: E731
    campaigns = spark.createDataFrame([("C1", "one", "SMS", D, D, yuan(10), None)], CAMPAIGNS)
    touches = spark.createDataFrame([("C1", "t1", t0, D, "P"), ("C1", "t2", t0, D, "T")], TOUCHES)
    orders = spark.createDataFrame(
        [
            ("O1", "M", t0, D, None, None, yuan(40), yuan(5)),
            ("O2", "L", t0, D, None, None, yuan(40), yuan(5)),
            ("O3", "K", t0 + timedelta(days=3), day(3), None, None, yuan(40), yuan(5)),
            ("O4", "N", t0 + timedelta(days=2), day(2), None, None, yuan(40), yuan(5)),
        ],
        ORDERS,
    )
    members = spark.createDataFrame(
        [
            ("P", None, None),
            ("M", None, None),
            ("J", None, None),
            ("L", None, day(-1)),
            ("E", None, D),
            ("T", None, day(-3)),
            ("K", None, day(2)),
            ("N", day(1), None),
            ("Y", D, None),
        ],
        MEMBERS,
    )
    [perf] = campaign_performance(campaigns, touches, orders, members, 7).collect()
    assert (perf.control_members, perf.control_buyers) == (4, 1)  # M, K, J, Y; M bought
    no_dates = F.lit(None).cast("date")
    everyone = members.withColumns({"member_from": no_dates, "member_until": no_dates})
    [before] = campaign_performance(campaigns, touches, orders, everyone, 7).collect()
    assert (before.control_members, before.control_buyers) == (7, 4)  # all but P and T


def test_a_campaign_a_correction_took_touches_from_is_recomputed(spark):
    """C4's only touch (03-02) was taken back by a corrected touches file on 03-12: gone from
    silver.campaign_touches, nothing chose C4 and its figures kept counting the touch. Now
    the retracted touch chooses it, over a span from that touch's date; C3, whose window
    (03-01 to 03-08) reaches the days whose last touch that changed, is recomputed too: an
    order C4 had may be C3's now. C5, whose window ends before the touch, stays untouched."""
    day = lambda d: D + timedelta(days=d - 1)  # noqa: E731
    campaigns = spark.createDataFrame(
        [
            ("C3", "old", "SMS", day(1), day(1), yuan(10), None),
            ("C4", "sms", "SMS", day(1), day(3), yuan(10), None),
            ("C5", "older", "SMS", D - timedelta(days=20), D - timedelta(days=20), yuan(1), None),
        ],
        CAMPAIGNS,
    )
    touches = spark.createDataFrame(
        [
            ("C3", "t4", datetime(2026, 3, 1, 10), day(1), "S", day(1)),
            ("C5", "t5", datetime(2026, 2, 9, 10), D - timedelta(days=20), "S", day(1)),
        ],
        TOUCHES + ", _delivery_date date",
    )
    retracted = spark.createDataFrame(
        [("C4", "t9", day(2), day(12))],
        "campaign_id string, touch_key string, touch_date date, retracted_on date",
    )
    orders = spark.createDataFrame([], ORDERS)
    before = campaigns_to_recompute(campaigns, touches, orders, [day(12)], day(12), 7)
    assert before.count() == 0
    chosen = campaigns_to_recompute(
        campaigns, touches, orders, [day(12)], day(12), 7, retracted=retracted
    )
    assert sorted((r.campaign_id, r._from, r._to) for r in chosen.collect()) == [
        ("C3", day(1), day(8)),
        ("C4", day(2), day(9)),
    ]


def test_a_late_touch_recomputes_the_campaign_whose_orders_it_may_take(spark):
    """A touched P on 03-01 and got P's order of 03-03 (last touch); B's touch of P dated
    03-02 arrived late, on 03-20, and takes that order. Before, only B (a touch delivered
    today) was recomputed: A's row kept the order and B's counted it too. Every campaign whose
    window reaches the days the late touch's window covers (03-02 to 03-09) is recomputed;
    C, whose window ended before, is not."""
    day = lambda d: D + timedelta(days=d - 1)  # noqa: E731
    at = lambda d, h=10: datetime(2026, 3, d, h)  # noqa: E731
    campaigns = spark.createDataFrame(
        [
            ("A", "a", "SMS", day(1), day(1), yuan(10), None),
            ("B", "b", "SMS", day(2), day(2), yuan(10), None),
            ("C", "c", "SMS", D - timedelta(days=20), D - timedelta(days=20), yuan(1), None),
        ],
        CAMPAIGNS,
    )
    touches = spark.createDataFrame(
        [
            ("A", "t1", at(1), day(1), "P", day(1)),
            ("B", "t2", at(2), day(2), "P", day(20)),
            ("C", "t3", datetime(2026, 2, 9, 10), D - timedelta(days=20), "P", day(1)),
        ],
        TOUCHES + ", _delivery_date date",
    )
    orders = spark.createDataFrame(
        [("O1", "P", at(3), day(3), None, None, yuan(100), yuan(40))], ORDERS
    )
    chosen = campaigns_to_recompute(campaigns, touches, orders, [day(20)], day(20), 7)
    assert sorted(r.campaign_id for r in chosen.collect()) == ["A", "B"]
    perf = campaign_performance(
        campaigns.join(chosen.select("campaign_id"), "campaign_id", "left_semi"),
        touches.drop("_delivery_date"),
        orders,
        spark.createDataFrame([], MEMBERS),
        7,
        every_campaign=campaigns,
    )
    assert sorted((r.campaign_id, r.attributed_orders) for r in perf.collect()) == [
        ("A", 0),
        ("B", 1),
    ]


def test_an_order_naming_a_campaign_after_its_touch_window_is_counted(spark):
    """C1 runs 03-01 to 03-14 with coupon CP1 and touched on 03-01 and 03-02 (window to
    03-09); an order paid on 03-12 carries CP1. Before, the run of 03-12 chose campaigns by
    their touch window only and read orders of that window: C1 kept 0 redemptions and ROI -1.
    And an order naming C3 (not recomputed) was attributed by touch to C2, which was."""
    day = lambda d: D + timedelta(days=d - 1)  # noqa: E731  (day(12) = 03-12)
    at = lambda d, h=10: datetime(2026, 3, d, h)  # noqa: E731
    campaigns = spark.createDataFrame(
        [
            ("C1", "spring", "SMS", day(1), day(14), yuan(1000), "CP1"),
            ("C2", "app", "APP_PUSH", day(10), day(10), yuan(10), None),
            ("C3", "old", "SMS", day(1), day(1), yuan(10), None),
        ],
        CAMPAIGNS,
    )
    touches = spark.createDataFrame(
        [
            ("C1", "t1", at(1), day(1), "P", day(1)),
            ("C1", "t2", at(2), day(2), "Q", day(2)),
            ("C2", "t3", at(10), day(10), "R", day(10)),
            ("C3", "t4", at(1), day(1), "S", day(1)),
        ],
        TOUCHES + ", _delivery_date date",
    )
    orders = spark.createDataFrame(
        [
            ("O1", "P", at(12), day(12), None, "CP1", yuan(200), yuan(80)),  # C1, late coupon
            ("O2", "X", at(11), day(11), None, None, yuan(50), yuan(20)),  # in C2's window
            ("O3", "R", at(11, 12), day(11), "C3", None, yuan(30), yuan(10)),  # names C3
            ("O4", "Q", datetime(2026, 2, 20), D - timedelta(days=9), None, None, yuan(9), None),
            ("O5", "P", datetime(2026, 3, 20), day(20), "C1", None, yuan(70), yuan(7)),  # later
        ],
        ORDERS,
    )
    chosen = campaigns_to_recompute(campaigns, touches, orders, [day(12)], day(12), 7)
    assert sorted(r.campaign_id for r in chosen.collect()) == ["C1", "C2"]
    everything = campaigns_to_recompute(campaigns, touches, orders, [day(12)], day(12), 7, True)
    assert everything.count() == 3

    scope = orders_in_scope(orders, chosen, day(10), day(12), day(12))
    assert sorted(r.order_key for r in scope.collect()) == ["O1", "O2", "O3"]

    perf = {
        r.campaign_id: (r.coupon_redemptions, r.attributed_orders, r.attributed_net_sales, r.roi)
        for r in campaign_performance(
            campaigns.join(chosen.select("campaign_id"), "campaign_id", "left_semi"),
            touches.drop("_delivery_date"),
            scope,
            spark.createDataFrame([(m, None, None) for m in "PQRX"], MEMBERS),
            7,
            every_campaign=campaigns,
        ).collect()
    }
    assert perf == {"C1": (1, 1, yuan(200), -0.92), "C2": (0, 0, yuan(0), None)}


def test_fp_growth_respects_thresholds_and_basket_size(spark):
    lines = spark.createDataFrame(
        [
            ("o1", "A", 1, True),
            ("o1", "B", 1, True),
            ("o2", "A", 1, True),
            ("o2", "B", 1, True),
            ("o3", "A", 1, True),
            ("o4", "C", 1, True),
            ("o4", "D", 1, True),  # C-D once: support 1/4 below min_support 0.5
            ("o5", "A", 1, True),
            ("o5", "B", 1, True),
            ("o5", "C", 1, True),
            ("o5", "D", 1, True),  # a 4-item basket: above max_basket_size 3, left out
            ("o6", "A", 1, False),  # never paid: no basket
            ("o6", "B", -1, True),
        ],
        "order_key string, sku_id string, quantity int, paid boolean",
    )
    cfg = BundleSettings(min_support=0.5, min_confidence=0.6, min_lift=1.0, max_basket_size=3)
    got = rules(baskets(lines, "sku_id"), cfg).select("antecedent", "consequent", "baskets")
    # 4 baskets: {A,B} x2, {A}, {C,D}. A=>B conf 2/3 lift (2/3)/(1/2)=1.33; B=>A conf 1, lift 4/3.
    expected = spark.createDataFrame(
        [(["A"], "B", 4), (["B"], "A", 4)],
        "antecedent array<string>, consequent string, baskets long",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    strict = BundleSettings(min_support=0.5, min_confidence=0.9, min_lift=1.0, max_basket_size=3)
    assert [r.consequent for r in rules(baskets(lines, "sku_id"), strict).collect()] == ["A"]


def test_inventory_position_flags_negative_on_hand_and_stockouts(spark):
    stock = spark.createDataFrame(
        [
            (D, "S1", "A", "STORE", -2, 0, 0, yuan(-20), True, True),  # negative: kept
            (D, "S1", "B", "STORE", 14, 2, 1, yuan(140), True, True),
            (D, "WH-1", "A", "WAREHOUSE", 0, 0, 5, yuan(0), True, True),
            (D, "S2", "A", "STORE", 0, 0, 0, yuan(0), True, True),  # sold nothing: no stockout
        ],
        "snapshot_date date, location_code string, sku_id string, location_type string, "
        "on_hand_qty int, reserved_qty int, in_transit_qty int, value_at_cost decimal(18,2), "
        "sku_known boolean, location_known boolean",
    ).withColumn("unit_cost", F.lit(yuan(10)))
    demand = spark.createDataFrame(
        [
            (D, "S1", "A", 1, True),
            (D - timedelta(days=1), "S1", "B", 28, True),
            (D - timedelta(days=28), "S1", "B", 100, True),  # outside the 28-day window
            (D, ONLINE_DEMAND, "A", 3, True),
        ],
        "business_date date, demand_key string, sku_id string, units long, sold boolean",
    )
    got = inventory_position(stock, demand, 28).select(
        "location_code",
        "sku_id",
        "on_hand_qty",
        "available_qty",
        "window_units",
        "avg_daily_units",
        "days_of_supply",
        "stockout",
        "negative_on_hand",
    )
    expected = spark.createDataFrame(
        [
            ("S1", "A", -2, -2, 1, 1 / 28, None, True, True),
            ("S1", "B", 14, 12, 28, 1.0, 14.0, False, False),
            ("WH-1", "A", 0, 0, 3, 3 / 28, 0.0, True, False),
            # No sale in the window: a rate of 0 a day, and no cover to speak of.
            ("S2", "A", 0, 0, 0, 0.0, None, False, False),
        ],
        "location_code string, sku_id string, on_hand_qty int, available_qty int, "
        "window_units long, avg_daily_units double, days_of_supply double, stockout boolean, "
        "negative_on_hand boolean",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_a_sale_and_a_return_on_one_day_still_sold_the_sku(spark):
    """S1 sold one A and took another customer's A back the same day; it has none left. Before:
    the day's net units (0) were all the stockout rule saw, so no stockout."""
    lines = spark.createDataFrame(
        [(D, "STORE", "S1", "A", 1), (D, "STORE", "S1", "A", -1), (D, "STORE", "S1", "B", -1)],
        "business_date date, channel string, store_code string, sku_id string, units int",
    )
    stock = spark.createDataFrame(
        [
            (D, "S1", "A", "STORE", 0, 0, 0, yuan(0), True, True),
            (D, "S1", "B", "STORE", 0, 0, 0, yuan(0), True, True),  # only a return: no sale
        ],
        "snapshot_date date, location_code string, sku_id string, location_type string, "
        "on_hand_qty int, reserved_qty int, in_transit_qty int, value_at_cost decimal(18,2), "
        "sku_known boolean, location_known boolean",
    ).withColumn("unit_cost", F.lit(yuan(10)))
    got = inventory_position(stock, daily_demand(lines), 28)
    assert sorted((r.sku_id, r.window_units, r.stockout) for r in got.collect()) == [
        ("A", 0, True),
        ("B", -1, False),
    ]


def test_settings_are_strict():
    with pytest.raises(ValidationError, match="extra"):
        MartSettings.model_validate({"bundle": {}})
    with pytest.raises(ValidationError, match="min_support"):
        MartSettings.model_validate({"bundles": {"min_support": 0}})
    with pytest.raises(ValidationError, match="attribution_window_days"):
        MartSettings.model_validate({"campaigns": {"attribution_window_days": 0}})
    assert MartSettings().campaigns.attribution_window_days == 7


def test_a_sku_dropped_from_the_snapshots_keeps_its_category_in_the_baskets(spark):
    """B left the product snapshots last week (its version closed, none open): its baskets
    count at category level under its last category. Before: B had no category, so the
    baskets were {C1} alone and C1 => C2 was never found."""
    from lakehouse.gold.marts.bundles import bundle_rules
    from tests.gold.marts.rows import PRODUCTS, product

    dropped = D - timedelta(days=7)
    products = spark.createDataFrame(
        [product("A", cat="C1"), product("B", cat="C2", end=dropped)], PRODUCTS
    )
    lines = spark.createDataFrame(
        [(o, D, sku, 1, True) for o in ("o1", "o2") for sku in "AB"],
        "order_key string, business_date date, sku_id string, quantity int, paid boolean",
    )
    cfg = BundleSettings(min_support=0.5, min_confidence=0.5, min_lift=1.0)
    got = {
        (r.level, tuple(r.antecedent), r.consequent)
        for r in bundle_rules(lines, products, D, cfg).collect()
    }
    assert got == {
        ("SKU", ("A",), "B"),
        ("SKU", ("B",), "A"),
        ("CATEGORY", ("C1",), "C2"),
        ("CATEGORY", ("C2",), "C1"),
    }
