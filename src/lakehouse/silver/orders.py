"""One order model across Tmall, JD, the own mall and store POS tickets.

Each `*_orders` function takes the platform's bronze rows and returns rows of the one silver
shape (`ORDER_COLUMNS`): keys, buyer identifiers normalised, unified status, UTC times, the
Asia/Shanghai business date, and money in yuan as decimal(18,2). No row is dropped here:
judging values (negative, absurd, future) is the rules' job, deduplication is `latest_state`'s.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.config import SilverSettings
from lakehouse.silver import normalise as n
from lakehouse.tables import file_order


def _zero() -> Column:
    """0.00 yuan (a function: a Column needs a live session, a module constant would not)."""
    return F.lit(0).cast(n.MONEY)


ORDER_COLUMNS = [
    "order_key",
    "platform",
    "channel",
    "source_order_no",
    "store_code",
    "shop_name",
    "buyer_nick",
    "jd_pin",
    "member_id",
    "member_card_no",
    "unionid",
    "openid",
    "buyer_phone",
    "buyer_phone_display",
    "receiver_name",
    "receiver_province",
    "receiver_city",
    "receiver_district",
    "source_status",
    "status",
    "created_at",
    "paid_at",
    "updated_at",
    "business_date",
    "gross_amount",
    "discount_amount",
    "shipping_amount",
    "paid_amount",
    "refunded_amount",
    "net_sales",
    "total_units",
    "coupon_code",
    "campaign_id",
    "_delivery_date",
    "_source_file",
    "_line_no",
    "_record_hash",
]

LINEAGE = ["_delivery_date", "_source_file", "_line_no", "_record_hash"]

# Beside ORDER_COLUMNS until the orders gate: True, or null where the source wrote a value its
# parser cannot read (`2026-02-30 10:00:00`, `N/A`). Read as missing, such a value would
# silently change the order (an unpaid, cancelled order; a refund never subtracted; no
# shipping), so the gate's `*_readable` rules quarantine the row; silver.orders never holds them.
READABLE_CHECKS = ["_paid_at_read", "_shipping_read", "_refund_read"]


def _readable_checks(
    paid_at: tuple[Column, Column],
    shipping: tuple[Column, Column] | None,
    refund: tuple[Column, Column],
) -> list[Column]:
    return [
        n.readable(*paid_at).alias("_paid_at_read"),
        (n.readable(*shipping) if shipping else F.lit(True)).alias("_shipping_read"),
        n.readable(*refund).alias("_refund_read"),
    ]


def _status(platform: str, source_status: Column, paid_at: Column, cfg: SilverSettings) -> Column:
    """Map the platform's status; CLOSED means refunded if it was paid, cancelled if not."""
    mapped = F.create_map(*[F.lit(x) for kv in cfg.status_map[platform].items() for x in kv])[
        F.trim(source_status)
    ]
    return F.when(
        mapped == "CLOSED", F.when(paid_at.isNotNull(), "REFUNDED").otherwise("CANCELLED")
    ).otherwise(mapped)


def _net_sales(paid: Column, shipping: Column, refunded: Column, paid_at: Column) -> Column:
    """paid − shipping − refunded; an order never paid sold nothing."""
    amount = (
        F.coalesce(paid, _zero()) - F.coalesce(shipping, _zero()) - F.coalesce(refunded, _zero())
    )
    return F.when(paid_at.isNull(), _zero()).otherwise(amount).try_cast(n.MONEY)


def _units(items: Column, quantity_field: str) -> Column:
    """Units of an order's nested items: summed as a long, null when the total is no int.

    Why: each item's quantity is a readable int, but absurd ones (2,000,000,000 twice) overflow
    an int sum, and under ANSI that would fail the whole job; the items' quantity rules
    quarantine such an order.
    """
    total = F.aggregate(
        F.coalesce(items, F.array()),
        F.lit(0).cast("long"),
        lambda acc, item: acc + F.coalesce(n.quantity(item[quantity_field]), F.lit(0)),
    )
    return total.try_cast("int")


def _business_date(paid_at: Column, created_at: Column) -> Column:
    return n.shanghai_date(F.coalesce(paid_at, created_at))


def _finish(df: DataFrame) -> DataFrame:
    """Add the derived columns every platform shares and fix the column order."""
    return df.withColumns(
        {
            "business_date": _business_date(F.col("paid_at"), F.col("created_at")),
            "net_sales": _net_sales(
                F.col("paid_amount"),
                F.col("shipping_amount"),
                F.col("refunded_amount"),
                F.col("paid_at"),
            ),
        }
    ).select(*ORDER_COLUMNS, *READABLE_CHECKS)


def _address_part(address: Column, index: int) -> Column:
    """Tmall's 收货地址 is `省 市 区 详细地址`, separated by spaces."""
    return n.non_blank(F.get(F.split(n.non_blank(address), r"\s+"), index))


# The shop of a Tmall order whose 店铺名称 is blank. Why: a null store_code matches no store in
# gold, whose gate then stops the store marts for as long as the order is in silver; the order
# keeps its sales under an ONLINE store of its own instead (silver.master adds its row).
NO_SHOP_NAME = "(no shop name)"


def tmall_orders(bronze: DataFrame, cfg: SilverSettings) -> DataFrame:
    """Tmall seller-center export rows → silver orders."""
    paid_at = n.shanghai_local_to_utc(F.col("paid_time"))
    order_no = n.order_number(F.col("order_no"))
    shop = n.non_blank(F.col("shop_name"))
    return _finish(
        bronze.select(
            F.concat(F.lit("TMALL:"), order_no).alias("order_key"),
            F.lit("TMALL").alias("platform"),
            F.lit("ONLINE").alias("channel"),
            order_no.alias("source_order_no"),
            F.concat(
                F.lit(cfg.online_store_prefix["TMALL"]), F.coalesce(shop, F.lit(NO_SHOP_NAME))
            ).alias("store_code"),
            shop.alias("shop_name"),
            n.non_blank(F.col("buyer_nick")).alias("buyer_nick"),
            F.lit(None).cast("string").alias("jd_pin"),
            F.lit(None).cast("string").alias("member_id"),
            F.lit(None).cast("string").alias("member_card_no"),
            F.lit(None).cast("string").alias("unionid"),
            F.lit(None).cast("string").alias("openid"),
            n.phone(F.col("receiver_mobile")).alias("buyer_phone"),
            n.phone_display(F.col("receiver_mobile")).alias("buyer_phone_display"),
            n.non_blank(F.col("receiver_name")).alias("receiver_name"),
            _address_part(F.col("receiver_address"), 0).alias("receiver_province"),
            _address_part(F.col("receiver_address"), 1).alias("receiver_city"),
            _address_part(F.col("receiver_address"), 2).alias("receiver_district"),
            F.col("order_status").alias("source_status"),
            _status("TMALL", F.col("order_status"), paid_at, cfg).alias("status"),
            n.shanghai_local_to_utc(F.col("created_time")).alias("created_at"),
            paid_at.alias("paid_at"),
            n.shanghai_local_to_utc(F.col("modified_time")).alias("updated_at"),
            n.yuan(F.col("goods_amount")).alias("gross_amount"),
            (
                n.yuan(F.col("goods_amount"))
                + n.yuan(F.col("shipping_amount"))
                - n.yuan(F.col("paid_amount"))
            )
            .try_cast(n.MONEY)  # absurd amounts can overflow; a cast would fail the job (ANSI)
            .alias("discount_amount"),
            n.yuan(F.col("shipping_amount")).alias("shipping_amount"),
            n.yuan(F.col("paid_amount")).alias("paid_amount"),
            n.yuan(F.col("refund_amount")).alias("refunded_amount"),
            n.quantity(F.col("total_units")).alias("total_units"),
            F.lit(None).cast("string").alias("coupon_code"),
            F.lit(None).cast("string").alias("campaign_id"),
            *LINEAGE,
            *_readable_checks(
                (F.col("paid_time"), paid_at),
                (F.col("shipping_amount"), n.yuan(F.col("shipping_amount"))),
                (F.col("refund_amount"), n.yuan(F.col("refund_amount"))),
            ),
        )
    )


def jd_orders(bronze: DataFrame, cfg: SilverSettings) -> DataFrame:
    """JD POP order dump rows → silver orders (items are order lines' business)."""
    paid_at = n.shanghai_local_to_utc(F.col("paymentConfirmTime"))
    order_no = n.order_number(F.col("orderId"))
    mobile = F.col("consigneeInfo.mobile")
    units = _units(F.col("itemInfoList"), "itemTotal")
    return _finish(
        bronze.select(
            F.concat(F.lit("JD:"), order_no).alias("order_key"),
            F.lit("JD").alias("platform"),
            F.lit("ONLINE").alias("channel"),
            order_no.alias("source_order_no"),
            F.lit(cfg.online_store_prefix["JD"] + cfg.online_default_shop["JD"]).alias(
                "store_code"
            ),
            F.lit(cfg.online_default_shop["JD"]).alias("shop_name"),
            F.lit(None).cast("string").alias("buyer_nick"),
            n.non_blank(F.col("pin")).alias("jd_pin"),
            F.lit(None).cast("string").alias("member_id"),
            F.lit(None).cast("string").alias("member_card_no"),
            F.lit(None).cast("string").alias("unionid"),
            F.lit(None).cast("string").alias("openid"),
            n.phone(mobile).alias("buyer_phone"),
            n.phone_display(mobile).alias("buyer_phone_display"),
            n.non_blank(F.col("consigneeInfo.fullname")).alias("receiver_name"),
            n.non_blank(F.col("consigneeInfo.province")).alias("receiver_province"),
            n.non_blank(F.col("consigneeInfo.city")).alias("receiver_city"),
            n.non_blank(F.col("consigneeInfo.county")).alias("receiver_district"),
            F.col("orderState").alias("source_status"),
            _status("JD", F.col("orderState"), paid_at, cfg).alias("status"),
            n.shanghai_local_to_utc(F.col("orderStartTime")).alias("created_at"),
            paid_at.alias("paid_at"),
            n.shanghai_local_to_utc(F.col("modified")).alias("updated_at"),
            n.yuan(F.col("orderTotalPrice")).alias("gross_amount"),
            n.yuan(F.col("sellerDiscount")).alias("discount_amount"),
            n.yuan(F.col("freightPrice")).alias("shipping_amount"),
            n.yuan(F.col("orderPayment")).alias("paid_amount"),
            n.yuan(F.col("refundAmount")).alias("refunded_amount"),
            units.alias("total_units"),
            F.lit(None).cast("string").alias("coupon_code"),
            F.lit(None).cast("string").alias("campaign_id"),
            *LINEAGE,
            *_readable_checks(
                (F.col("paymentConfirmTime"), paid_at),
                (F.col("freightPrice"), n.yuan(F.col("freightPrice"))),
                (F.col("refundAmount"), n.yuan(F.col("refundAmount"))),
            ),
        )
    )


def mall_orders(bronze: DataFrame, cfg: SilverSettings) -> DataFrame:
    """Own mini-program / web mall rows (fen, UTC) → silver orders."""
    paid_at = n.utc_iso_to_timestamp(F.col("paid_at"))
    order_no = n.non_blank(F.col("order_id"))
    units = _units(F.col("items"), "qty")
    return _finish(
        bronze.select(
            F.concat(F.lit("MALL:"), order_no).alias("order_key"),
            F.lit("MALL").alias("platform"),
            F.lit("ONLINE").alias("channel"),
            order_no.alias("source_order_no"),
            F.lit(cfg.online_store_prefix["MALL"] + cfg.online_default_shop["MALL"]).alias(
                "store_code"
            ),
            F.lit(cfg.online_default_shop["MALL"]).alias("shop_name"),
            F.lit(None).cast("string").alias("buyer_nick"),
            F.lit(None).cast("string").alias("jd_pin"),
            n.code(F.col("member_id")).alias("member_id"),
            F.lit(None).cast("string").alias("member_card_no"),
            n.non_blank(F.col("unionid")).alias("unionid"),
            n.non_blank(F.col("openid")).alias("openid"),
            n.phone(F.col("phone")).alias("buyer_phone"),
            n.phone_display(F.col("phone")).alias("buyer_phone_display"),
            F.lit(None).cast("string").alias("receiver_name"),
            F.lit(None).cast("string").alias("receiver_province"),
            F.lit(None).cast("string").alias("receiver_city"),
            F.lit(None).cast("string").alias("receiver_district"),
            F.col("status").alias("source_status"),
            _status("MALL", F.col("status"), paid_at, cfg).alias("status"),
            n.utc_iso_to_timestamp(F.col("created_at")).alias("created_at"),
            paid_at.alias("paid_at"),
            n.utc_iso_to_timestamp(F.col("updated_at")).alias("updated_at"),
            n.fen_to_yuan(F.col("total_fen")).alias("gross_amount"),
            n.fen_to_yuan(F.col("discount_fen")).alias("discount_amount"),
            _zero().alias("shipping_amount"),
            n.fen_to_yuan(F.col("paid_fen")).alias("paid_amount"),
            n.fen_to_yuan(F.col("refund_fen")).alias("refunded_amount"),
            units.alias("total_units"),
            n.non_blank(F.col("coupon_code")).alias("coupon_code"),
            n.code(F.col("campaign_id")).alias("campaign_id"),
            *LINEAGE,
            *_readable_checks(
                (F.col("paid_at"), paid_at),
                None,
                (F.col("refund_fen"), n.fen_to_yuan(F.col("refund_fen"))),
            ),
        )
    )


def pos_tickets(lines: DataFrame) -> DataFrame:
    """Store POS line items → one silver order per ticket.

    A ticket's sales lines (qty > 0) make its paid amount, its return lines (qty < 0) its
    refunded amount, so a return ticket lowers net sales on the day the goods came back.
    Expects lines as `pos_lines` conforms them (typed, normalised).

    The lines may span deliveries (a line delivered after the rest of its ticket): the ticket
    is the sum of them all, with the newest delivery's lineage. It was created (and paid) when
    its first line was rung and last changed when its last line was: a late line rung before
    the others must not make the summed ticket older than the one silver holds, which the
    MERGE (newest `updated_at` wins) would then keep, losing the line from the total.

    A line number delivered twice for one ticket (a key repeated with other content, a
    corrected file in the same delivery) counts once, in the version silver.order_lines keeps
    (the later delivery, file, line): a ticket is the sum of its published lines.

    The totals are summed wide and then fitted to decimal(18,2). A ticket whose totals do not
    fit (absurd line amounts) gets no paid amount, so the orders gate quarantines it
    (`paid_amount_readable`): a plain cast would fail the whole job under ANSI, and a total
    silently dropped to null or 0 would publish a wrong ticket.
    """
    versions = Window.partitionBy("order_key", "line_no").orderBy(
        F.col("_delivery_date").desc(), file_order().desc(), F.col("_line_no").desc()
    )
    keyless = F.col("order_key").isNull() | F.col("line_no").isNull()  # left to the rules
    lines = (
        lines.withColumn("_version", F.row_number().over(versions))
        .where(keyless | (F.col("_version") == 1))
        .drop("_version")
    )
    # The ticket's lineage is its newest delivery's (silver keeps the newest delivered state);
    # within it, the first line.
    w_first = Window.partitionBy("order_key").orderBy(
        F.col("_delivery_date").desc(), "line_no", "_line_no"
    )
    first = (
        lines.withColumn("_n", F.row_number().over(w_first))
        .where("_n = 1")
        .select("order_key", "ticket_no", "store_code", "txn_at", *LINEAGE)
    )
    sums = lines.groupBy("order_key").agg(
        F.sum(F.when(F.col("quantity") > 0, F.col("quantity") * F.col("unit_price"))).alias(
            "_gross"
        ),
        F.sum(F.when(F.col("quantity") > 0, F.col("discount"))).alias("_discount"),
        F.sum(F.when(F.col("quantity") > 0, F.col("line_amount"))).alias("_paid"),
        (-F.sum(F.when(F.col("quantity") < 0, F.col("line_amount")))).alias("_refunded"),
        F.sum("quantity").cast("int").alias("total_units"),
        F.min("txn_at").alias("_first_rung"),
        F.max("txn_at").alias("_last_rung"),
        F.max("member_card_no").alias("member_card_no"),
        F.max("member_phone").alias("buyer_phone"),
        F.max("member_phone_display").alias("buyer_phone_display"),
    )
    totals = {
        name: F.coalesce(F.col(wide), F.lit(0)).try_cast(n.MONEY)
        for name, wide in (
            ("gross_amount", "_gross"),
            ("discount_amount", "_discount"),
            ("paid_amount", "_paid"),
            ("refunded_amount", "_refunded"),
        )
    }
    fits = reduce(Column.__and__, [total.isNotNull() for total in totals.values()])
    totals["paid_amount"] = F.when(fits, totals["paid_amount"])
    paid = F.coalesce(F.col("_paid"), F.lit(0)) > 0
    orders = first.join(sums, "order_key").select(
        "order_key",
        F.lit("POS").alias("platform"),
        F.lit("STORE").alias("channel"),
        F.col("ticket_no").alias("source_order_no"),
        "store_code",
        F.lit(None).cast("string").alias("shop_name"),
        F.lit(None).cast("string").alias("buyer_nick"),
        F.lit(None).cast("string").alias("jd_pin"),
        F.lit(None).cast("string").alias("member_id"),
        "member_card_no",
        F.lit(None).cast("string").alias("unionid"),
        F.lit(None).cast("string").alias("openid"),
        "buyer_phone",
        "buyer_phone_display",
        F.lit(None).cast("string").alias("receiver_name"),
        F.lit(None).cast("string").alias("receiver_province"),
        F.lit(None).cast("string").alias("receiver_city"),
        F.lit(None).cast("string").alias("receiver_district"),
        F.lit(None).cast("string").alias("source_status"),
        F.when(paid, "COMPLETED").otherwise("REFUNDED").alias("status"),
        F.coalesce("_first_rung", "txn_at").alias("created_at"),
        F.coalesce("_first_rung", "txn_at").alias("paid_at"),
        F.coalesce("_last_rung", "txn_at").alias("updated_at"),
        totals["gross_amount"].alias("gross_amount"),
        totals["discount_amount"].alias("discount_amount"),
        _zero().alias("shipping_amount"),
        totals["paid_amount"].alias("paid_amount"),
        totals["refunded_amount"].alias("refunded_amount"),
        "total_units",
        F.lit(None).cast("string").alias("coupon_code"),
        F.lit(None).cast("string").alias("campaign_id"),
        *LINEAGE,
        *[F.lit(True).alias(c) for c in READABLE_CHECKS],  # unreadable POS values: other rules
    )
    return _finish(orders)


def latest_state(df: DataFrame, key: str, change_time: str = "updated_at") -> DataFrame:
    """One row per key: the latest change wins; at equal times the later delivery (a corrected
    file) wins, then the later file name (natural order: part `_10` after `_9`) and line, so
    the pick is deterministic."""
    order = [
        F.col(change_time).desc_nulls_last(),
        F.col("_delivery_date").desc(),
        file_order().desc(),
        F.col("_line_no").desc(),
    ]
    w = Window.partitionBy(key).orderBy(*order)
    return df.withColumn("_rank", F.row_number().over(w)).where("_rank = 1").drop("_rank")
