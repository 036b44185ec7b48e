"""Hand-built silver / One ID rows for the portrait and tag tests (one small world, built once).

As of 2026-03-10 (a Tuesday):
- OID_A buys 3 times (Tmall Sat 03-07 with a coupon, Tmall Mon 03-02, POS store S1 Wed 03-04),
  returns goods at S1 (a return ticket, no purchase), has a cancelled mall order and an order
  dated after the run date; delivery city 杭州.
- OID_B only received a campaign touch (potential); OID_C is only known (prospect); OID_D
  created an order and never paid (potential).
- OID_E bought once at store S2 (北京), has no delivery city, and opted out of marketing.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from lakehouse.gold.people.portrait import build_portrait, order_history, purchase_lines
from lakehouse.gold.people.settings import PeopleSettings

AS_OF = date(2026, 3, 10)
SALT = "unit-test-salt-0123456789"
CFG = PeopleSettings()

ORDER_SCHEMA = (
    "order_key string, source string, platform string, store_code string, business_date date, "
    "status string, paid_at timestamp, paid_amount decimal(18,2), net_sales decimal(18,2), "
    "refunded_amount decimal(18,2), total_units int, coupon_code string, receiver_city string, "
    "campaign_id string"
)


def _d(text: str) -> date:
    return date.fromisoformat(text)


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _m(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


ORDERS = [
    # key, source, platform, store, date, status, paid_at, paid, net, refunded, units, coupon, city
    (
        "T1",
        "tmall_orders",
        "TMALL",
        "TMALL:shop",
        "2026-03-07",
        "COMPLETED",
        True,
        200,
        190,
        0,
        2,
        "C1",
        "杭州",
    ),
    (
        "T2",
        "tmall_orders",
        "TMALL",
        "TMALL:shop",
        "2026-03-02",
        "COMPLETED",
        True,
        100,
        100,
        0,
        1,
        None,
        "杭州",
    ),
    (
        "M1",
        "mall_orders",
        "MALL",
        "MALL:OWN",
        "2026-03-03",
        "CANCELLED",
        False,
        0,
        0,
        0,
        1,
        None,
        "上海",
    ),
    ("P1", "pos_sales", "POS", "S1", "2026-03-04", "COMPLETED", True, 50, 50, 0, 1, None, None),
    ("P2", "pos_sales", "POS", "S1", "2026-03-05", "REFUNDED", True, 0, -20, 20, -1, None, None),
    (
        "T9",
        "tmall_orders",
        "TMALL",
        "TMALL:shop",
        "2026-03-20",
        "COMPLETED",
        True,
        999,
        999,
        0,
        9,
        None,
        "杭州",
    ),
    (
        "D1",
        "mall_orders",
        "MALL",
        "MALL:OWN",
        "2026-03-08",
        "CREATED",
        False,
        80,
        0,
        0,
        1,
        None,
        "广州",
    ),
    ("E1", "pos_sales", "POS", "S2", "2026-03-09", "COMPLETED", True, 300, 300, 0, 1, None, None),
    ("X1", "pos_sales", "POS", "S1", "2026-03-09", "COMPLETED", True, 10, 10, 0, 1, None, None),
]
OWNER = {"T1": "A", "T2": "A", "M1": "A", "P1": "A", "P2": "A", "T9": "A", "D1": "D", "E1": "E"}
LINES = [
    # order_key, sku_id, quantity, line_amount
    ("T1", "SKU1", 1, 150),
    ("T1", "SKU2", 1, 50),
    ("T2", "SKU2", 1, 100),
    ("P1", "SKU1", 1, 50),
    ("P2", "SKU1", -1, -20),
    ("E1", "SKU3", 1, 300),
]
PRODUCTS = [
    ("SKU1", "女装", "拾光", None),
    ("SKU2", "男装", "木野", None),
    ("SKU3", "鞋靴", "远行", None),
    ("SKU3", "旧品类", "旧品牌", "2026-01-01"),
]
STORES = [
    # store_code, city, store_type, valid_from, valid_to
    ("S1", "杭州", "DIRECT", "2020-01-01", None),
    ("S2", "北京", "FRANCHISE", "2025-01-01", None),
    ("S2", "天津", "FRANCHISE", "2020-01-01", "2025-01-01"),
    ("TMALL:shop", None, "ONLINE", "2020-01-01", None),
]
GOLDEN = [
    # one_id, gender, birthday, name, phone, email, unionid, member_ids, level, points,
    # register channel, store, time, opt-out
    (
        "OID_A",
        "F",
        "1990-05-01",
        "张三",
        "13812345678",
        "zhang.san@example.cn",
        None,
        ["M01"],
        "GOLD",
        100,
        "STORE",
        "S1",
        "2025-03-09T16:30:00",
        False,
    ),
    ("OID_B", None, None, None, "13900001111", None, "U_B", [], None, None, None, None, None, None),
    (
        "OID_C",
        None,
        None,
        "李雷",
        None,
        "li@example.cn",
        None,
        ["M03"],
        "NORMAL",
        0,
        "TMALL",
        None,
        "2026-03-01T00:00:00",
        False,
    ),
    ("OID_D", None, None, None, None, None, None, [], None, None, None, None, None, None),
    (
        "OID_E",
        "M",
        "2010-03-11",
        None,
        "13698765432",
        None,
        None,
        ["M05"],
        "NORMAL",
        5,
        "STORE",
        "S2",
        "2026-02-01T00:00:00",
        True,
    ),
]


@pytest.fixture(scope="session")
def people_world(spark):
    orders = spark.createDataFrame(
        [
            (
                k,
                s,
                pl,
                st,
                _d(d),
                status,
                _ts(f"{d}T04:00:00") if paid else None,
                _m(p),
                _m(n),
                _m(r),
                u,
                c,
                city,
                None,
            )
            for k, s, pl, st, d, status, paid, p, n, r, u, c, city in ORDERS
        ],
        ORDER_SCHEMA,
    )
    mapping = spark.createDataFrame(
        [(s, k, f"OID_{OWNER[k]}") for k, s, *_ in ORDERS if k in OWNER]
        + [("campaign_touches", "TOUCH1", "OID_B")],
        "source string, record_key string, one_id string",
    )
    history = order_history(orders, mapping, AS_OF, CFG).cache()
    lines = spark.createDataFrame(
        [(k, s, q, _m(a), None, None) for k, s, q, a in LINES],
        "order_key string, sku_id string, quantity int, line_amount decimal(18,2), "
        "refunded_quantity int, refunded_amount decimal(18,2)",
    )
    products = spark.createDataFrame(
        [(s, c, b, _d("2025-01-01" if v else "2026-01-01"), _d(v) if v else None)
         for s, c, b, v in PRODUCTS],
        "sku_id string, category_l1 string, brand string, valid_from date, valid_to date",
    )  # fmt: skip
    stores = spark.createDataFrame(
        [(s, c, t, _d(f), _d(v) if v else None) for s, c, t, f, v in STORES],
        "store_code string, city string, store_type string, valid_from date, valid_to date",
    )
    golden = spark.createDataFrame(
        [
            (
                o,
                g,
                _d(b) if b else None,
                nm,
                ph,
                em,
                u,
                None,
                ids,
                lv,
                pt,
                rc,
                rs,
                _ts(rt) if rt else None,
                opt,
            )
            for o, g, b, nm, ph, em, u, ids, lv, pt, rc, rs, rt, opt in GOLDEN
        ],
        "one_id string, gender string, birthday date, name string, phone string, email string, "
        "unionid string, openid string, member_ids array<string>, level string, points int, "
        "register_channel string, register_store_code string, register_time timestamp, "
        "marketing_opt_out boolean",
    )
    plines = purchase_lines(history, lines, products, "category_l1")
    touched = mapping.where("source = 'campaign_touches'").select("one_id")
    portrait, model = build_portrait(
        golden.select("one_id"), golden, history, plines, stores, touched, AS_OF, CFG, SALT
    )
    portrait = portrait.cache()
    rows = {r.one_id: r for r in portrait.collect()}
    yield {"portrait": portrait, "history": history, "rows": rows, "model": model}
    portrait.unpersist()
    history.unpersist()
