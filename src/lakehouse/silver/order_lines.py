"""Order lines of every platform in one shape; POS lines first, the others as silver grows."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.silver import normalise as n


def pos_key(store_code, ticket_no):
    """The order key of a POS ticket: tickets are numbered per store."""
    return F.concat(F.lit("POS:"), store_code, F.lit(":"), ticket_no)


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
        ticket.alias("ticket_no"),
        n.quantity(F.col("line_no")).alias("line_no"),
        n.shanghai_local_to_utc(F.col("txn_time"), n.POS_FORMAT).alias("txn_at"),
        n.code(F.col("cashier_id")).alias("cashier_id"),
        n.code(F.col("member_card_no")).alias("member_card_no"),
        n.phone(F.col("member_phone")).alias("member_phone"),
        n.phone_display(F.col("member_phone")).alias("member_phone_display"),
        n.code(F.col("barcode")).alias("barcode"),
        n.quantity(F.col("qty")).alias("quantity"),
        n.yuan(F.col("unit_price")).alias("unit_price"),
        n.yuan(F.col("discount")).alias("discount"),
        n.yuan(F.col("amount")).alias("line_amount"),
        n.code(F.col("pay_method")).alias("pay_method"),
        F.when(original.isNotNull(), pos_key(store, original)).alias("orig_order_key"),
        "_delivery_date",
        "_source_file",
        "_line_no",
        "_record_hash",
    )
