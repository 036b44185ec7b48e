"""Order lines of every platform in the one shape."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from chispa import assert_df_equality

from lakehouse.silver.order_lines import (
    LINE_COLUMNS,
    jd_lines,
    mall_lines,
    pos_lines,
    pos_order_lines,
    reused_ticket_numbers,
    tmall_lines,
)

LINEAGE = (date(2026, 3, 2), "file:/l/f", 2, "h")
LINEAGE_DDL = "_delivery_date date, _source_file string, _line_no int, _record_hash string"
PICK = [
    "order_key",
    "line_id",
    "line_no",
    "platform_sku_code",
    "outer_sku_id",
    "quantity",
    "unit_price",
    "line_amount",
    "refund_status",
    "refunded_quantity",
    "refunded_amount",
    "orig_order_key",
]
PICK_DDL = (
    "order_key string, line_id string, line_no int, platform_sku_code string, "
    "outer_sku_id string, quantity int, unit_price decimal(18,2), line_amount decimal(18,2), "
    "refund_status string, refunded_quantity int, refunded_amount decimal(18,2), "
    "orig_order_key string"
)


def _check(spark, got, rows):
    assert got.columns == LINE_COLUMNS
    expected = spark.createDataFrame(rows, PICK_DDL)
    assert_df_equality(
        got.select(*PICK).orderBy("order_key", "line_no"), expected, ignore_nullable=True
    )


def test_tmall_lines_normalise_codes_and_refunds(spark):
    ddl = (
        "order_no string, line_no string, title string, unit_price string, quantity string, "
        "merchant_sku_code string, refund_status string, refund_amount string, " + LINEAGE_DDL
    )
    rows = [
        ('="2937001"', "9002", "T恤", "99.00", "2", " nr00001 ", "退款成功", "198.00", *LINEAGE),
        ('="2937001"', "9001", "杯", "10.00", "1", "NR00002", "无退款", "0.00", *LINEAGE),
    ]
    got = tmall_lines(spark.createDataFrame(rows, ddl))
    _check(
        spark,
        got,
        [
            (
                "TMALL:2937001",
                "9001",
                1,
                "NR00002",
                None,
                1,
                Decimal("10.00"),
                Decimal("10.00"),
                "NONE",
                0,
                Decimal("0.00"),
                None,
            ),
            (
                "TMALL:2937001",
                "9002",
                2,
                "NR00001",
                None,
                2,
                Decimal("99.00"),
                Decimal("198.00"),
                "REFUNDED",
                2,
                Decimal("198.00"),
                None,
            ),
        ],
    )


def test_a_partial_tmall_refund_gives_back_the_units_its_amount_pays_for(spark):
    """退款成功 ends a partial refund too: the export gives no refunded quantity, so the units
    are 退款金额 / 价格 (half up, within the line's quantity); without a usable amount or
    price, all of them."""
    ddl = (
        "order_no string, line_no string, title string, unit_price string, quantity string, "
        "merchant_sku_code string, refund_status string, refund_amount string, " + LINEAGE_DDL
    )
    cases = [  # line id, price, qty, status, amount, expected units back
        ("1", "99.00", "3", "退款成功", "99.00", 1),  # one of three
        ("2", "99.00", "3", "退款成功", "150.00", 2),  # 1.52 units: half up
        ("3", "99.00", "3", "退款成功", "10.00", 0),  # a price adjustment, no unit back
        ("4", "99.00", "3", "退款成功", "297.00", 3),
        ("5", "99.00", "3", "退款成功", "999.00", 3),  # never more than the line
        ("6", "99.00", "3", "退款成功", "0.00", 3),  # the amount says nothing
        ("7", "99.00", "3", "退款成功", "", 3),
        ("8", "0.00", "3", "退款成功", "5.00", 3),  # a free line: the price says nothing
        ("9", "99.00", "3", "退款中", "99.00", 0),  # not refunded yet
        ("10", "99.00", "", "退款成功", "99.00", None),  # no quantity to give back
    ]
    rows = [
        ("1", line, "t", price, qty, "S", status, amount, *LINEAGE)
        for line, price, qty, status, amount, _ in cases
    ]
    lines = tmall_lines(spark.createDataFrame(rows, ddl)).collect()
    got = {r.line_id: r.refunded_quantity for r in lines}
    assert got == {line: units for line, *_, units in cases}
    # Money back only once refunded: 退款中's amount is asked for, not returned (before: 99.00
    # on line 9, which took that share of the order's net sales away from the line).
    money = {r.line_id: r.refunded_amount for r in lines}
    assert money["9"] == Decimal("0.00")
    assert (money["1"], money["5"], money["6"]) == (Decimal("99.00"), Decimal("999.00"), 0)


def test_jd_and_mall_lines_explode_nested_items(spark):
    jd_ddl = (
        "orderId string, itemInfoList array<struct<skuId:string, outerSkuId:string, "
        "skuName:string, jdPrice:string, itemTotal:string>>, " + LINEAGE_DDL
    )
    jd = spark.createDataFrame(
        [
            ("230012345678", [("100012345", "sku-00123", "a", "99.00", "3")], *LINEAGE),
            ("230012345679", [], *LINEAGE),
        ],
        jd_ddl,
    )
    _check(
        spark,
        jd_lines(jd),
        [
            (
                "JD:230012345678",
                "1",
                1,
                "100012345",
                "SKU-00123",
                3,
                Decimal("99.00"),
                Decimal("297.00"),
                None,
                None,
                None,
                None,
            ),
        ],
    )
    mall_ddl = (
        "order_id string, items array<struct<sku_id:string, qty:string, price_fen:string>>, "
        + LINEAGE_DDL
    )
    mall = spark.createDataFrame(
        [("M1", [("SKU-1", "1", "29900"), ("SKU-2", "2", "100")], *LINEAGE)], mall_ddl
    )
    _check(
        spark,
        mall_lines(mall),
        [
            (
                "MALL:M1",
                "1",
                1,
                "SKU-1",
                None,
                1,
                Decimal("299.00"),
                Decimal("299.00"),
                None,
                None,
                None,
                None,
            ),
            (
                "MALL:M1",
                "2",
                2,
                "SKU-2",
                None,
                2,
                Decimal("1.00"),
                Decimal("2.00"),
                None,
                None,
                None,
                None,
            ),
        ],
    )


@pytest.mark.parametrize(("printed", "price"), [("-45.00", "50.00"), ("45.00", "-50.00")])
def test_pos_return_lines_point_at_the_original_ticket(spark, printed, price):
    """A return is marked by its negative qty; the contract gives no sign for its amount or
    price, so a positive amount is money going back too (before: a refund of -45 quarantined
    its ticket), and a negative price is the price (before: unit_price_plausible kept the
    return out of silver)."""
    ddl = (
        "store_code string, pos_id string, ticket_no string, line_no string, txn_time string, "
        "cashier_id string, member_card_no string, member_phone string, barcode string, "
        "qty string, unit_price string, discount string, amount string, pay_method string, "
        "orig_ticket_no string, " + LINEAGE_DDL
    )
    rows = [
        (
            "S001",
            "P1",
            "T9",
            "1",
            "2026/03/05 09:00:00",
            "C1",
            "",
            "",
            "6901234567892",
            "-1",
            price,
            "5.00",
            printed,
            "CASH",
            "T1",
            *LINEAGE,
        )
    ]
    got = pos_order_lines(pos_lines(spark.createDataFrame(rows, ddl)))
    _check(
        spark,
        got,
        [
            (
                "POS:S001:T9",
                "1",
                1,
                "6901234567892",
                None,
                -1,
                Decimal("50.00"),
                Decimal("-45.00"),
                "RETURN",
                1,
                Decimal("45.00"),
                "POS:S001:T1",
            ),
        ],
    )


def test_a_line_amount_beyond_the_money_type_is_null_not_an_error(spark):
    """9999999999999999.99 is the largest decimal(18,2): twice it overflows the money type.
    Under ANSI a cast would fail the whole job; null leaves the line to the price rule."""
    ddl = (
        "order_no string, line_no string, title string, unit_price string, quantity string, "
        "merchant_sku_code string, refund_status string, refund_amount string, " + LINEAGE_DDL
    )
    rows = [("2937001", "9001", "T恤", "9999999999999999.99", "2", "NR1", "无退款", "0", *LINEAGE)]
    [line] = tmall_lines(spark.createDataFrame(rows, ddl)).collect()
    assert (line.unit_price, line.quantity, line.line_amount) == (
        Decimal("9999999999999999.99"),
        2,
        None,
    )


def test_the_smallest_int_quantity_returned_is_null_not_an_error(spark):
    """-2147483648 (an overflowed 32-bit counter) is a readable int, but its negation is not:
    under ANSI it would fail the whole job. The line keeps its quantity for the rules."""
    ddl = (
        "store_code string, pos_id string, ticket_no string, line_no string, txn_time string, "
        "cashier_id string, member_card_no string, member_phone string, barcode string, "
        "qty string, unit_price string, discount string, amount string, pay_method string, "
        "orig_ticket_no string, " + LINEAGE_DDL
    )
    row = ("S001", "P1", "T9", "1", "2026/03/05 09:00:00", "C1", "", "", "6901234567892")
    rows = [(*row, "-2147483648", "50.00", "0.00", "-45.00", "CASH", "T1", *LINEAGE)]
    [line] = pos_order_lines(pos_lines(spark.createDataFrame(rows, ddl))).collect()
    assert (line.quantity, line.refunded_quantity) == (-2147483648, None)


POS_DDL = (
    "store_code string, pos_id string, ticket_no string, line_no string, txn_time string, "
    "cashier_id string, member_card_no string, member_phone string, barcode string, "
    "qty string, unit_price string, discount string, amount string, pay_method string, "
    "orig_ticket_no string, " + LINEAGE_DDL
)


def _pos_row(ticket: str, line: str, till: str | None, at: str | None) -> tuple:
    return (
        "S001", till, ticket, line, at, "C1", "", "", "6901234567892",
        "1", "10.00", "0.00", "10.00", "CASH", "", *LINEAGE,
    )  # fmt: skip


def test_a_ticket_number_used_by_two_tills_or_on_two_days_is_reused(spark):
    """A ticket's lines share its till and its Shanghai business day, or are minutes apart
    across midnight; a late line or a line delivered again does not make a ticket reused, a
    line without a till or time proves nothing."""
    rows = [
        # one till, one day, lines at different times: one sale
        _pos_row("T1", "1", "P1", "2026/03/01 10:00:00"),
        _pos_row("T1", "2", "P1", "2026/03/01 10:00:05"),
        _pos_row("T1", "2", "P1", "2026/03/01 10:00:05"),
        # two tills
        _pos_row("T2", "1", "P1", "2026/03/01 10:00:00"),
        _pos_row("T2", "1", "P2", "2026/03/01 11:00:00"),
        # one till, two business days (a count started again)
        _pos_row("T3", "1", "P1", "2026/03/01 10:00:00"),
        _pos_row("T3", "1", "P1", "2026/03/02 09:00:00"),
        # one sale rung across midnight: two days, two minutes (before: held as reused)
        _pos_row("T5", "1", "P1", "2026/03/01 23:59:00"),
        _pos_row("T5", "2", "P1", "2026/03/02 00:01:00"),
        # two days more than an hour apart: a late sale and an early one under one number
        _pos_row("T6", "1", "P1", "2026/03/01 23:30:00"),
        _pos_row("T6", "1", "P1", "2026/03/02 00:31:00"),
        # till blank (code reads it as null) or time unreadable beside a good line
        _pos_row("T4", "1", " ", "2026/03/01 10:00:00"),
        _pos_row("T4", "2", "P1", "not a time"),
        _pos_row("T4", "3", "p1", "2026/03/01 12:00:00"),
    ]
    got = reused_ticket_numbers(pos_lines(spark.createDataFrame(rows, POS_DDL)))
    reused = sorted(r.order_key for r in got.collect())
    assert reused == ["POS:S001:T2", "POS:S001:T3", "POS:S001:T6"]
