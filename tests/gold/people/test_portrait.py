"""The portrait on hand-built rows (tests/gold/people/conftest.py): purchase definition,
behaviour, preferences, city, membership, RFM, lifecycle, masking."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakehouse.gold.people.portrait import PORTRAIT_COLUMNS
from lakehouse.gold.people.rfm import RFM_COLUMNS


def _pick(world, columns):
    return world["portrait"].select("one_id", *columns)


def test_one_row_per_one_id_with_every_column(people_world):
    portrait = people_world["portrait"]
    assert portrait.columns == PORTRAIT_COLUMNS
    assert sorted(people_world["rows"]) == ["OID_A", "OID_B", "OID_C", "OID_D", "OID_E"]


def test_behaviour(spark, people_world):
    cols = [
        "purchase_orders",
        "units",
        "net_sales",
        "avg_order_value",
        "refund_rate",
        "first_purchase_date",
        "last_purchase_date",
        "days_since_last_purchase",
    ]
    expected = spark.createDataFrame(
        [
            # cancelled, unpaid, after-the-run-date and return tickets are no purchases; the
            # return's -20 still lowers net sales
            (
                "OID_A",
                3,
                4,
                Decimal("320.00"),
                Decimal("106.67"),
                0.0571,
                date(2026, 3, 2),
                date(2026, 3, 7),
                3,
            ),
            ("OID_B", 0, 0, Decimal("0.00"), None, None, None, None, None),
            ("OID_C", 0, 0, Decimal("0.00"), None, None, None, None, None),
            ("OID_D", 0, 0, Decimal("0.00"), None, None, None, None, None),
            (
                "OID_E",
                1,
                1,
                Decimal("300.00"),
                Decimal("300.00"),
                0.0,
                date(2026, 3, 9),
                date(2026, 3, 9),
                1,
            ),
        ],
        "one_id string, purchase_orders int, units int, net_sales decimal(18,2), "
        "avg_order_value decimal(18,2), refund_rate double, first_purchase_date date, "
        "last_purchase_date date, days_since_last_purchase int",
    )
    assert_df_equality(
        _pick(people_world, cols), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_channel_mix_and_preferences(spark, people_world):
    cols = [
        "share_tmall",
        "share_jd",
        "share_mall",
        "share_pos",
        "preferred_channel",
        "preferred_store_code",
        "preferred_category",
        "preferred_brand",
        "avg_unit_price",
        "price_band",
        "weekend_share",
        "shopper_type",
        "coupon_share",
        "coupon_sensitivity",
    ]
    expected = spark.createDataFrame(
        [
            # 女装 192.50 (142.50 of T1's 190 by line amount + 50) beats 男装 147.50
            (
                "OID_A",
                0.6667,
                0.0,
                0.0,
                0.3333,
                "TMALL",
                "TMALL:shop",
                "女装",
                "拾光",
                87.5,
                "低价",
                0.3333,
                "工作日型",
                0.3333,
                "中",
            ),
            (
                "OID_E",
                0.0,
                0.0,
                0.0,
                1.0,
                "POS",
                "S2",
                "鞋靴",
                "远行",
                300.0,
                "中价",
                0.0,
                "工作日型",
                0.0,
                "低",
            ),
        ],
        "one_id string, share_tmall double, share_jd double, share_mall double, "
        "share_pos double, preferred_channel string, preferred_store_code string, "
        "preferred_category string, preferred_brand string, avg_unit_price double, "
        "price_band string, weekend_share double, shopper_type string, coupon_share double, "
        "coupon_sensitivity string",
    )
    actual = _pick(people_world, cols).where("purchase_orders > 0 OR one_id IN ('OID_E')")
    assert_df_equality(
        actual.where("one_id IN ('OID_A', 'OID_E')"),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_demographics_membership_and_masking(spark, people_world):
    cols = [
        "age",
        "age_band",
        "city",
        "city_source",
        "home_store_code",
        "is_member",
        "tenure_days",
        "name_masked",
        "phone_masked",
        "email_masked",
        "has_wechat",
        "marketing_opt_out",
    ]
    expected = spark.createDataFrame(
        [
            (
                "OID_A",
                35,
                "35-39",
                "杭州",
                "DELIVERY",
                "S1",
                True,
                365,
                "张*",
                "138****5678",
                "z***@example.cn",
                False,
                False,
            ),
            (
                "OID_B",
                None,
                None,
                None,
                None,
                None,
                False,
                None,
                None,
                "139****1111",
                None,
                True,
                False,
            ),
            (
                "OID_C",
                None,
                None,
                None,
                None,
                None,
                True,
                9,
                "李*",
                None,
                "l***@example.cn",
                False,
                False,
            ),
            # an unpaid order still tells where the member lives
            (
                "OID_D",
                None,
                None,
                "广州",
                "DELIVERY",
                None,
                False,
                None,
                None,
                None,
                None,
                False,
                False,
            ),
            # no delivery: the home store's city (its latest version: S2 is in 北京 now)
            (
                "OID_E",
                15,
                "<18",
                "北京",
                "HOME_STORE",
                "S2",
                True,
                37,
                None,
                "136****5432",
                None,
                False,
                True,
            ),
        ],
        "one_id string, age int, age_band string, city string, city_source string, "
        "home_store_code string, is_member boolean, tenure_days int, name_masked string, "
        "phone_masked string, email_masked string, has_wechat boolean, "
        "marketing_opt_out boolean",
    )
    assert_df_equality(
        _pick(people_world, cols), expected, ignore_row_order=True, ignore_nullable=True
    )
    a = people_world["rows"]["OID_A"]
    assert len(a.phone_hash) == 64 and a.phone_hash != people_world["rows"]["OID_E"].phone_hash


def test_rfm_and_lifecycle(spark, people_world):
    cols = [
        *RFM_COLUMNS,
        "engaged",
        "lifecycle_stage",
        "lifecycle_stage_cn",
        "churn_risk",
    ]
    expected = spark.createDataFrame(
        [
            # means over the two buyers: R 2 days, F 2, M 310
            (
                "OID_A",
                3,
                3,
                Decimal("320.00"),
                3,
                3,
                3,
                "重要保持客户",
                True,
                "repeat",
                "复购",
                False,
            ),
            ("OID_E", 1, 1, Decimal("300.00"), 5, 1, 1, "一般发展客户", True, "new", "普通", False),
            ("OID_B", None, None, None, None, None, None, None, True, "potential", "潜力", False),
            ("OID_C", None, None, None, None, None, None, None, False, "prospect", "无消费", False),
            ("OID_D", None, None, None, None, None, None, None, True, "potential", "潜力", False),
        ],
        "one_id string, rfm_recency_days int, rfm_frequency int, rfm_monetary decimal(18,2), "
        "r_score int, f_score int, m_score int, rfm_segment string, engaged boolean, "
        "lifecycle_stage string, lifecycle_stage_cn string, churn_risk boolean",
    )
    assert_df_equality(
        _pick(people_world, cols), expected, ignore_row_order=True, ignore_nullable=True
    )
    assert people_world["model"].buyers == 2


def _women_and_men(spark, w_left_on: date | None = None):
    """Products W (女装, 拾光) and M (男装, 木野), both current unless W left the snapshots
    (`w_left_on`: its only version closed then)."""
    since = date(2026, 1, 1)
    return spark.createDataFrame(
        [("W", "女装", "拾光", since, w_left_on), ("M", "男装", "木野", since, None)],
        "sku_id string, category_l1 string, brand string, valid_from date, valid_to date",
    )


def test_refunded_lines_weigh_nothing_in_preferences_and_price(spark):
    """A Tmall order paid 400: a 女装 line of 300 refunded in full, a 男装 line of 100 kept
    (net sales 100). Before, lines were weighed by their sold amount: 女装 took 75 of the 100
    and became the preferred category, and the average unit price was 200 (goods returned)."""
    from lakehouse.gold.people.portrait import behaviour, order_history, purchase_lines

    from .conftest import AS_OF, CFG, ORDER_SCHEMA

    orders = spark.createDataFrame(
        [
            (
                k,
                "tmall_orders",
                "TMALL",
                "TMALL:shop",
                date(2026, 3, 5),
                "COMPLETED",
                datetime(2026, 3, 5, 4, 0),
                Decimal(p),
                Decimal(n),
                Decimal(r),
                u,
                None,
                "杭州",
                None,
            )
            for k, p, n, r, u in [
                ("T1", "400.00", "100.00", "300.00", 2),
                ("T2", "90.00", "90.00", "0.00", 3),
                ("P1", "50.00", "50.00", "0.00", 1),
            ]
        ],
        ORDER_SCHEMA,
    ).withColumn("platform", F.when(F.col("order_key") == "P1", "POS").otherwise(F.col("platform")))
    mapping = spark.createDataFrame(
        [("tmall_orders", "T1", "X"), ("tmall_orders", "T2", "Y"), ("tmall_orders", "P1", "Z")],
        "source string, record_key string, one_id string",
    )
    history = order_history(orders, mapping, AS_OF, CFG)
    lines = spark.createDataFrame(
        [
            ("T1", "W", 1, Decimal("300.00"), 1, Decimal("300.00")),  # refunded in full
            ("T1", "M", 1, Decimal("100.00"), 0, Decimal("0.00")),
            ("T2", "W", 3, Decimal("90.00"), 1, Decimal("30.00")),  # one of three refunded
            ("P1", "W", 1, Decimal("50.00"), None, None),  # POS: as printed
        ],
        "order_key string, sku_id string, quantity int, line_amount decimal(18,2), "
        "refunded_quantity int, refunded_amount decimal(18,2)",
    )
    products = _women_and_men(spark)
    plines = purchase_lines(history, lines, products, "category_l1")
    assert_df_equality(
        plines.select("order_key", "category", "quantity", "line_amount", "line_net"),
        spark.createDataFrame(
            [
                ("P1", "女装", 1, Decimal("50.00"), Decimal("50.00")),
                ("T1", "女装", 0, Decimal("0.00"), Decimal("0.00")),
                ("T1", "男装", 1, Decimal("100.00"), Decimal("100.00")),
                ("T2", "女装", 2, Decimal("60.00"), Decimal("90.00")),
            ],
            "order_key string, category string, quantity int, line_amount decimal(18,2), "
            "line_net decimal(18,2)",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    got = {
        r.one_id: (r.preferred_category, r.avg_unit_price)
        for r in behaviour(history, plines, CFG).collect()
    }
    assert got == {"X": ("男装", 100.0), "Y": ("女装", 30.0), "Z": ("女装", 50.0)}


def test_returned_goods_and_zero_weights_make_no_preference_and_bands_read_exact_prices(spark):
    """X bought 女装 for 500 at a till and brought it back on a return ticket (−500), and kept
    a 男装 of 200 from Tmall. Y's one Tmall order was refunded in full. Z paid 449.99 for three
    units (149.997 each). Before: the return ticket's lines never reached the preferences, so
    女装 stayed X's category at 500; Y's 女装 weighing 0 still became the preferred one; Z's
    price band came from the rounded 150.00, 中价 instead of 低价."""
    from lakehouse.gold.people.portrait import behaviour, order_history, purchase_lines

    from .conftest import AS_OF, CFG, ORDER_SCHEMA

    def order(key, platform, status, paid, net, refunded, units):
        return (
            key,
            "pos_sales" if platform == "POS" else "tmall_orders",
            platform,
            "S0001" if platform == "POS" else "TMALL:shop",
            date(2026, 3, 5),
            status,
            datetime(2026, 3, 5, 4, 0),
            Decimal(paid),
            Decimal(net),
            Decimal(refunded),
            units,
            None,
            None,
            None,
        )

    orders = spark.createDataFrame(
        [
            order("P1", "POS", "COMPLETED", "500.00", "500.00", "0.00", 1),
            order("R1", "POS", "REFUNDED", "0.00", "-500.00", "500.00", -1),
            order("T1", "TMALL", "COMPLETED", "200.00", "200.00", "0.00", 1),
            order("T9", "TMALL", "REFUNDED", "299.00", "0.00", "299.00", 1),
            order("P3", "POS", "COMPLETED", "449.99", "449.99", "0.00", 3),
        ],
        ORDER_SCHEMA,
    )
    owner = {"P1": "X", "R1": "X", "T1": "X", "T9": "Y", "P3": "Z"}
    mapping = spark.createDataFrame(
        [("pos_sales" if k[0] in "PR" else "tmall_orders", k, v) for k, v in owner.items()],
        "source string, record_key string, one_id string",
    )
    history = order_history(orders, mapping, AS_OF, CFG)
    lines = spark.createDataFrame(
        [
            ("P1", "W", 1, Decimal("500.00"), None, None),
            ("R1", "W", -1, Decimal("-500.00"), None, None),  # the return, as printed
            ("T1", "M", 1, Decimal("200.00"), 0, Decimal("0.00")),
            ("T9", "W", 1, Decimal("299.00"), 1, Decimal("299.00")),  # refunded in full
            ("P3", "M", 3, Decimal("449.99"), None, None),
        ],
        "order_key string, sku_id string, quantity int, line_amount decimal(18,2), "
        "refunded_quantity int, refunded_amount decimal(18,2)",
    )
    products = _women_and_men(spark)
    plines = purchase_lines(history, lines, products, "category_l1")
    got = {
        r.one_id: (r.preferred_category, r.preferred_brand, r.avg_unit_price, r.price_band)
        for r in behaviour(history, plines, CFG).collect()
    }
    assert got == {
        "X": ("男装", "木野", 350.0, "中价"),  # units kept at their price: (500 + 200) / 2
        "Y": (None, None, None, None),
        "Z": ("男装", "木野", 150.0, "低价"),
    }


def test_a_jd_or_mall_order_refunded_whole_weighs_nothing_in_the_price_band(spark):
    """JD and mall lines report no refund. Before, a REFUNDED mall order kept its line at the
    sold amount: Y's 1,000.00 item that came back made the average 550.00 (高价) beside a
    100.00 POS purchase, and V, who kept nothing, got 1,000.00 and 高价. As the marts count
    units, such an order's lines keep nothing, like a Tmall line refunded in full."""
    from lakehouse.gold.people.portrait import behaviour, order_history, purchase_lines

    from .conftest import AS_OF, CFG, ORDER_SCHEMA

    sources = {"POS": "pos_sales", "MALL": "mall_orders", "JD": "jd_orders"}

    def order(key, platform, status, paid, net, refunded, units):
        store = "S0001" if platform == "POS" else f"{platform}:shop"
        when = datetime(2026, 3, 5, 4, 0)
        amounts = (Decimal(paid), Decimal(net), Decimal(refunded))
        return (key, sources[platform], platform, store, date(2026, 3, 5), status, when,
                *amounts, units, None, None, None)  # fmt: skip

    orders = spark.createDataFrame(
        [
            order("M9", "MALL", "REFUNDED", "1000.00", "0.00", "1000.00", 1),
            order("P4", "POS", "COMPLETED", "100.00", "100.00", "0.00", 1),
            order("J9", "JD", "REFUNDED", "1000.00", "0.00", "1000.00", 1),
        ],
        ORDER_SCHEMA,
    )
    owner = {"M9": "Y", "P4": "Y", "J9": "V"}
    mapping = spark.createDataFrame(
        [(sources[o[2]], o[0], owner[o[0]]) for o in (r for r in orders.collect())],
        "source string, record_key string, one_id string",
    )
    history = order_history(orders, mapping, AS_OF, CFG)
    lines = spark.createDataFrame(
        [
            ("M9", "W", 1, Decimal("1000.00"), None, None),
            ("P4", "M", 1, Decimal("100.00"), None, None),
            ("J9", "W", 1, Decimal("1000.00"), None, None),
        ],
        "order_key string, sku_id string, quantity int, line_amount decimal(18,2), "
        "refunded_quantity int, refunded_amount decimal(18,2)",
    )
    plines = purchase_lines(history, lines, _women_and_men(spark), "category_l1")
    got = {
        r.one_id: (r.avg_unit_price, r.price_band)
        for r in behaviour(history, plines, CFG).collect()
    }
    assert got == {"Y": (100.0, "低价"), "V": (None, None)}


def test_share_labels_compare_the_exact_share_not_the_rounded_one(spark):
    """2 of 3 purchases on a weekend is 0.666…, shown as 0.6667. Before, a threshold of 0.6667
    compared against the rounded share and called the member a weekend shopper."""
    from lakehouse.gold.people.portrait import behaviour, order_history, purchase_lines

    from .conftest import AS_OF, CFG, ORDER_SCHEMA

    prefs = CFG.preferences.model_copy(
        update={"weekend_share_min": 0.6667, "coupon_high_share": 0.6667}
    )
    cfg = CFG.model_copy(update={"preferences": prefs})

    def order(key, day, coupon):  # 2026-03-07 and 03-08 are a Saturday and a Sunday
        return (key, "pos_sales", "POS", "S0001", date(2026, 3, day), "COMPLETED",
                datetime(2026, 3, day, 4), Decimal("10.00"), Decimal("10.00"), Decimal("0.00"),
                1, coupon, None, None)  # fmt: skip

    orders = spark.createDataFrame(
        [
            order("A1", 7, "C"),
            order("A2", 8, "C"),
            order("A3", 9, None),
            order("B1", 7, "C"),
            order("B2", 8, "C"),
        ],
        ORDER_SCHEMA,
    )
    mapping = spark.createDataFrame(
        [("pos_sales", k, k[0]) for k in ("A1", "A2", "A3", "B1", "B2")],
        "source string, record_key string, one_id string",
    )
    history = order_history(orders, mapping, AS_OF, cfg)
    lines = spark.createDataFrame(
        [],
        "order_key string, sku_id string, quantity int, line_amount decimal(18,2), "
        "refunded_quantity int, refunded_amount decimal(18,2)",
    )
    plines = purchase_lines(history, lines, _women_and_men(spark), "category_l1")
    got = {
        r.one_id: (r.weekend_share, r.shopper_type, r.coupon_share, r.coupon_sensitivity)
        for r in behaviour(history, plines, cfg).collect()
    }
    weekday, weekend = prefs.weekday_label, prefs.weekend_label
    medium, high = prefs.coupon_labels["medium"], prefs.coupon_labels["high"]
    assert got == {
        "A": (0.6667, weekday, 0.6667, medium),
        "B": (1.0, weekend, 1.0, high),
    }


def _one_pos_purchase(spark, one_id: str, store: str, day: date, sku: str):
    """`one_id`'s one POS ticket P1 of 100.00 at `store` on `day` (one unit of `sku`): its
    order history as of the world's AS_OF, and its lines."""
    from lakehouse.gold.people.portrait import order_history

    from .conftest import AS_OF, CFG, ORDER_SCHEMA

    when = datetime(day.year, day.month, day.day, 4, 0)
    orders = spark.createDataFrame(
        [("P1", "pos_sales", "POS", store, day, "COMPLETED", when, Decimal("100.00"),
          Decimal("100.00"), Decimal("0.00"), 1, None, None, None)],
        ORDER_SCHEMA,
    )  # fmt: skip
    mapping = spark.createDataFrame(
        [("pos_sales", "P1", one_id)], "source string, record_key string, one_id string"
    )
    lines = spark.createDataFrame(
        [("P1", sku, 1, Decimal("100.00"), None, None)],
        "order_key string, sku_id string, quantity int, line_amount decimal(18,2), "
        "refunded_quantity int, refunded_amount decimal(18,2)",
    )
    return order_history(orders, mapping, AS_OF, CFG), lines


def test_a_sku_dropped_from_the_snapshots_keeps_its_category_and_brand(spark):
    """W left the product snapshots after Y bought it: Y's purchase still says 女装 / 拾光.
    Before, only an open version counted: the line had no category, and Y no preference."""
    from lakehouse.gold.people.portrait import purchase_lines

    history, lines = _one_pos_purchase(spark, "Y", "S0001", date(2026, 3, 5), "W")
    products = _women_and_men(spark, w_left_on=date(2026, 3, 6))
    got = purchase_lines(history, lines, products, "category_l1").collect()
    assert [(r.one_id, r.category, r.brand) for r in got] == [("Y", "女装", "拾光")]


def test_a_closed_store_is_still_a_home_store_in_its_last_city(spark):
    """S3 and S4 left the stores snapshots (closed). Y registered at S3 and never bought; Z
    bought at S4, registered at the open S5, and has no delivery city. Y's home store is S3 in
    苏州, Z's S4 in its last city 宁波 (not its earlier 温州). Before, only open versions
    counted: Y had no home store and Z's home store no city."""
    from lakehouse.gold.people.portrait import build_portrait, purchase_lines

    from .conftest import AS_OF, CFG, SALT

    history, lines = _one_pos_purchase(spark, "Z", "S4", date(2026, 1, 20), "SKU1")
    products = spark.createDataFrame(
        [("SKU1", "女装", "拾光", date(2025, 1, 1), None)],
        "sku_id string, category_l1 string, brand string, valid_from date, valid_to date",
    )
    closed = date(2026, 2, 1)
    stores = spark.createDataFrame(
        [
            ("S3", "苏州", "DIRECT", date(2020, 1, 1), closed),
            ("S4", "温州", "DIRECT", date(2020, 1, 1), date(2024, 1, 1)),
            ("S4", "宁波", "DIRECT", date(2024, 1, 1), closed),
            ("S5", "上海", "DIRECT", date(2020, 1, 1), None),
        ],
        "store_code string, city string, store_type string, valid_from date, valid_to date",
    )
    registered = datetime(2025, 6, 1, 2, 0)
    golden = spark.createDataFrame(
        [
            (one_id, None, None, None, None, None, None, None, [member], None, None, "STORE",
             store, registered, False)
            for one_id, member, store in (("Y", "M-Y", "S3"), ("Z", "M-Z", "S5"))
        ],
        "one_id string, gender string, birthday date, name string, phone string, email string, "
        "unionid string, openid string, member_ids array<string>, level string, points int, "
        "register_channel string, register_store_code string, register_time timestamp, "
        "marketing_opt_out boolean",
    )  # fmt: skip
    plines = purchase_lines(history, lines, products, "category_l1")
    touched = spark.createDataFrame([], "one_id string")
    portrait, _ = build_portrait(
        golden.select("one_id"), golden, history, plines, stores, touched, AS_OF, CFG, SALT
    )
    got = {
        (r.one_id, r.home_store_code, r.city, r.city_source)
        for r in portrait.select("one_id", "home_store_code", "city", "city_source").collect()
    }
    assert got == {("Y", "S3", "苏州", "HOME_STORE"), ("Z", "S4", "宁波", "HOME_STORE")}
