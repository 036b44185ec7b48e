"""Order conformance per platform, on a handful of bronze-shaped rows built in the test."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from chispa import assert_df_equality

from lakehouse.config import load_settings
from lakehouse.silver.order_lines import pos_lines
from lakehouse.silver.orders import (
    ORDER_COLUMNS,
    READABLE_CHECKS,
    jd_orders,
    latest_state,
    mall_orders,
    pos_tickets,
    tmall_orders,
)

LINEAGE = (date(2026, 3, 2), "file:/l/f", 2, "h")
LINEAGE_DDL = "_delivery_date date, _source_file string, _line_no int, _record_hash string"


@pytest.fixture(scope="module")
def cfg():
    return load_settings("local").silver


def _pick(df, *cols):
    return df.select(*cols).orderBy("order_key")


TMALL_DDL = (
    "order_no string, buyer_nick string, goods_amount string, shipping_amount string, "
    "paid_amount string, order_status string, receiver_name string, receiver_address string, "
    "receiver_mobile string, created_time string, paid_time string, total_units string, "
    "shop_name string, refund_amount string, modified_time string, " + LINEAGE_DDL
)


def test_tmall_orders_unify_status_money_times_and_keys(spark, cfg):
    rows = [
        # paid, shipping charged, thousands separator, Excel-wrapped order number
        (
            '="2937000000000000001"',
            "小明",
            "1,299.00",
            "10.00",
            "1,209.00",
            "交易成功",
            "张三",
            "浙江省 杭州市 西湖区 文三路1号",
            "+86 138-0013-8000",
            "2026-03-01 23:30:00",
            "2026-03-01 23:40:00",
            "2",
            "旗舰店",
            "0.00",
            "2026-03-03 10:00:00",
            *LINEAGE,
        ),
        # closed after payment: refunded
        (
            "\t2937000000000000002",
            "nick",
            "100.00",
            "0.00",
            "100.00",
            "交易关闭",
            "李四",
            "上海 上海市 徐汇区 路",
            "138****5678",
            "2026-03-01 10:00:00",
            "2026-03-01 10:01:00",
            "1",
            "旗舰店",
            "100.00",
            "2026-03-02 10:00:00",
            *LINEAGE,
        ),
        # closed without payment: cancelled, sold nothing
        (
            "'2937000000000000003",
            "nick",
            "50.00",
            "0.00",
            "50.00",
            "交易关闭",
            "王五",
            "",
            "",
            "2026-03-01 10:00:00",
            "",
            "1",
            "旗舰店",
            "0.00",
            "2026-03-01 11:00:00",
            *LINEAGE,
        ),
    ]
    got = tmall_orders(spark.createDataFrame(rows, TMALL_DDL), cfg)
    assert got.columns == [*ORDER_COLUMNS, *READABLE_CHECKS]
    expected = spark.createDataFrame(
        [
            (
                "TMALL:2937000000000000001",
                "TMALL:旗舰店",
                "13800138000",
                "138****8000",
                "COMPLETED",
                datetime(2026, 3, 1, 15, 40),
                date(2026, 3, 1),
                Decimal("1299.00"),
                Decimal("100.00"),
                Decimal("10.00"),
                Decimal("1209.00"),
                Decimal("0.00"),
                Decimal("1199.00"),
                "浙江省",
                "杭州市",
            ),
            (
                "TMALL:2937000000000000002",
                "TMALL:旗舰店",
                None,
                "138****5678",
                "REFUNDED",
                datetime(2026, 3, 1, 2, 1),
                date(2026, 3, 1),
                Decimal("100.00"),
                Decimal("0.00"),
                Decimal("0.00"),
                Decimal("100.00"),
                Decimal("100.00"),
                Decimal("0.00"),
                "上海",
                "上海市",
            ),
            (
                "TMALL:2937000000000000003",
                "TMALL:旗舰店",
                None,
                None,
                "CANCELLED",
                None,
                date(2026, 3, 1),
                Decimal("50.00"),
                Decimal("0.00"),
                Decimal("0.00"),
                Decimal("50.00"),
                Decimal("0.00"),
                Decimal("0.00"),
                None,
                None,
            ),
        ],
        "order_key string, store_code string, buyer_phone string, buyer_phone_display string, "
        "status string, paid_at timestamp, business_date date, gross_amount decimal(18,2), "
        "discount_amount decimal(18,2), shipping_amount decimal(18,2), "
        "paid_amount decimal(18,2), refunded_amount decimal(18,2), net_sales decimal(18,2), "
        "receiver_province string, receiver_city string",
    )
    assert_df_equality(_pick(got, *expected.columns), expected, ignore_nullable=True)


def test_business_date_is_the_shanghai_date_of_payment(spark, cfg):
    # Paid at 00:30 Shanghai on 3 March = 16:30 UTC on 2 March: the business date is 3 March.
    rows = [
        (
            "1",
            "n",
            "1.00",
            "0.00",
            "1.00",
            "交易成功",
            "",
            "",
            "",
            "2026-03-02 23:50:00",
            "2026-03-03 00:30:00",
            "1",
            "s",
            "0.00",
            "2026-03-03 00:30:00",
            *LINEAGE,
        )
    ]
    got = tmall_orders(spark.createDataFrame(rows, TMALL_DDL), cfg).first()
    assert got.paid_at == datetime(2026, 3, 2, 16, 30)
    assert got.business_date == date(2026, 3, 3)


JD_DDL = (
    "orderId string, pin string, orderState string, orderTotalPrice string, "
    "orderSellerPrice string, orderPayment string, freightPrice string, sellerDiscount string, "
    "orderStartTime string, paymentConfirmTime string, modified string, refundAmount string, "
    "consigneeInfo struct<fullname:string, mobile:string, province:string, city:string, "
    "county:string, fullAddress:string>, "
    "itemInfoList array<struct<skuId:string, outerSkuId:string, skuName:string, jdPrice:string, "
    "itemTotal:string>>, " + LINEAGE_DDL
)


def test_jd_orders_take_nested_consignee_and_count_units(spark, cfg):
    consignee = ("张三", "138****1234", "浙江", "杭州市", "西湖区", "addr")
    items = [("1", "SKU-1", "a", "99.00", "3"), ("2", "SKU-2", "b", "10.00", "1")]
    rows = [
        (
            "230012345678",
            "jd_5f3a",
            "FINISHED_L",
            "299.00",
            "279.00",
            "269.00",
            "0.00",
            "30.00",
            "2026-03-01 10:22:01",
            "2026-03-01 10:23:40",
            "2026-03-02 08:00:00",
            "20.00",
            consignee,
            items,
            *LINEAGE,
        ),
        (
            "230012345679",
            "jd_5f3b",
            "TRADE_CANCELED",
            "10.00",
            "10.00",
            "10.00",
            "0.00",
            "0.00",
            "2026-03-01 10:22:01",
            "",
            "2026-03-02 08:00:00",
            "0.00",
            consignee,
            [],
            *LINEAGE,
        ),
    ]
    got = jd_orders(spark.createDataFrame(rows, JD_DDL), cfg)
    expected = spark.createDataFrame(
        [
            (
                "JD:230012345678",
                "jd_5f3a",
                "JD:POP",
                "COMPLETED",
                4,
                Decimal("269.00"),
                Decimal("20.00"),
                Decimal("249.00"),
                "杭州市",
            ),
            (
                "JD:230012345679",
                "jd_5f3b",
                "JD:POP",
                "CANCELLED",
                0,
                Decimal("10.00"),
                Decimal("0.00"),
                Decimal("0.00"),
                "杭州市",
            ),
        ],
        "order_key string, jd_pin string, store_code string, status string, total_units int, "
        "paid_amount decimal(18,2), refunded_amount decimal(18,2), net_sales decimal(18,2), "
        "receiver_city string",
    )
    assert_df_equality(_pick(got, *expected.columns), expected, ignore_nullable=True)


MALL_DDL = (
    "order_id string, member_id string, unionid string, openid string, phone string, "
    "status string, created_at string, paid_at string, updated_at string, total_fen string, "
    "discount_fen string, paid_fen string, refund_fen string, coupon_code string, "
    "campaign_id string, items array<struct<sku_id:string, qty:string, price_fen:string>>, "
    + LINEAGE_DDL
)


def test_mall_orders_convert_fen_and_keep_utc(spark, cfg):
    rows = [
        (
            "M1",
            "m00012345",
            "oU7x",
            "oX3k",
            "+8613800138000",
            "REFUNDED",
            "2026-03-01T02:22:01Z",
            "2026-03-01T02:23:10Z",
            "2026-03-03T09:00:00Z",
            "29900",
            "3000",
            "26900",
            "26900",
            "C-2603-A",
            "cmp-0007",
            [("SKU-1", "2", "14950")],
            *LINEAGE,
        ),
        (
            "M2",
            None,
            None,
            None,
            None,
            "CREATED",
            "2026-03-01T17:00:00Z",
            None,
            "2026-03-01T17:00:00Z",
            "100",
            "0",
            "0",
            "0",
            None,
            None,
            [],
            *LINEAGE,
        ),
    ]
    got = mall_orders(spark.createDataFrame(rows, MALL_DDL), cfg)
    expected = spark.createDataFrame(
        [
            (
                "MALL:M1",
                "M00012345",
                "13800138000",
                "REFUNDED",
                datetime(2026, 3, 1, 2, 23, 10),
                date(2026, 3, 1),
                Decimal("299.00"),
                Decimal("30.00"),
                Decimal("269.00"),
                Decimal("269.00"),
                Decimal("0.00"),
                2,
                "CMP-0007",
            ),
            (
                "MALL:M2",
                None,
                None,
                "CREATED",
                None,
                date(2026, 3, 2),
                Decimal("1.00"),
                Decimal("0.00"),
                Decimal("0.00"),
                Decimal("0.00"),
                Decimal("0.00"),
                0,
                None,
            ),
        ],
        "order_key string, member_id string, buyer_phone string, status string, "
        "paid_at timestamp, business_date date, gross_amount decimal(18,2), "
        "discount_amount decimal(18,2), paid_amount decimal(18,2), "
        "refunded_amount decimal(18,2), net_sales decimal(18,2), total_units int, "
        "campaign_id string",
    )
    assert_df_equality(_pick(got, *expected.columns), expected, ignore_nullable=True)


def test_a_mall_order_cancelled_after_payment_is_refunded_as_elsewhere(spark, cfg):
    """conf/silver.yml: a closed / cancelled order becomes REFUNDED when it was paid, CANCELLED
    when it was not. Before: the mall's CANCELLED mapped straight to CANCELLED, so a paid one
    kept its units as sold in the marts (only REFUNDED zeroes them), with no sales."""

    def cancelled(order_id: str, paid_at: str | None, refund: str) -> tuple:
        created, updated = "2026-03-01T02:22:01Z", "2026-03-02T09:00:00Z"
        amounts = ("29900", "3000", "26900", refund)
        lines = [("SKU-1", "2", "14950")]
        return (order_id, None, None, None, None, "CANCELLED", created, paid_at, updated,
                *amounts, None, None, lines, *LINEAGE)  # fmt: skip

    rows = [cancelled("M3", "2026-03-01T02:23:10Z", "26900"), cancelled("M4", None, "0")]
    got = mall_orders(spark.createDataFrame(rows, MALL_DDL), cfg)
    assert sorted((r.order_key, r.status, str(r.net_sales)) for r in got.collect()) == [
        ("MALL:M3", "REFUNDED", "0.00"),
        ("MALL:M4", "CANCELLED", "0.00"),
    ]


POS_DDL = (
    "store_code string, pos_id string, ticket_no string, line_no string, txn_time string, "
    "cashier_id string, member_card_no string, member_phone string, barcode string, "
    "qty string, unit_price string, discount string, amount string, pay_method string, "
    "orig_ticket_no string, " + LINEAGE_DDL
)


def test_pos_tickets_sum_lines_and_returns_lower_net_sales(spark, cfg):
    rows = [
        (
            "S001",
            "P1",
            "T1",
            "1",
            "2026/03/01 10:00:00",
            "C1",
            "",
            "138-0013-8000",
            "6901234567892",
            "2",
            "50.00",
            "10.00",
            "90.00",
            "WECHAT",
            "",
            *LINEAGE,
        ),
        (
            "S001",
            "P1",
            "T1",
            "2",
            "2026/03/01 10:00:00",
            "C1",
            "",
            "138-0013-8000",
            "6901234567893",
            "1",
            "20.00",
            "0.00",
            "20.00",
            "WECHAT",
            "",
            *LINEAGE,
        ),
        (
            "s001 ",
            "P1",
            "T9",
            "1",
            "2026/03/05 09:00:00",
            "C1",
            "",
            "",
            "6901234567892",
            "-1",
            "50.00",
            "5.00",
            "-45.00",
            "WECHAT",
            "T1",
            *LINEAGE,
        ),
    ]
    lines = pos_lines(spark.createDataFrame(rows, POS_DDL))
    assert {r.orig_order_key for r in lines.collect()} == {None, "POS:S001:T1"}
    got = pos_tickets(lines)
    expected = spark.createDataFrame(
        [
            (
                "POS:S001:T1",
                "S001",
                "COMPLETED",
                "13800138000",
                date(2026, 3, 1),
                Decimal("120.00"),
                Decimal("10.00"),
                Decimal("110.00"),
                Decimal("0.00"),
                Decimal("110.00"),
                3,
            ),
            (
                "POS:S001:T9",
                "S001",
                "REFUNDED",
                None,
                date(2026, 3, 5),
                Decimal("0.00"),
                Decimal("0.00"),
                Decimal("0.00"),
                Decimal("45.00"),
                Decimal("-45.00"),
                -1,
            ),
        ],
        "order_key string, store_code string, status string, buyer_phone string, "
        "business_date date, gross_amount decimal(18,2), discount_amount decimal(18,2), "
        "paid_amount decimal(18,2), refunded_amount decimal(18,2), net_sales decimal(18,2), "
        "total_units int",
    )
    assert_df_equality(_pick(got, *expected.columns), expected, ignore_nullable=True)


EDGE = "9999999999999999.99"  # the largest decimal(18,2)


def test_totals_beyond_the_money_type_are_null_not_an_error(spark, cfg):
    """Sums and differences of amounts at the edge of decimal(18,2) overflow it. Under ANSI a
    cast would fail the whole job; instead the total is null, and a POS ticket whose totals do
    not fit has no readable paid amount, so the orders gate quarantines it."""
    tmall = spark.createDataFrame(
        [
            (
                "2937000000000000009",
                "nick",
                EDGE,
                "100.00",
                "89.00",
                "交易成功",
                "张三",
                "浙江省 杭州市 西湖区 路1号",
                "",
                "2026-03-01 10:00:00",
                "2026-03-01 10:01:00",
                "1",
                "旗舰店",
                "0.00",
                "2026-03-01 10:01:00",
                *LINEAGE,
            )
        ],
        TMALL_DDL,
    )
    [order] = tmall_orders(tmall, cfg).collect()
    assert (order.gross_amount, order.discount_amount) == (Decimal(EDGE), None)

    line = ("S001", "P1", "T1", "1", "2026/03/01 10:00:00", "C1", "", "", "6901234567892", "1")
    pos = spark.createDataFrame(
        [
            (*line, "10.00", "0.00", EDGE, "CASH", "", *LINEAGE),
            (*line[:3], "2", *line[4:], "10.00", "0.00", EDGE, "CASH", "", *LINEAGE),
        ],
        POS_DDL,
    )
    [ticket] = pos_tickets(pos_lines(pos)).collect()
    assert (ticket.order_key, ticket.paid_amount, ticket.gross_amount) == (
        "POS:S001:T1",
        None,
        Decimal("20.00"),
    )


def test_units_beyond_an_int_are_null_not_an_error(spark, cfg):
    """Two JD items of 2,000,000,000 units each: readable ints whose sum is not. Under ANSI an
    int sum would fail the whole job; the total is null and the lines' rules judge them."""
    consignee = ("张三", "13800138000", "浙江", "杭州市", "西湖区", "addr")
    items = [("1", "SKU-1", "a", "1.00", "2000000000"), ("2", "SKU-2", "b", "1.00", "2000000000")]
    row = ("230012345670", "jd_5f3c", "FINISHED_L", "1.00", "1.00", "1.00", "0.00", "0.00")
    times = ("2026-03-01 10:22:01", "2026-03-01 10:23:40", "2026-03-02 08:00:00", "0.00")
    jd = spark.createDataFrame([(*row, *times, consignee, items, *LINEAGE)], JD_DDL)
    [order] = jd_orders(jd, cfg).collect()
    assert (order.order_key, order.total_units) == ("JD:230012345670", None)


def test_a_ticket_line_delivered_twice_counts_once_as_its_published_version(spark, cfg):
    """Line 1 of ticket T1 twice in one file with other content: silver.order_lines keeps the
    later line (latest state per order_key and line_id), so the ticket must be summed from that
    line only, or the ticket's total would hold money no published line has."""
    line = ("S001", "P1", "T1", "1", "2026/03/01 10:00:00", "C1", "", "", "6901234567892", "1")
    first = (date(2026, 3, 2), "file:/l/f", 2, "h1")
    later = (date(2026, 3, 2), "file:/l/f", 3, "h2")
    pos = spark.createDataFrame(
        [
            (*line, "89.00", "0.00", "89.00", "CASH", "", *first),
            (*line, "149.00", "0.00", "149.00", "CASH", "", *later),
        ],
        POS_DDL,
    )
    [ticket] = pos_tickets(pos_lines(pos)).collect()
    assert (ticket.paid_amount, ticket.gross_amount, ticket.total_units, ticket._line_no) == (
        Decimal("149.00"),
        Decimal("149.00"),
        1,
        3,
    )


STATE_ROWS = (
    "key string, updated_at timestamp, _delivery_date date, _source_file string, "
    "_line_no int, state string"
)


def test_latest_state_wins_and_a_correction_wins_a_tie(spark):
    df = spark.createDataFrame(
        [
            ("A", datetime(2026, 3, 1), date(2026, 3, 1), "f1", 2, "created"),
            ("A", datetime(2026, 3, 2), date(2026, 3, 2), "f2", 5, "paid"),
            ("A", datetime(2026, 3, 1, 12), date(2026, 3, 3), "f3", 1, "late but older"),
            ("B", datetime(2026, 3, 1), date(2026, 3, 1), "f1", 3, "original"),
            ("B", datetime(2026, 3, 1), date(2026, 3, 3), "f1_2", 3, "corrected"),
        ],
        STATE_ROWS,
    )
    got = latest_state(df, "key").select("key", "state").orderBy("key")
    expected = spark.createDataFrame(
        [("A", "paid"), ("B", "corrected")], "key string, state string"
    )
    assert_df_equality(got, expected)


def test_latest_state_ties_on_export_parts_go_to_the_later_part_by_number(spark):
    """`tmall_orders_<date>_10.csv` comes after `_9` (as strings it sorts before it)."""
    same_time, day = datetime(2026, 3, 2, 10), date(2026, 3, 2)
    folder = "tmall_orders/dt=2026-03-02/"
    df = spark.createDataFrame(
        [
            ("A", same_time, day, folder + "tmall_orders_20260302_9.csv", 7, "part 9"),
            ("A", same_time, day, folder + "tmall_orders_20260302_10.csv", 2, "part 10"),
            ("B", same_time, day, folder + "tmall_orders_20260302.csv", 9, "first part"),
            ("B", same_time, day, folder + "tmall_orders_20260302_2.csv", 1, "part 2"),
        ],
        STATE_ROWS,
    )
    got = latest_state(df, "key").select("key", "state").orderBy("key")
    expected = spark.createDataFrame(
        [("A", "part 10"), ("B", "part 2")], "key string, state string"
    )
    assert_df_equality(got, expected)


def _tmall_row(paid_time: str, shipping: str, refund: str, no: str) -> tuple:
    return (
        no, "nick", "100.00", shipping, "100.00", "交易关闭", "李四", "", "",
        "2026-03-01 10:00:00", paid_time, "1", "旗舰店", refund, "2026-03-02 10:00:00", *LINEAGE,
    )  # fmt: skip


def test_a_tmall_order_with_a_blank_shop_name_keeps_a_store_code(spark, cfg):
    """Before: store_code was null; gold.store_daily's gate failed on it (store_code_present and
    the reconciliation with silver) on every run while the order was in silver."""
    shop = TMALL_DDL.split(", ").index("shop_name string")
    rows = []
    for no, shop_name in (("1", "旗舰店"), ("2", ""), ("3", "  ")):
        row = list(_tmall_row("", "", "", no))
        row[shop] = shop_name
        rows.append(tuple(row))
    got = tmall_orders(spark.createDataFrame(rows, TMALL_DDL), cfg)
    assert sorted((r.source_order_no, r.store_code, r.shop_name) for r in got.collect()) == [
        ("1", "TMALL:旗舰店", "旗舰店"),
        ("2", "TMALL:(no shop name)", None),
        ("3", "TMALL:(no shop name)", None),
    ]


def test_a_value_written_but_unreadable_is_flagged_for_the_gate_not_read_as_missing(spark, cfg):
    """Before: `2026-02-30` as the payment time became no payment (a closed order cancelled,
    net sales 0) and `N/A` as the refund was never subtracted; no rule saw either."""
    rows = [
        _tmall_row("2026-03-01 10:01:00", "0.00", "100.00", "1"),  # all readable
        _tmall_row("", "", "", "2"),  # blank: unpaid, no fee, no refund, as delivered
        _tmall_row("2026-02-30 10:01:00", "0.00", "0.00", "3"),
        _tmall_row("2026-03-01 10:01:00", "ten", "0.00", "4"),
        _tmall_row("2026-03-01 10:01:00", "0.00", "N/A", "5"),
    ]
    got = tmall_orders(spark.createDataFrame(rows, TMALL_DDL), cfg)
    flags = {
        r.source_order_no: (r._paid_at_read, r._shipping_read, r._refund_read)
        for r in got.collect()
    }
    assert flags == {
        "1": (True, True, True),
        "2": (True, True, True),
        "3": (None, True, True),
        "4": (True, None, True),
        "5": (True, True, None),
    }
