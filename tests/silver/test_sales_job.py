"""The sales suites' run-time limits: what counts as a time too late or too early to believe."""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from lakehouse.config import ConfigError, load_settings
from lakehouse.quality import run_gate
from lakehouse.silver.sales_job import (
    earliest_time,
    future_limit,
    lines_to_merge,
    sales_parameters,
)

RUN_DATE = dt.date(2026, 3, 2)
ORDERS_DDL = (
    "order_key string, platform string, status string, created_at timestamp, "
    "updated_at timestamp, paid_at timestamp, paid_amount decimal(18,2), "
    "gross_amount decimal(18,2), refunded_amount decimal(18,2), total_units int, "
    "shipping_amount decimal(18,2), _paid_at_read boolean, _shipping_read boolean, "
    "_refund_read boolean, net_sales decimal(18,2)"
)


def _order(
    key: str,
    created: str,
    paid: str | None,
    updated: str | None = None,
    shipping: str = "0.00",
    readable: tuple[bool | None, bool | None, bool | None] = (True, True, True),
    platform: str = "MALL",
    refunded: str = "0.00",
) -> tuple:
    created_at = dt.datetime.fromisoformat(created)
    updated_at = dt.datetime.fromisoformat(updated) if updated else created_at
    paid_at = dt.datetime.fromisoformat(paid) if paid else None
    ten, refund = Decimal("10.00"), Decimal(refunded)
    fee = Decimal(shipping)
    net = ten - fee - refund if paid_at else Decimal("0.00")
    row = (key, platform, "PAID", created_at, updated_at, paid_at, ten, ten, refund, 1, fee)
    return (*row, *readable, net)


def _gated_orders(orders) -> tuple[list[str], list[tuple[str, str]]]:
    """The silver.orders gate with conf's limits: the good keys, (key, rule) quarantined."""
    parameters = sales_parameters(RUN_DATE, load_settings("local").silver.limits)
    with run_gate(
        orders,
        "silver.orders",
        key_columns=["order_key"],
        run_id="r",
        run_date=RUN_DATE,
        parameters=parameters,
    ) as outcome:
        good = sorted(r.order_key for r in outcome.good.collect())
        reasons = sorted((r.record_key, r.expectation) for r in outcome.quarantined.collect())
    return good, reasons


def test_limits_are_timestamps_in_utc():
    # The run date's end in Shanghai (16:00 UTC) plus 24 hours of tolerance.
    assert future_limit(RUN_DATE, 24) == "2026-03-03 16:00:00"
    assert earliest_time(dt.date(2000, 1, 1)) == "2000-01-01 00:00:00"


def test_sales_parameters_come_from_conf():
    limits = load_settings("local").silver.limits
    parameters = sales_parameters(RUN_DATE, limits)
    assert parameters["earliest_time"] == earliest_time(limits.earliest_business_date)
    assert parameters["future_limit"] == future_limit(RUN_DATE, limits.future_tolerance_hours)
    assert parameters["min_return_quantity"] == -limits.max_line_quantity


def test_an_order_at_the_epoch_in_the_future_or_with_a_negative_fee_is_quarantined(spark):
    orders = spark.createDataFrame(
        [
            _order("ok", "2026-03-02 10:00:00", "2026-03-02 10:05:00"),
            _order("old_but_real", "2000-01-01 00:00:00", None),
            _order("epoch", "1970-01-01 00:00:00", "2026-03-02 10:05:00"),
            _order("epoch_paid", "2026-03-02 10:00:00", "1970-01-01 08:00:00"),
            _order("future", "2099-12-31 00:00:00", None),
            # A change time in 2099 would win over every later real change (a refund).
            _order("changed_in_2099", "2026-03-02 10:00:00", None, "2099-01-01 00:00:00"),
            # Net sales are paid − shipping − refunds: a negative fee would inflate them.
            _order("negative_shipping", "2026-03-02 10:00:00", None, shipping="-10.00"),
            # Written but unreadable (silver.orders' conformance flags them): not read as missing.
            _order("paid_2026_02_30", "2026-03-02 10:00:00", None, readable=(None, True, True)),
            _order("fee_ten", "2026-03-02 10:00:00", None, readable=(True, None, True)),
            _order("refund_na", "2026-03-02 10:00:00", None, readable=(True, True, None)),
        ],
        ORDERS_DDL,
    )
    good, reasons = _gated_orders(orders)
    assert good == ["ok", "old_but_real"]
    assert reasons == [
        ("changed_in_2099", "updated_not_in_future"),
        ("epoch", "created_not_before_earliest_date"),
        ("epoch_paid", "paid_not_before_earliest_date"),
        ("fee_ten", "shipping_amount_readable"),
        ("future", "created_not_in_future"),
        ("future", "updated_not_in_future"),
        ("negative_shipping", "shipping_amount_plausible"),
        ("paid_2026_02_30", "paid_at_readable"),
        ("refund_na", "refunded_amount_readable"),
    ]


def test_a_tmall_or_mall_refund_above_what_was_paid_is_quarantined(spark):
    """Before, 退款金额 150.00 on an order paid 110.00 with 10.00 shipping (shipping is never
    refunded) published net sales of -50.00. Tmall and mall refund at most the goods paid;
    JD's refund may hold a discount JD funded, and a POS return is a ticket of its own."""
    paid = "2026-03-02 10:05:00"
    orders = spark.createDataFrame(
        [
            _order("tmall_whole", "2026-03-02 10:00:00", paid, platform="TMALL", refunded="10.00"),
            _order("tmall_over", "2026-03-02 10:00:00", paid, platform="TMALL", refunded="10.01"),
            _order("mall_over", "2026-03-02 10:00:00", paid, refunded="12.00"),
            _order("mall_unpaid", "2026-03-02 10:00:00", None, refunded="12.00"),
            _order("jd_over", "2026-03-02 10:00:00", paid, platform="JD", refunded="20.00"),
        ],
        ORDERS_DDL,
    )
    good, reasons = _gated_orders(orders)
    assert good == ["jd_over", "mall_unpaid", "tmall_whole"]
    assert reasons == [
        ("mall_over", "refund_not_above_goods_paid"),
        ("tmall_over", "refund_not_above_goods_paid"),
    ]


def test_earliest_business_date_must_be_a_date(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(Path(__file__).resolve().parents[2] / "conf", conf)
    (conf / "local.yml").write_text("silver:\n  limits:\n    earliest_business_date: long ago\n")
    with pytest.raises(ConfigError, match=r"silver.limits.earliest_business_date"):
        load_settings("local", conf)


def test_lines_to_merge_keep_the_lines_of_the_order_version_silver_keeps(spark):
    """JD / mall lines follow their order's version: a version older than silver's brings no
    line, a newer one (or the same one again, a rerun) replaces the order's lines and deletes
    those it no longer holds, one without lines leaves them; Tmall lines stay per line."""
    d1, d2 = dt.date(2026, 3, 1), dt.date(2026, 3, 2)
    ten, nine, eleven = (dt.datetime(2026, 3, 1, h) for h in (10, 9, 11))
    version_ddl = (
        "order_key string, platform string, updated_at timestamp, _delivery_date date, "
        "_source_file string, _line_no int"
    )
    line_ddl = (
        "order_key string, line_id string, platform string, unit_price string, "
        "_delivery_date date, _source_file string, _line_no int"
    )
    silver_orders = spark.createDataFrame(
        [
            ("A", "JD", ten, d1, "f1", 1),
            ("B", "JD", ten, d1, "f1", 2),
            ("C", "MALL", ten, d1, "m1", 1),
            ("D", "JD", ten, d1, "f1", 3),
        ],
        version_ddl,
    )
    silver_lines = spark.createDataFrame(
        [
            ("A", "1", "JD", "old", d1, "f1", 1),
            ("A", "2", "JD", "old", d1, "f1", 1),
            ("B", "1", "JD", "old", d1, "f1", 2),
            ("B", "2", "JD", "old", d1, "f1", 2),
            ("C", "1", "MALL", "old", d1, "m1", 1),
            ("D", "1", "JD", "old", d1, "f1", 3),
        ],
        line_ddl,
    )
    order_latest = spark.createDataFrame(
        [
            ("A", "JD", nine, d2, "f2", 1),  # late: older than silver's
            ("B", "JD", eleven, d2, "f2", 2),  # newer, one line left
            ("C", "MALL", ten, d1, "m1", 1),  # the same version again
            ("D", "JD", eleven, d2, "f2", 3),  # newer, its item list empty
            ("E", "MALL", ten, d2, "m2", 1),  # new
        ],
        version_ddl,
    )
    line_rows = spark.createDataFrame(
        [
            ("A", "1", "JD", "late", d2, "f2", 1),
            ("B", "1", "JD", "new", d2, "f2", 2),
            ("B", "1", "JD", "older version", d2, "f2", 9),
            ("C", "1", "MALL", "again", d1, "m1", 1),
            ("E", "1", "MALL", "new", d2, "m2", 1),
            ("F", "1", "TMALL", "first", d1, "t1", 5),
            ("F", "1", "TMALL", "corrected", d2, "t2", 1),
        ],
        line_ddl,
    )
    got = lines_to_merge(line_rows, order_latest, silver_orders, silver_lines)
    assert sorted(
        (r.order_key, r.line_id, r.unit_price, r._merge_replace, r._merge_delete)
        for r in got.collect()
    ) == [
        ("B", "1", "new", True, False),
        ("B", "2", None, False, True),  # a delete needs its key only
        ("C", "1", "again", True, False),
        ("E", "1", "new", True, False),
        ("F", "1", "corrected", False, False),
    ]
    first_run = lines_to_merge(line_rows, order_latest, None, None)
    assert {r.order_key for r in first_run.collect()} == {"A", "B", "C", "E", "F"}
    assert first_run.where("_merge_delete").count() == 0
