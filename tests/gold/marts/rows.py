"""Tiny hand-built silver frames for the mart tests (only the columns the marts read)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

ORDERS = (
    "order_key string, business_date date, store_code string, platform string, "
    "channel string, status string, net_sales decimal(18,2), paid_amount decimal(18,2), "
    "refunded_amount decimal(18,2), paid_at timestamp, created_at timestamp, "
    "coupon_code string, campaign_id string"
)
LINES = (
    "order_key string, line_id string, line_no int, sku_id string, quantity int, "
    "line_amount decimal(18,2), refunded_quantity int, refunded_amount decimal(18,2)"
)
PRODUCTS = (
    "sku_id string, unit_cost decimal(18,2), category_l1 string, category_l2 string, "
    "category_l3 string, valid_from date, valid_to date, is_current boolean"
)
STORES = (
    "store_code string, store_name string, store_type string, region string, "
    "floor_area_sqm decimal(10,2), staff_count int, open_date date, close_date date, "
    "valid_from date, valid_to date, is_current boolean"
)
D = date(2026, 3, 1)


def yuan(x) -> Decimal | None:
    return None if x is None else Decimal(str(x)).quantize(Decimal("0.01"))


def at(day: date, hour: int = 10) -> datetime:
    """A UTC instant on the Shanghai business day `day` (10:00 UTC = 18:00 Shanghai)."""
    return datetime(day.year, day.month, day.day, hour)


def order(
    key,
    day=D,
    store="S1",
    net=100,
    paid=None,
    refunded=0,
    platform="POS",
    status="COMPLETED",
    paid_at=True,
    coupon=None,
    campaign=None,
    hour=10,
):
    channel = "STORE" if platform == "POS" else "ONLINE"
    paid_amount = net + refunded if paid is None else paid
    when = at(day, hour)
    return (
        key,
        day,
        store,
        platform,
        channel,
        status,
        yuan(net),
        yuan(paid_amount),
        yuan(refunded),
        when if paid_at else None,
        when,
        coupon,
        campaign,
    )


def line(key, no, sku="A", qty=1, amount=100, refunded_qty=0, refunded=0):
    return (key, str(no), no, sku, qty, yuan(amount), refunded_qty, yuan(refunded))


def product(sku="A", cost=60, start=D - timedelta(days=30), end=None, cat="C1"):
    return (sku, yuan(cost), "L1", cat, "L3", start, end, end is None)


def store(
    code="S1",
    area=100,
    staff=4,
    opened=date(2025, 1, 1),
    closed=None,
    kind="DIRECT",
    start=date(2025, 1, 1),
):
    return (code, code, kind, "East", yuan(area), staff, opened, closed, start, None, True)


def frames(spark, orders=(), lines=(), products=(), stores=()):
    return (
        spark.createDataFrame(list(orders), ORDERS),
        spark.createDataFrame(list(lines), LINES),
        spark.createDataFrame(list(products), PRODUCTS),
        spark.createDataFrame(list(stores), STORES),
    )
