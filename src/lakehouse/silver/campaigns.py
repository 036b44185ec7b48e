"""Marketing campaigns and the touches they made, typed for attribution.

Why: attribution joins an order to the campaign touches of the same person shortly before it
(and to the coupon code it used), so a touch needs a UTC instant, a Shanghai business date and
the person's identifiers in One ID's spelling. The campaigns file is a full snapshot that
changes (budgets are revised, end dates move): the latest delivery wins per campaign, and a
campaign that later drops out of the file is kept as last delivered. The touches file holds
only the day's touches; a touch delivered twice collapses to one through `touch_key`.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.silver import normalise as n
from lakehouse.silver.master import LINEAGE, iso_date, latest_line
from lakehouse.silver.scd2 import attribute_hash

CHANNELS = ("SMS", "WECHAT", "APP_PUSH", "TMALL", "JD", "STORE")

CAMPAIGN_COLUMNS = [
    "campaign_id",
    "campaign_name",
    "channel",
    "start_date",
    "end_date",
    "cost_yuan",
    "coupon_code",
    "snapshot_date",
    "_delivery_date",
    *LINEAGE,
]

# Beside the campaigns until their gate (`with_checks=True`): null where a date or the cost is
# written but unreadable (`normalise.readable`). Read as missing, an end date would shrink the
# attribution window to the start date's and a cost would leave ROI blank without a word.
CAMPAIGN_READABLE = ["_start_date_read", "_end_date_read", "_cost_read"]

TOUCH_COLUMNS = [
    "touch_key",
    "campaign_id",
    "touch_time",
    "touch_date",
    "member_id",
    "phone",
    "phone_display",
    "unionid",
    "_delivery_date",
    *LINEAGE,
]


def campaigns(bronze_campaigns: DataFrame, with_checks: bool = False) -> DataFrame:
    """Bronze campaign rows (any number of daily snapshots) → one row per campaign_id.

    The latest delivery wins (then the later file and line). channel is upper case with the
    blanks removed; a value outside CHANNELS is kept for the quality gate to judge.
    `with_checks` adds CAMPAIGN_READABLE for the gate.
    """
    parsed = {
        "start_date": iso_date(F.col("start_date")),
        "end_date": iso_date(F.col("end_date")),
        "cost_yuan": n.yuan(F.col("cost_yuan")),
    }
    typed = bronze_campaigns.select(
        n.code(F.col("campaign_id")).alias("campaign_id"),
        n.non_blank(F.col("campaign_name")).alias("campaign_name"),
        n.code(F.col("channel")).alias("channel"),
        *[value.alias(column) for column, value in parsed.items()],
        n.non_blank(F.col("coupon_code")).alias("coupon_code"),
        F.col("_delivery_date").alias("snapshot_date"),
        "_delivery_date",
        *LINEAGE,
        *[
            n.readable(F.col(column), value).alias(check)
            for check, (column, value) in zip(CAMPAIGN_READABLE, parsed.items(), strict=True)
        ],
    )
    columns = [*CAMPAIGN_COLUMNS, *(CAMPAIGN_READABLE if with_checks else [])]
    return latest_line(typed, ["campaign_id"]).select(*columns)


def campaign_touches(bronze_touches: DataFrame) -> DataFrame:
    """Bronze touch rows → one row per distinct touch (`touch_key`).

    touch_time is the UTC instant of the Asia/Shanghai wall-clock time, touch_date its
    Shanghai date. touch_key fingerprints campaign_id, the touch time as delivered (trimmed, so
    an unreadable time still tells touches apart), member_id, phone and unionid, all in
    normalised form: the same touch delivered twice, or spelt with a different phone format,
    collapses to one row (the later line's lineage is kept).
    """
    campaign_id = n.code(F.col("campaign_id"))
    member_id = n.code(F.col("member_id"))
    phone = n.phone(F.col("phone"))
    # An unreadable phone still tells touches apart: hash its delivered (trimmed) text then.
    phone_for_key = F.coalesce(phone, n.non_blank(F.col("phone")))
    unionid = n.non_blank(F.col("unionid"))
    raw_time = n.non_blank(F.col("touch_time"))
    touch_time = n.shanghai_any_local_to_utc(F.col("touch_time"))
    typed = bronze_touches.select(
        attribute_hash([campaign_id, raw_time, member_id, phone_for_key, unionid]).alias(
            "touch_key"
        ),
        campaign_id.alias("campaign_id"),
        touch_time.alias("touch_time"),
        n.shanghai_date(touch_time).alias("touch_date"),
        member_id.alias("member_id"),
        phone.alias("phone"),
        n.phone_display(F.col("phone")).alias("phone_display"),
        unionid.alias("unionid"),
        "_delivery_date",
        *LINEAGE,
    )
    return latest_line(typed, ["touch_key"]).select(*TOUCH_COLUMNS)
