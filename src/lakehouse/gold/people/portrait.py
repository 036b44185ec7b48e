"""The member portrait: one row per one_id, as of the run date.

Pure DataFrame functions; `lakehouse.gold.people.job` reads the tables and writes the result.

Definitions (docs/people.md has the full list):

- an order belongs to the one_id of its identifiers (oneid.golden's record mapping, reused);
  orders without a linked identifier (an anonymous walk-in ticket) belong to nobody;
- only orders with business_date <= the run date count, so a portrait is as of its date;
- a **purchase** is an order that was paid (paid_at set, paid_amount > 0) and whose status is not
  in `non_purchase_statuses` (CANCELLED). A POS return ticket (nothing paid, money back) is no
  purchase, but its negative net sales count in net sales;
- **net sales** is silver's net_sales (paid − shipping − refunded) summed over the member's
  orders that are not cancelled;
- line-level net sales (for category and brand preferences) share the order's net sales among
  its lines by the amount kept (line amount less the line's refund, as the store marts weigh
  them), and the average unit price counts kept units only.
"""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.gold.people import lifecycle, pii
from lakehouse.gold.people.rfm import RFM_COLUMNS, RfmModel, rfm_scores
from lakehouse.gold.people.settings import PLATFORMS, Band, PeopleSettings
from lakehouse.silver import normalise as n
from lakehouse.silver.scd2 import latest_versions

MONEY = "decimal(18,2)"
# The golden record's attributes the portrait reads (conf/oneid.yml golden_record must configure
# each; the configuration is checked against this at load).
GOLDEN_ATTRIBUTES_READ = (
    "gender",
    "birthday",
    "name",
    "phone",
    "email",
    "unionid",
    "openid",
    "level",
    "points",
    "register_channel",
    "register_store_code",
    "register_time",
    "marketing_opt_out",
)

# The member's order history, as `over: orders` tags see it (one row per order).
HISTORY_COLUMNS = [
    "one_id",
    "order_key",
    "platform",
    "store_code",
    "business_date",
    "status",
    "is_purchase",
    "is_weekend",
    "has_coupon",
    "net_sales",
    "paid_amount",
    "refunded_amount",
    "total_units",
    "receiver_city",
    "campaign_id",
    "days_ago",
]

PORTRAIT_COLUMNS = [
    "one_id",
    "as_of",
    # demographics
    "gender",
    "age",
    "age_band",
    "city",
    "city_source",
    "home_store_code",
    # contact, masked and hashed (never raw)
    "name_masked",
    "phone_masked",
    "phone_hash",
    "email_masked",
    "email_hash",
    "has_phone",
    "has_email",
    "has_wechat",
    # membership
    "is_member",
    "member_level",
    "points",
    "register_channel",
    "register_store_code",
    "register_date",
    "tenure_days",
    # behaviour
    "first_purchase_date",
    "last_purchase_date",
    "days_since_last_purchase",
    "purchase_orders",
    "recent_purchase_orders",
    "units",
    "net_sales",
    "avg_order_value",
    "refund_rate",
    *[f"share_{p.lower()}" for p in PLATFORMS],
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
    *RFM_COLUMNS,
    # lifecycle
    "engaged",
    "lifecycle_stage",
    "lifecycle_stage_cn",
    "churn_risk",
    "marketing_opt_out",
]


def order_history(
    orders: DataFrame, order_one_ids: DataFrame, as_of: date, cfg: PeopleSettings
) -> DataFrame:
    """HISTORY_COLUMNS: the orders of people up to `as_of`.

    `orders`: silver.orders with a `source` column (the identity source of the order);
    `order_one_ids`: source, record_key, one_id (one row per record).
    """
    day = F.lit(as_of).cast("date")
    paid = F.col("paid_at").isNotNull() & (F.coalesce(F.col("paid_amount"), F.lit(0)) > 0)
    not_excluded = ~F.coalesce(F.col("status").isin(cfg.non_purchase_statuses), F.lit(False))
    joined = orders.where(F.col("business_date") <= day).join(
        order_one_ids.select("source", F.col("record_key").alias("order_key"), "one_id"),
        ["source", "order_key"],
    )
    return joined.select(
        "one_id",
        "order_key",
        "platform",
        "store_code",
        "business_date",
        "status",
        (paid & not_excluded).alias("is_purchase"),
        F.dayofweek("business_date").isin(1, 7).alias("is_weekend"),
        F.col("coupon_code").isNotNull().alias("has_coupon"),
        F.when(not_excluded, F.coalesce("net_sales", F.lit(0).cast(MONEY)))
        .otherwise(F.lit(0).cast(MONEY))
        .cast(MONEY)
        .alias("net_sales"),
        F.coalesce("paid_amount", F.lit(0).cast(MONEY)).cast(MONEY).alias("paid_amount"),
        F.coalesce("refunded_amount", F.lit(0).cast(MONEY)).cast(MONEY).alias("refunded_amount"),
        F.coalesce("total_units", F.lit(0)).cast("int").alias("total_units"),
        "receiver_city",
        "campaign_id",
        F.datediff(day, F.col("business_date")).alias("days_ago"),
    )


def purchase_lines(
    history: DataFrame, lines: DataFrame, products: DataFrame, category_level: str
) -> DataFrame:
    """one_id, order_key, quantity, line_amount, line_net, category, brand: the lines of
    purchases as kept (units and amount less what was refunded on the line), with the order's
    net sales shared among them by kept amount and the category and brand of the product's
    latest version.

    Why kept, not sold: an online line refunded in full (on the line, or a JD / mall order
    REFUNDED, whose lines report no refund) is goods that came back; weighted by
    its sold amount it would take the order's net sales and make the returned item the
    member's preferred category (the store marts weigh lines the same way). A POS line is kept
    as printed: a return is its own ticket with negative lines, taken here although it is no
    purchase, so that the goods brought back weigh against those bought.
    """
    pos_return = (F.col("platform") == "POS") & (F.col("net_sales") < 0)
    purchases = history.where(F.col("is_purchase") | pos_return).select(
        "one_id", "order_key", "platform", "status", "net_sales"
    )
    # The latest version's (`latest_versions`): a SKU since dropped from the snapshots keeps
    # its last category and brand, as in the marts' rankings and bundles.
    latest = latest_versions(products, ["sku_id"]).select(
        "sku_id", F.col(category_level).alias("category"), "brand"
    )
    pos = F.col("platform") == "POS"
    # JD and mall lines report no refund: an order of theirs REFUNDED came back whole (as the
    # marts count its units, `common._units`); weighed as sold, it would set the price band.
    refunded_whole = F.col("refunded_quantity").isNull() & (F.col("status") == "REFUNDED")
    kept_amount = (
        F.when(pos, F.col("line_amount"))
        .when(refunded_whole, F.lit(0))
        .otherwise(F.col("line_amount") - F.coalesce(F.col("refunded_amount"), F.lit(0)))
    )
    kept_units = (
        F.when(pos, F.col("quantity"))
        .when(refunded_whole, F.lit(0))
        .otherwise(F.col("quantity") - F.coalesce(F.col("refunded_quantity"), F.lit(0)))
    )
    by_order = Window.partitionBy("order_key")
    rows = (
        lines.select(
            "order_key", "sku_id", "quantity", "line_amount", "refunded_quantity", "refunded_amount"
        )
        .join(purchases, "order_key")
        .select(
            "one_id",
            "order_key",
            "sku_id",
            "net_sales",
            kept_units.alias("quantity"),
            kept_amount.cast(MONEY).alias("line_amount"),
        )
    )
    share = F.try_divide(F.col("line_amount"), F.sum("line_amount").over(by_order))
    return rows.join(latest, "sku_id", "left").select(
        "one_id",
        "order_key",
        "quantity",
        "line_amount",
        (F.col("net_sales") * F.coalesce(share, F.lit(0))).cast(MONEY).alias("line_net"),
        "category",
        "brand",
    )


def _top(df: DataFrame, value: str, order: list[Column], alias: str) -> DataFrame:
    """one_id, `alias`: per one_id the `value` first by `order` (ties: the smallest value)."""
    w = Window.partitionBy("one_id").orderBy(*order, F.col(value).asc())
    return (
        df.where(F.col(value).isNotNull())
        .withColumn("_rank", F.row_number().over(w))
        .where("_rank = 1")
        .select("one_id", F.col(value).alias(alias))
    )


def _band(value: Column, bands: list[Band]) -> Column:
    result = None
    for band in bands:
        if band.max is None:
            result = (
                F.when(value.isNotNull(), band.label)
                if result is None
                else result.when(value.isNotNull(), band.label)
            )
        else:
            cond = value < F.lit(band.max)
            result = F.when(cond, band.label) if result is None else result.when(cond, band.label)
    return result  # type: ignore[return-value]


def age_band(age: Column, edges: list[int]) -> Column:
    """<18, 18-24, ..., 50+ from the edges [18, 25, ..., 50]."""
    result = F.when(age < edges[0], f"<{edges[0]}")
    for low, high in itertools.pairwise(edges):
        result = result.when(age < high, f"{low}-{high - 1}")
    return result.when(age >= edges[-1], f"{edges[-1]}+")


def _ratio(part: Column, whole: Column) -> Column:
    return F.round(F.try_divide(part.cast("double"), whole.cast("double")), 4)


def _share_at_least(part: Column, whole: Column, share: float) -> Column:
    """part / whole >= share, exactly: the shown share is rounded to 4 places (2 of 3 shows
    0.6667), and a threshold of 0.6667 must not take it for reached."""
    exact = F.lit(Decimal(str(share))).cast("decimal(12,6)")
    return part.cast("decimal(20,0)") >= exact * whole.cast("decimal(20,0)")


def behaviour(history: DataFrame, plines: DataFrame, cfg: PeopleSettings) -> DataFrame:
    """Per one_id behaviour columns (buyers and people with any order)."""
    p = F.col("is_purchase")
    window = cfg.lifecycle.loyal_window_days
    excluded = F.coalesce(F.col("status").isin(cfg.non_purchase_statuses), F.lit(False))
    counted = history.where(~excluded)
    base = history.groupBy("one_id").agg(
        F.min(F.when(p, F.col("business_date"))).alias("first_purchase_date"),
        F.max(F.when(p, F.col("business_date"))).alias("last_purchase_date"),
        F.min(F.when(p, F.col("days_ago"))).alias("days_since_last_purchase"),
        F.count_if(p).cast("int").alias("purchase_orders"),
        F.count_if(p & (F.col("days_ago") < window)).cast("int").alias("recent_purchase_orders"),
        F.coalesce(F.sum(F.when(p, F.col("total_units"))), F.lit(0)).cast("int").alias("units"),
        F.count_if(p & F.col("is_weekend")).alias("_weekend"),
        F.count_if(p & F.col("has_coupon")).alias("_coupon"),
        *[
            F.count_if(p & (F.col("platform") == platform)).alias(f"_n_{platform.lower()}")
            for platform in PLATFORMS
        ],
    )
    money = counted.groupBy("one_id").agg(
        F.sum("net_sales").cast(MONEY).alias("net_sales"),
        F.sum(F.when(F.col("is_purchase"), F.col("paid_amount"))).alias("_paid"),
        F.sum("refunded_amount").alias("_refunded"),
    )
    purchases = history.where(p)
    by_platform = purchases.groupBy("one_id", "platform").agg(
        F.count(F.lit(1)).alias("_n"), F.sum("net_sales").alias("_net")
    )
    by_store = purchases.groupBy("one_id", "store_code").agg(
        F.count(F.lit(1)).alias("_n"), F.sum("net_sales").alias("_net")
    )
    by_home = (
        purchases.where(F.col("platform") == "POS")
        .groupBy("one_id", "store_code")
        .agg(F.count(F.lit(1)).alias("_n"), F.max("business_date").alias("_last"))
    )
    by_city = (
        counted.where(F.col("receiver_city").isNotNull())
        .groupBy("one_id", "receiver_city")
        .agg(F.count(F.lit(1)).alias("_n"), F.max("business_date").alias("_last"))
    )
    # A category or brand that nets nothing (refunded in full, brought back) is no preference.
    by_category = (
        plines.groupBy("one_id", "category").agg(F.sum("line_net").alias("_net")).where("_net > 0")
    )
    by_brand = (
        plines.groupBy("one_id", "brand").agg(F.sum("line_net").alias("_net")).where("_net > 0")
    )
    # The band reads the exact average: 149.997 is below a band ending at 150, though it shows
    # as 150.00.
    unit_price = (
        plines.where(F.col("quantity") > 0)
        .groupBy("one_id")
        .agg(
            F.try_divide(
                F.sum("line_amount").cast("double"), F.sum("quantity").cast("double")
            ).alias("_unit_price")
        )
        .withColumn("avg_unit_price", F.round("_unit_price", 2))
    )
    frames = [
        money,
        _top(by_platform, "platform", [F.desc("_n"), F.desc("_net")], "preferred_channel"),
        _top(by_store, "store_code", [F.desc("_n"), F.desc("_net")], "preferred_store_code"),
        _top(by_home, "store_code", [F.desc("_n"), F.desc("_last")], "_home_store"),
        _top(by_city, "receiver_city", [F.desc("_n"), F.desc("_last")], "_delivery_city"),
        _top(by_category, "category", [F.desc("_net")], "preferred_category"),
        _top(by_brand, "brand", [F.desc("_net")], "preferred_brand"),
        unit_price,
    ]
    out = base
    for frame in frames:
        out = out.join(frame, "one_id", "left")
    prefs = cfg.preferences

    def _at_least(part: Column, share: float) -> Column:
        return _share_at_least(part, F.col("purchase_orders"), share)

    weekend_share = _ratio(F.col("_weekend"), F.col("purchase_orders"))
    coupon_share = _ratio(F.col("_coupon"), F.col("purchase_orders"))
    return out.select(
        "*",
        F.try_divide(F.col("net_sales"), F.col("purchase_orders"))
        .cast(MONEY)
        .alias("avg_order_value"),
        _ratio(F.col("_refunded"), F.col("_paid")).alias("refund_rate"),
        *[
            _ratio(F.col(f"_n_{pl.lower()}"), F.col("purchase_orders")).alias(f"share_{pl.lower()}")
            for pl in PLATFORMS
        ],
        _band(F.col("_unit_price"), prefs.price_bands).alias("price_band"),
        weekend_share.alias("weekend_share"),
        F.when(weekend_share.isNull(), F.lit(None))
        .when(_at_least(F.col("_weekend"), prefs.weekend_share_min), prefs.weekend_label)
        .otherwise(prefs.weekday_label)
        .alias("shopper_type"),
        coupon_share.alias("coupon_share"),
        F.when(coupon_share.isNull(), F.lit(None))
        .when(_at_least(F.col("_coupon"), prefs.coupon_high_share), prefs.coupon_labels["high"])
        .when(_at_least(F.col("_coupon"), prefs.coupon_medium_share), prefs.coupon_labels["medium"])
        .otherwise(prefs.coupon_labels["low"])
        .alias("coupon_sensitivity"),
    )


def rfm_metrics(history: DataFrame, window_days: int) -> DataFrame:
    """one_id, rfm_recency_days, rfm_frequency, rfm_monetary of buyers in the window."""
    inside = history.where(F.col("days_ago") < window_days)
    return (
        inside.groupBy("one_id")
        .agg(
            F.min(F.when(F.col("is_purchase"), F.col("days_ago")))
            .cast("int")
            .alias("rfm_recency_days"),
            F.count_if("is_purchase").cast("int").alias("rfm_frequency"),
            F.sum("net_sales").cast(MONEY).alias("rfm_monetary"),
        )
        .where(F.col("rfm_frequency") >= 1)
        .select(
            "one_id",
            "rfm_recency_days",
            "rfm_frequency",
            F.coalesce("rfm_monetary", F.lit(0).cast(MONEY)).cast(MONEY).alias("rfm_monetary"),
        )
    )


def build_portrait(
    one_ids: DataFrame,
    golden: DataFrame,
    history: DataFrame,
    plines: DataFrame,
    stores: DataFrame,
    touched: DataFrame,
    as_of: date,
    cfg: PeopleSettings,
    salt: str,
) -> tuple[DataFrame, RfmModel]:
    """PORTRAIT_COLUMNS, one row per one_id of `one_ids`.

    `golden`: oneid.golden_members; `stores`: silver.stores (SCD2: each store's latest
    version, so a store dropped from the snapshots (closed) is still the physical store its
    members bought or registered at, in its last city); `touched`: one_id of people who
    received a campaign touch up to `as_of`.
    """
    day = F.lit(as_of).cast("date")
    behave = behaviour(history, plines, cfg)
    scores, model = rfm_scores(rfm_metrics(history, cfg.rfm.window_days), cfg.rfm.bins)
    engaged = (
        history.select("one_id").unionByName(touched.select("one_id")).distinct()
    ).withColumn("engaged", F.lit(True))
    known_stores = latest_versions(stores, ["store_code"]).select(
        "store_code", F.col("city").alias("_store_city"), F.col("store_type").alias("_store_type")
    )
    g = golden.select(
        "one_id",
        "member_ids",
        *[F.col(a).alias("member_level") if a == "level" else a for a in GOLDEN_ATTRIBUTES_READ],
    )
    people = (
        one_ids.select("one_id")
        .distinct()
        .join(g, "one_id", "left")
        .join(behave, "one_id", "left")
        .join(scores, "one_id", "left")
        .join(engaged, "one_id", "left")
    )
    physical = known_stores.where(F.col("_store_type") != "ONLINE")
    home = F.coalesce(F.col("_home_store"), F.col("_register_physical"))
    people = (
        people.join(
            physical.select(
                F.col("store_code").alias("register_store_code"),
                F.col("store_code").alias("_register_physical"),
            ),
            "register_store_code",
            "left",
        )
        .withColumn("home_store_code", home)
        .join(
            known_stores.select(F.col("store_code").alias("home_store_code"), "_store_city"),
            "home_store_code",
            "left",
        )
    )
    age = F.when(
        F.col("birthday") <= day,
        F.floor(F.months_between(day, F.col("birthday")) / 12).cast("int"),
    )
    register_date = n.shanghai_date(F.col("register_time"))
    life = cfg.lifecycle
    stage = lifecycle.stage(
        F.col("purchase_orders"),
        F.col("recent_purchase_orders"),
        F.col("days_since_last_purchase"),
        F.col("engaged"),
        life,
    )
    columns = {
        "one_id": F.col("one_id"),
        "as_of": day,
        "gender": F.col("gender"),
        "age": age,
        "age_band": age_band(age, cfg.age_band_edges),
        "city": F.coalesce(F.col("_delivery_city"), F.col("_store_city")),
        "city_source": F.when(F.col("_delivery_city").isNotNull(), "DELIVERY").when(
            F.col("_store_city").isNotNull(), "HOME_STORE"
        ),
        "home_store_code": F.col("home_store_code"),
        "name_masked": pii.mask_name(F.col("name")),
        "phone_masked": pii.mask_phone(F.col("phone")),
        "phone_hash": pii.salted_hash(F.col("phone"), salt),
        "email_masked": pii.mask_email(F.col("email")),
        "email_hash": pii.salted_hash(F.col("email"), salt),
        "has_phone": F.col("phone").isNotNull(),
        "has_email": F.col("email").isNotNull(),
        "has_wechat": F.col("unionid").isNotNull() | F.col("openid").isNotNull(),
        "is_member": F.coalesce(F.size("member_ids") > 0, F.lit(False)),
        "member_level": F.col("member_level"),
        "points": F.col("points"),
        "register_channel": F.col("register_channel"),
        "register_store_code": F.col("register_store_code"),
        "register_date": register_date,
        "tenure_days": F.when(register_date <= day, F.datediff(day, register_date)),
        "first_purchase_date": F.col("first_purchase_date"),
        "last_purchase_date": F.col("last_purchase_date"),
        "days_since_last_purchase": F.col("days_since_last_purchase"),
        "purchase_orders": F.coalesce("purchase_orders", F.lit(0)).cast("int"),
        "recent_purchase_orders": F.coalesce("recent_purchase_orders", F.lit(0)).cast("int"),
        "units": F.coalesce("units", F.lit(0)).cast("int"),
        "net_sales": F.coalesce("net_sales", F.lit(0).cast(MONEY)).cast(MONEY),
    }
    for name in PORTRAIT_COLUMNS:
        if name not in columns and name not in (
            "engaged",
            "lifecycle_stage",
            "lifecycle_stage_cn",
            "churn_risk",
            "marketing_opt_out",
        ):
            columns[name] = F.col(name)
    columns["engaged"] = F.coalesce(F.col("engaged"), F.lit(False))
    columns["lifecycle_stage"] = stage
    columns["lifecycle_stage_cn"] = lifecycle.label(stage, life)
    columns["churn_risk"] = lifecycle.churn_risk(
        F.col("purchase_orders"), F.col("days_since_last_purchase"), life
    )
    columns["marketing_opt_out"] = F.coalesce(F.col("marketing_opt_out"), F.lit(False))
    return people.select(*[columns[c].alias(c) for c in PORTRAIT_COLUMNS]), model
