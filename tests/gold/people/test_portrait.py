"""The portrait on hand-built rows (tests/gold/people/conftest.py): purchase definition,
behaviour, preferences, city, membership, RFM, lifecycle, masking."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from chispa import assert_df_equality

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
            # no delivery: the home store's (current) city
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
