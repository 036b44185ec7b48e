"""CRM members: the daily full snapshot, typed and normalised, one row per member and snapshot.

The CRM spells the same value several ways (genders M/男/1, birthdays 1990/3/5 or 19900305,
phones with +86); silver holds one spelling so One ID and the member dimension can compare
them. One person holding two member records is kept as two rows: merging people is One ID's
business, not this transform's.

silver.members also carries `left_crm_on`: the day whose full snapshot first no longer listed a
member (null while the CRM lists it). A member the CRM deleted or merged into another record
keeps its row, its last state and its identifiers (One ID still knows the person), but is no
longer a member: golden records and portraits read the mark.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.silver import normalise as n

MEMBER_COLUMNS = [
    "member_id",
    "card_no",
    "name",
    "phone",
    "phone_display",
    "email",
    "gender",
    "birthday",
    "register_channel",
    "register_store_code",
    "register_time",
    "level",
    "level_raw",
    "points",
    "unionid",
    "marketing_opt_out",
    "snapshot_date",
    "_record_hash",
    "_source_file",
    "_line_no",
]

# Beside the members until their gate (`with_checks=True`): null where a value was written but
# cannot be read (`marketing_opt_out` `X`, `register_time` 2026-02-30, `points` `abc`), so a
# `*_readable` rule quarantines the row instead of silver holding a null that changes what it
# says (an unreadable opt-out read as missing would make the member contactable again).
MEMBER_READABLE = [
    "_gender_read",
    "_birthday_read",
    "_register_time_read",
    "_points_read",
    "_opt_out_read",
]

LEFT_CRM = "left_crm_on"

# `crm_members_20260301.csv`, `crm_members_20260301_2.csv` (a corrected re-export).
_FILE_DATE_SEQ = r"_(\d{8})(?:_(\d+))?\.[^./]+$"


def _later_file_first() -> list[Column]:
    """Sort order putting the latest file first: its name's date, then its re-export number,
    then the name itself. Plain name order would rank `_10` before `_2`."""
    path = F.col("_source_file")
    file_date = F.regexp_extract(path, _FILE_DATE_SEQ, 1)
    seq = F.coalesce(F.regexp_extract(path, _FILE_DATE_SEQ, 2).try_cast("int"), F.lit(0))
    return [file_date.desc(), seq.desc(), path.desc()]


def _one_per_member(df: DataFrame) -> DataFrame:
    """Keep one row per (snapshot_date, member_id): the one from the latest file, latest line.

    Why: a snapshot can repeat a member (an exact duplicate row, or a corrected re-export in the
    same delivery); the pick must be deterministic and must not fail the run. Quarantining the
    duplicates is the quality rules' job. Rows without a member_id are not collapsed into one:
    each stays, so a missing-key rule can see (and count) every one of them.
    """
    w = Window.partitionBy("snapshot_date", "member_id").orderBy(
        *_later_file_first(), F.col("_line_no").desc()
    )
    ranked = df.withColumn("_rank", F.row_number().over(w))
    return ranked.where((F.col("_rank") == 1) | F.col("member_id").isNull()).drop("_rank")


def members(bronze_crm: DataFrame, with_checks: bool = False) -> DataFrame:
    """bronze.crm_members rows (strings as delivered) -> silver members (`MEMBER_COLUMNS`).

    Needs the CRM columns of conf/sources.yml plus the lineage columns `_delivery_date`,
    `_source_file`, `_line_no` and `_record_hash`. `snapshot_date` is the delivery date: the
    CRM delivers a full snapshot every day. Given several deliveries, the result holds one
    row per member and snapshot. Unreadable values become null (level_raw keeps the card name
    as delivered, so an unknown level can still be reported); `with_checks` adds
    MEMBER_READABLE for the gate. A birthday of 1900-01-01 (the CRM's "unknown") is readable.
    """
    phone = F.col("phone")
    normalised = bronze_crm.select(
        n.code(F.col("member_id")).alias("member_id"),
        n.code(F.col("card_no")).alias("card_no"),
        n.non_blank(F.col("name")).alias("name"),
        n.phone(phone).alias("phone"),
        n.phone_display(phone).alias("phone_display"),
        n.email(F.col("email")).alias("email"),
        n.gender(F.col("gender")).alias("gender"),
        n.birthday(F.col("birthday")).alias("birthday"),
        n.code(F.col("register_channel")).alias("register_channel"),
        n.code(F.col("register_store_code")).alias("register_store_code"),
        n.shanghai_any_local_to_utc(F.col("register_time")).alias("register_time"),
        n.member_level(F.col("level")).alias("level"),
        n.non_blank(F.col("level")).alias("level_raw"),
        n.quantity(F.col("points")).alias("points"),
        n.non_blank(F.col("unionid")).alias("unionid"),
        n.yes_no(F.col("marketing_opt_out")).alias("marketing_opt_out"),
        F.col("_delivery_date").cast("date").alias("snapshot_date"),
        "_record_hash",
        "_source_file",
        "_line_no",
        # 0 is the contract's "unknown" (GB/T 2261.1), read as null like a blank.
        n.readable(
            F.when(F.trim(F.col("gender")) != "0", F.col("gender")), n.gender(F.col("gender"))
        ).alias("_gender_read"),
        n.readable(F.col("birthday"), n.calendar_date(F.col("birthday"))).alias("_birthday_read"),
        n.readable(
            F.col("register_time"), n.shanghai_any_local_to_utc(F.col("register_time"))
        ).alias("_register_time_read"),
        n.readable(F.col("points"), n.quantity(F.col("points"))).alias("_points_read"),
        n.readable(F.col("marketing_opt_out"), n.yes_no(F.col("marketing_opt_out"))).alias(
            "_opt_out_read"
        ),
    )
    columns = [*MEMBER_COLUMNS, *(MEMBER_READABLE if with_checks else [])]
    return _one_per_member(normalised).select(*columns)


def in_the_crm(snapshot_members: DataFrame) -> DataFrame:
    """Rows as the day's snapshot delivers them, with `left_crm_on` null: a member the snapshot
    lists is in the CRM, including one that had left it and came back."""
    return snapshot_members.withColumn(LEFT_CRM, F.lit(None).cast("date"))


def _file_date(path: Column) -> Column:
    """The date a CRM file's name gives (`crm_members_<YYYYMMDD>[_<n>].csv`), null if none."""
    return n.calendar_date(F.regexp_extract(path, _FILE_DATE_SEQ, 1))


def left_the_crm(
    held: DataFrame, listed: DataFrame, as_of: dt.date, snapshot_file_date: dt.date | None = None
) -> DataFrame:
    """member_id, left_crm_on: members of silver.members (`held`) that the full snapshot
    delivered on `as_of` no longer lists (`listed`: member_id, every id a line of that snapshot
    names). `snapshot_file_date` is the date the snapshot's file names.

    Only members last listed before the snapshot can leave on it: delivered before `as_of`, and
    in a file of an earlier date than the snapshot's. So a rerun of an earlier day never marks
    one a later snapshot listed, nor does a late file of an earlier day judge members a newer
    file listed. A member already gone keeps the earlier day it left, and one marked on `as_of`
    is found again (a rerun of the day marks the same members).
    """
    day = F.lit(as_of).cast("date")
    before = (F.col("snapshot_date") < day) & (F.col(LEFT_CRM).isNull() | (F.col(LEFT_CRM) >= day))
    if snapshot_file_date is not None:
        row_file = _file_date(F.col("_source_file"))
        before = before & (row_file.isNull() | (row_file < F.lit(snapshot_file_date)))
    return (
        held.where(F.col("member_id").isNotNull() & before)
        .join(listed.select("member_id").distinct(), "member_id", "left_anti")
        .select("member_id", day.alias(LEFT_CRM))
    )
