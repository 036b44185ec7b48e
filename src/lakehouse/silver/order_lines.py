"""Order lines of every platform in one shape (`LINE_COLUMNS`).

The SKU is left as the platform's code here (`platform_sku_code`); mapping it to the internal
`sku_id` needs the day's SKU map and products, which the silver job joins in. JD and the mall
report refunds per order, not per line: their line refund columns stay null rather than guessed.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.silver import normalise as n

LINE_COLUMNS = [
    "order_key",
    "line_id",
    "line_no",
    "platform",
    "platform_sku_code",
    "outer_sku_id",
    "product_title",
    "quantity",
    "unit_price",
    "line_amount",
    "refund_status",
    "refunded_quantity",
    "refunded_amount",
    "orig_order_key",
    "_delivery_date",
    "_source_file",
    "_line_no",
    "_record_hash",
]
LINEAGE = ["_delivery_date", "_source_file", "_line_no", "_record_hash"]
REFUND_STATUS = {"无退款": "NONE", "退款中": "PENDING", "退款成功": "REFUNDED"}


def _line_amount(quantity: Column, unit_price: Column) -> Column:
    """quantity x unit price in yuan; null when it does not fit decimal(18,2).

    Why try_cast: an absurd price (up to 9999999999999999.99 is a readable yuan) times a
    quantity can overflow the money type, and under ANSI a plain cast would fail the whole
    job. The line's price and quantity rules quarantine such a line.
    """
    return (quantity * unit_price).try_cast(n.MONEY)


def refunded_units(status: Column, quantity: Column, unit_price: Column, refund: Column) -> Column:
    """Units a Tmall line gave back: 0 unless 退款成功; then 退款金额 / 价格 rounded half up,
    at most the line's quantity; all of them when the amount (not above 0) or price does not say.

    Why: the export gives a refund status and amount but no refunded quantity, and 退款成功
    also ends a partial refund (one unit of three, a price adjustment). Counting every unit
    of such a line as returned would erase units that were kept and paid for.
    """
    said = F.when(refund > 0, refund)  # 0.00 or a negative amount says nothing
    estimate = F.round(F.try_divide(said, F.nullif(unit_price, F.lit(0))), 0).try_cast("int")
    units = F.when(quantity.isNull() | estimate.isNull(), quantity).otherwise(
        F.least(F.greatest(estimate, F.lit(0)), quantity)
    )
    return F.when(status == "REFUNDED", units).otherwise(F.lit(0))


def refunded_money(status: Column, refund: Column) -> Column:
    """What a Tmall line gave back in yuan: 退款金额 once the refund succeeded (退款成功), else 0.

    Why: 退款中 delivers the amount asked for, not money returned; counted as refunded, it took
    its share of the order's net sales away from the line (and from the buyer's preferences)
    while the refund could still be refused. As `refunded_units`: nothing back until then.
    """
    return F.when(status == "REFUNDED", refund).otherwise(F.lit(0).cast(n.MONEY))


def tmall_lines(bronze_items: DataFrame) -> DataFrame:
    """Tmall line export rows → order lines; 子订单编号 is the line's own id."""
    order_key = F.concat(F.lit("TMALL:"), n.order_number(F.col("order_no")))
    line_id = n.order_number(F.col("line_no"))
    qty = n.quantity(F.col("quantity"))
    price = n.yuan(F.col("unit_price"))
    refund = n.yuan(F.col("refund_amount"))
    status = F.create_map(*[F.lit(x) for kv in REFUND_STATUS.items() for x in kv])[
        F.trim(F.col("refund_status"))
    ]
    lines = bronze_items.select(
        order_key.alias("order_key"),
        line_id.alias("line_id"),
        F.lit("TMALL").alias("platform"),
        n.code(F.col("merchant_sku_code")).alias("platform_sku_code"),
        F.lit(None).cast("string").alias("outer_sku_id"),
        n.non_blank(F.col("title")).alias("product_title"),
        qty.alias("quantity"),
        price.alias("unit_price"),
        _line_amount(qty, price).alias("line_amount"),
        status.alias("refund_status"),
        refunded_units(status, qty, price, refund).alias("refunded_quantity"),
        refunded_money(status, refund).alias("refunded_amount"),
        F.lit(None).cast("string").alias("orig_order_key"),
        *LINEAGE,
    )
    # Numbered within the export that delivered them: a line held for its order and judged
    # again on a later day (sales_job.held_tmall_lines) keeps its number, and a rerun of that
    # day, with nothing held any more, numbers today's lines as the first run did.
    numbering = Window.partitionBy("order_key", "_delivery_date").orderBy(
        F.col("line_id").asc_nulls_last()
    )
    return lines.withColumn("line_no", F.dense_rank().over(numbering)).select(*LINE_COLUMNS)


def _nested_lines(
    orders: DataFrame,
    platform: str,
    items: str,
    fields: dict[str, str | None],
    price: Column,
) -> DataFrame:
    """Explode an order's item array into lines numbered by their position.

    `fields` names the item fields for sku, outer_sku, title and qty (None: not delivered).
    """

    def item(name: str) -> Column:
        field = fields.get(name)
        return F.col(f"_item.{field}") if field else F.lit(None).cast("string")

    exploded = orders.select(
        "order_key", *LINEAGE, F.posexplode_outer(F.col(items)).alias("_pos", "_item")
    ).where(F.col("_item").isNotNull())
    quantity = n.quantity(item("qty"))
    return exploded.select(
        "order_key",
        (F.col("_pos") + 1).cast("string").alias("line_id"),
        (F.col("_pos") + 1).alias("line_no"),
        F.lit(platform).alias("platform"),
        n.code(item("sku")).alias("platform_sku_code"),
        n.code(item("outer_sku")).alias("outer_sku_id"),
        n.non_blank(item("title")).alias("product_title"),
        quantity.alias("quantity"),
        price.alias("unit_price"),
        _line_amount(quantity, price).alias("line_amount"),
        F.lit(None).cast("string").alias("refund_status"),
        F.lit(None).cast("int").alias("refunded_quantity"),
        F.lit(None).cast(n.MONEY).alias("refunded_amount"),
        F.lit(None).cast("string").alias("orig_order_key"),
        *LINEAGE,
    ).select(*LINE_COLUMNS)


def jd_lines(bronze_orders: DataFrame) -> DataFrame:
    """JD orders' nested items → lines keyed by JD's skuId; outerSkuId kept beside it."""
    orders = bronze_orders.withColumn(
        "order_key", F.concat(F.lit("JD:"), n.order_number(F.col("orderId")))
    )
    fields = {"sku": "skuId", "outer_sku": "outerSkuId", "title": "skuName", "qty": "itemTotal"}
    return _nested_lines(orders, "JD", "itemInfoList", fields, n.yuan(F.col("_item.jdPrice")))


def mall_lines(bronze_orders: DataFrame) -> DataFrame:
    """Own mall orders' nested items (price in fen) → lines keyed by the internal sku_id."""
    orders = bronze_orders.withColumn(
        "order_key", F.concat(F.lit("MALL:"), n.non_blank(F.col("order_id")))
    )
    fields = {"sku": "sku_id", "outer_sku": None, "title": None, "qty": "qty"}
    price = n.fen_to_yuan(F.col("_item.price_fen"))
    return _nested_lines(orders, "MALL", "items", fields, price)


def pos_key(store_code, ticket_no):
    """The order key of a POS ticket: tickets are numbered per store."""
    return F.concat(F.lit("POS:"), store_code, F.lit(":"), ticket_no)


def pos_amount(quantity: Column, amount: Column) -> Column:
    """A POS line's amount, signed as its quantity on a return: money going back.

    Why: the contract marks a return by its negative qty and does not say the amount's sign;
    a till that writes a return's amount as a positive figure would otherwise read as a
    negative refund and take its whole ticket to quarantine. A sale's sign is kept (a negative
    sale amount is dirt the rules judge).
    """
    return F.when(quantity < 0, -F.abs(amount)).otherwise(amount)


def pos_unit_price(quantity: Column, unit_price: Column) -> Column:
    """A POS line's unit price, never negative on a return.

    Why: as with `pos_amount`, the contract marks a return by its negative qty only; a till
    that prints the return's price negative too failed `unit_price_plausible`, and the return
    never reached silver. A sale's sign is kept (a negative price on a sale is dirt).
    """
    return F.when(quantity < 0, F.abs(unit_price)).otherwise(unit_price)


def pos_lines(bronze: DataFrame) -> DataFrame:
    """Store POS bronze rows → typed, normalised line items (one per delivered line).

    A return line (negative quantity) points at the ticket it returns through
    `orig_order_key`.
    """
    store = n.code(F.col("store_code"))
    ticket = n.non_blank(F.col("ticket_no"))
    original = n.non_blank(F.col("orig_ticket_no"))
    return bronze.select(
        pos_key(store, ticket).alias("order_key"),
        store.alias("store_code"),
        n.code(F.col("pos_id")).alias("pos_id"),
        ticket.alias("ticket_no"),
        n.quantity(F.col("line_no")).alias("line_no"),
        n.shanghai_local_to_utc(F.col("txn_time"), n.POS_FORMAT).alias("txn_at"),
        n.code(F.col("cashier_id")).alias("cashier_id"),
        n.code(F.col("member_card_no")).alias("member_card_no"),
        n.phone(F.col("member_phone")).alias("member_phone"),
        n.phone_display(F.col("member_phone")).alias("member_phone_display"),
        n.code(F.col("barcode")).alias("barcode"),
        n.quantity(F.col("qty")).alias("quantity"),
        pos_unit_price(n.quantity(F.col("qty")), n.yuan(F.col("unit_price"))).alias("unit_price"),
        n.yuan(F.col("discount")).alias("discount"),
        pos_amount(n.quantity(F.col("qty")), n.yuan(F.col("amount"))).alias("line_amount"),
        n.code(F.col("pay_method")).alias("pay_method"),
        F.when(original.isNotNull(), pos_key(store, original)).alias("orig_order_key"),
        "_delivery_date",
        "_source_file",
        "_line_no",
        "_record_hash",
    )


# Lines of one ticket on two business days are one sale rung across midnight when they are at
# most this far apart (a checkout takes minutes); further apart, the number was used again (a
# count started afresh the next morning is many hours away).
TICKET_ACROSS_MIDNIGHT_MINUTES = 60


def reused_ticket_numbers(lines: DataFrame) -> DataFrame:
    """The order_keys of POS tickets whose lines come from more than one till, or from two
    business days further apart than a sale rung across midnight.

    Why: a ticket is keyed by store and number (the contract's `orig_ticket_no` names a ticket
    by number alone), so a till that numbers its own tickets, or a count that starts again each
    day, gives two sales one key, and the later one would silently overwrite the earlier as its
    "new version". Lines of one ticket share its till and its day; when they do not, the lines
    are not published (the gate's `ticket_number_not_reused`). But txn_time is a line's own, so
    a ticket rung from 23:59 to 00:01 has lines on two days: one sale (before: held back), as
    its lines are minutes apart where a number counted again the next day is hours apart. A
    line without a till or a time is no evidence either way. Expects lines as `pos_lines`
    conforms them.
    """
    day = n.shanghai_date(F.col("txn_at"))
    span = F.max("txn_at").cast("long") - F.min("txn_at").cast("long")
    return (
        lines.where(F.col("order_key").isNotNull())
        .groupBy("order_key")
        .agg(
            F.countDistinct("pos_id").alias("_tills"),
            F.countDistinct(day).alias("_days"),
            span.alias("_span_seconds"),
        )
        .where(
            (F.col("_tills") > 1)
            | (
                (F.col("_days") > 1)
                & (F.col("_span_seconds") > TICKET_ACROSS_MIDNIGHT_MINUTES * 60)
            )
        )
        .select("order_key")
    )


def pos_order_lines(lines: DataFrame) -> DataFrame:
    """Typed POS lines (see `pos_lines`) in the shared line shape; the barcode is the code."""
    returned = F.col("quantity") < 0
    return lines.select(
        "order_key",
        F.col("line_no").cast("string").alias("line_id"),
        "line_no",
        F.lit("POS").alias("platform"),
        F.col("barcode").alias("platform_sku_code"),
        F.lit(None).cast("string").alias("outer_sku_id"),
        F.lit(None).cast("string").alias("product_title"),
        "quantity",
        "unit_price",
        "line_amount",
        F.when(returned, "RETURN").otherwise("NONE").alias("refund_status"),
        # try_multiply: -(-2147483648) is no int, and ANSI would fail the job on it.
        F.when(returned, F.try_multiply(F.col("quantity"), F.lit(-1)))
        .otherwise(F.lit(0))
        .alias("refunded_quantity"),
        F.when(returned, -F.col("line_amount"))
        .otherwise(F.lit(0).cast(n.MONEY))
        .cast(n.MONEY)
        .alias("refunded_amount"),
        "orig_order_key",
        *LINEAGE,
    )
