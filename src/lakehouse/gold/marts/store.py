"""store_daily and store_monthly: what a store manager looks at, online shops as virtual stores.

Pure DataFrame functions; docs/metrics.md states every formula. Inputs: silver orders (with
`is_member` / `one_id` from `common.order_one_ids`), `common.sold_lines`, and the silver.stores
history (SCD2).
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.gold.marts.common import MONEY, TOTAL, money, ratio
from lakehouse.silver.scd2 import valid_at
from lakehouse.spark import small_frame

STORE_ATTRIBUTES = ["store_name", "store_type", "region", "floor_area_sqm", "staff_count"]
DAILY_KEY = ["business_date", "store_code"]
MONTHLY_KEY = ["month", "store_code"]

# Sums a month adds up from its days.
_ADDITIVE = [
    "net_sales",
    "paid_orders",
    "units",
    "returns_amount",
    "return_orders",
    "returned_units",
    "gross_profit",
    "costed_net_sales",
    "uncosted_net_sales",
    "member_net_sales",
]
_COUNTS = ("paid_orders", "units", "return_orders", "returned_units")


def open_on(day: F.Column) -> F.Column:
    """A store trades on `day` when open_date <= day < close_date (either may be null)."""
    return (F.col("open_date").isNull() | (F.col("open_date") <= day)) & (
        F.col("close_date").isNull() | (day < F.col("close_date"))
    )


def _order_facts(orders: DataFrame, buyers: DataFrame) -> DataFrame:
    """Per (business_date, store_code): net sales, paid orders, returns, member sales."""
    o = orders.join(buyers.select("order_key", "is_member"), "order_key", "left")
    net = F.coalesce(F.col("net_sales"), F.lit(0).cast(MONEY))
    refunded = F.when(F.col("paid_at").isNotNull(), F.coalesce("refunded_amount", F.lit(0)))
    return o.groupBy(*DAILY_KEY).agg(
        F.sum(net).cast(TOTAL).alias("net_sales"),
        F.count_if(F.col("paid_at").isNotNull() & (F.col("paid_amount") > 0)).alias("paid_orders"),
        F.coalesce(F.sum(refunded), F.lit(0)).cast(TOTAL).alias("returns_amount"),
        F.count_if(F.col("paid_at").isNotNull() & (F.col("refunded_amount") > 0)).alias(
            "return_orders"
        ),
        F.sum(F.when(F.coalesce("is_member", F.lit(False)), net).otherwise(F.lit(0)))
        .cast(TOTAL)
        .alias("member_net_sales"),
    )


def _line_facts(lines: DataFrame) -> DataFrame:
    """Per (business_date, store_code): units, returned units, gross profit and its base."""
    qty = F.coalesce(F.col("quantity"), F.lit(0))
    returned = F.when(F.col("platform") == "POS", F.greatest(-qty, F.lit(0))).when(
        F.col("paid"), F.greatest(qty, F.lit(0)) - F.greatest(F.col("units"), F.lit(0))
    )
    costed = F.col("unit_cost").isNotNull()
    return lines.groupBy(*DAILY_KEY).agg(
        F.coalesce(F.sum("units"), F.lit(0)).cast("long").alias("units"),
        F.coalesce(F.sum(returned), F.lit(0)).cast("long").alias("returned_units"),
        F.coalesce(F.sum(F.when(costed, F.col("gross_profit"))), F.lit(0))
        .cast(TOTAL)
        .alias("gross_profit"),
        F.coalesce(F.sum(F.when(costed, F.col("line_net_sales"))), F.lit(0))
        .cast(TOTAL)
        .alias("costed_net_sales"),
        F.coalesce(F.sum(F.when(~costed, F.col("line_net_sales"))), F.lit(0))
        .cast(TOTAL)
        .alias("uncosted_net_sales"),
    )


def _store_grid(stores: DataFrame, dates: list[date], spark) -> DataFrame:
    """(business_date, store_code) of every store open on each date, with the attributes of the
    version valid that day. A store with no version that day (it dropped out of the stores
    snapshot) is not open: without a version its open and close dates are null, which read as
    "open forever"."""
    days = small_frame(spark, [(d,) for d in dates], "business_date date")
    codes = stores.select("store_code").distinct()
    grid = valid_at(
        days.crossJoin(codes),
        stores,
        ["store_code"],
        "business_date",
        columns=[*STORE_ATTRIBUTES, "open_date", "close_date", "valid_from"],
    )
    return grid.where(F.col("valid_from").isNotNull() & open_on(F.col("business_date"))).drop(
        "valid_from"
    )


def _rates(df: DataFrame) -> DataFrame:
    return df.withColumns(
        {
            "avg_order_value": money(F.try_divide(F.col("net_sales"), F.col("paid_orders"))),
            "units_per_ticket": ratio(F.col("units"), F.col("paid_orders")),
            "margin_rate": ratio(F.col("gross_profit"), F.col("costed_net_sales")),
            "member_sales_share": ratio(F.col("member_net_sales"), F.col("net_sales")),
            "sales_per_sqm": money(
                F.try_divide(F.col("net_sales"), F.nullif(F.col("floor_area_sqm"), F.lit(0)))
            ),
            "sales_per_staff": money(
                F.try_divide(F.col("net_sales"), F.nullif(F.col("staff_count"), F.lit(0)))
            ),
        }
    )


# The measures store_daily and store_monthly share, in the order both publish them.
MEASURE_COLUMNS = [
    "net_sales",
    "paid_orders",
    "units",
    "avg_order_value",
    "units_per_ticket",
    "gross_profit",
    "costed_net_sales",
    "uncosted_net_sales",
    "margin_rate",
    "returns_amount",
    "return_orders",
    "returned_units",
    "member_net_sales",
    "member_sales_share",
    "sales_per_sqm",
    "sales_per_staff",
]
STORE_COLUMNS = ["store_code", *STORE_ATTRIBUTES]
DAILY_COLUMNS = ["business_date", *STORE_COLUMNS, "is_open", *MEASURE_COLUMNS]


def _last_version_by(
    keys: DataFrame, stores: DataFrame, key: list[str], by: str, columns: list[str]
) -> DataFrame:
    """`keys` (store_code, `by` a date, and the rest of `key`) plus `columns` of each store's
    latest version that began by `by`.

    Why not the version valid at `by`: a store that left the snapshot (closed) has none, and its
    sales of that day or month would lose the name, type and region they were made under, and
    drop out of every roll-up by them. A store first listed after `by` takes its first version
    (`valid_at`)."""
    began = (
        keys.join(stores.select("store_code", F.col("valid_from").alias("_began")), "store_code")
        .where(F.col("_began") <= F.col(by))
        .groupBy(*key)
        .agg(F.max("_began").alias("_began"))
    )
    return (
        keys.join(began, key, "left")
        .withColumn("_at", F.coalesce("_began", by))
        .transform(lambda k: valid_at(k, stores, ["store_code"], "_at", columns=columns))
        .drop("_began", "_at")
    )


def store_daily(
    orders: DataFrame,
    buyers: DataFrame,
    lines: DataFrame,
    stores: DataFrame,
    dates: list[date],
) -> DataFrame:
    """One row per (business_date, store_code) for `dates`: every store open that day (zeros
    when it sold nothing) and every store code that has orders that day (open or not, known or
    not: sales never disappear). `lines` comes from `common.sold_lines`."""
    spark = orders.sparkSession
    wanted = F.col("business_date").isin(dates)
    facts = _order_facts(orders.where(wanted), buyers).join(
        _line_facts(lines.where(wanted)), DAILY_KEY, "full"
    )
    grid = _store_grid(stores, dates, spark).select(*DAILY_KEY, F.lit(True).alias("is_open"))
    keys = facts.select(*DAILY_KEY).unionByName(grid.select(*DAILY_KEY)).distinct()
    attrs = _last_version_by(keys, stores, DAILY_KEY, "business_date", STORE_ATTRIBUTES)
    zero = F.lit(0)
    joined = attrs.join(facts, DAILY_KEY, "left").join(grid, DAILY_KEY, "left")
    filled = joined.withColumns(
        {
            **{
                c: F.coalesce(F.col(c), zero).cast("long" if c in _COUNTS else TOTAL)
                for c in _ADDITIVE
            },
            "is_open": F.coalesce("is_open", F.lit(False)),
        }
    )
    return _rates(filled).select(*DAILY_COLUMNS)


MONTHLY_COLUMNS = [
    "month",
    *STORE_COLUMNS,
    "open_days",
    *MEASURE_COLUMNS,
    "identified_buyers",
    "repeat_buyers",
    "repurchase_rate",
    "comparable",
    "prev_net_sales",
    "net_sales_growth",
]


def _month_end(month: F.Column) -> F.Column:
    return F.last_day(month)


def comparable(stores: DataFrame, month: F.Column) -> F.Column:
    """Open for the whole of the previous month and the whole of `month` (by the current
    store record's open / close dates)."""
    prev_start = F.add_months(month, -1)
    return (F.col("open_date").isNull() | (F.col("open_date") <= prev_start)) & (
        F.col("close_date").isNull() | (F.col("close_date") > _month_end(month))
    )


def store_monthly(
    daily: DataFrame,
    previous: DataFrame | None,
    orders: DataFrame,
    buyers: DataFrame,
    stores: DataFrame,
    months: list[date],
) -> DataFrame:
    """One row per (month, store_code) for `months` (first days of months) from the store_daily
    rows of those months (`daily` must hold every day of them that has rows).

    Store attributes: the version valid on the month's last day, or, for a store that left
    the snapshot before it, the last version it had (a store gone at month end is still not
    comparable).
    Repurchase rate: identified buyers (orders with a one_id and paid) with purchases on two
    or more business dates of the month at this store / identified buyers. Growth:
    (net_sales - previous month's) / previous month's, only for comparable stores (open for the
    whole of both months); null otherwise or when the previous month sold nothing. `previous`:
    store_monthly rows of earlier months (may hold the month before the first of `months`).
    """
    spark = daily.sparkSession
    month = F.trunc("business_date", "month")
    scoped = daily.where(month.isin(months)).withColumn("month", month)
    sums = scoped.groupBy(*MONTHLY_KEY).agg(
        *[F.sum(c).cast("long" if c in _COUNTS else TOTAL).alias(c) for c in _ADDITIVE],
        F.count_if("is_open").alias("open_days"),
    )

    paid = orders.where(
        F.col("paid_at").isNotNull() & (F.col("paid_amount") > 0) & month.isin(months)
    ).join(buyers.where(F.col("one_id").isNotNull()), "order_key")
    per_buyer = paid.groupBy(month.alias("month"), "store_code", "one_id").agg(
        F.count_distinct("business_date").alias("_days")
    )
    repeat = per_buyer.groupBy(*MONTHLY_KEY).agg(
        F.count(F.lit(1)).alias("identified_buyers"),
        F.count_if(F.col("_days") >= 2).alias("repeat_buyers"),
    )

    ends = small_frame(spark, [(m,) for m in months], "month date").withColumn(
        "_end", _month_end(F.col("month"))
    )
    keys = sums.select(*MONTHLY_KEY).join(ends, "month")
    current = _last_version_by(
        keys,
        stores,
        MONTHLY_KEY,
        "_end",
        [*STORE_ATTRIBUTES, "open_date", "close_date", "valid_from", "valid_to"],
    ).withColumn(
        "_held_at_end",
        F.col("valid_from").isNotNull()
        & (F.col("valid_to").isNull() | (F.col("valid_to") > F.col("_end"))),
    )
    prev_rows = scoped.select(
        F.add_months("month", 1).alias("month"), "store_code", "net_sales"
    ).limit(0)
    if previous is not None:
        prev_rows = previous.select(
            F.add_months("month", 1).alias("month"), "store_code", "net_sales"
        )
    # The previous month of a recomputed month may itself be recomputed now: take it from here.
    prev_now = sums.select(F.add_months("month", 1).alias("month"), "store_code", "net_sales")
    prev_all = (
        prev_rows.join(prev_now.select(*MONTHLY_KEY), MONTHLY_KEY, "left_anti")
        .unionByName(prev_now)
        .withColumnRenamed("net_sales", "prev_net_sales")
    )
    joined = (
        sums.join(current, MONTHLY_KEY, "left")
        .join(repeat, MONTHLY_KEY, "left")
        .join(prev_all, MONTHLY_KEY, "left")
        .withColumns(
            {
                "identified_buyers": F.coalesce("identified_buyers", F.lit(0)).cast("long"),
                "repeat_buyers": F.coalesce("repeat_buyers", F.lit(0)).cast("long"),
                # a store out of the snapshot at month end has no dates to judge: not comparable
                "comparable": F.coalesce(
                    F.col("_held_at_end") & comparable(stores, F.col("month")),
                    F.lit(False),
                ),
            }
        )
    )
    out = _rates(joined).withColumns(
        {
            "repurchase_rate": ratio(F.col("repeat_buyers"), F.col("identified_buyers")),
            "prev_net_sales": F.when(F.col("comparable"), F.col("prev_net_sales")).cast(TOTAL),
            "net_sales_growth": F.when(
                F.col("comparable"),
                ratio(F.col("net_sales") - F.col("prev_net_sales"), F.col("prev_net_sales")),
            ),
        }
    )
    return out.select(*MONTHLY_COLUMNS)
