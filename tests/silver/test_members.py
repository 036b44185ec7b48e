"""Silver members on hand-built bronze.crm_members rows: every CRM spelling, duplicates."""

from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakehouse.quality.gate import run_gate
from lakehouse.silver.members import MEMBER_COLUMNS, MEMBER_READABLE, left_the_crm, members

UTC = dt.UTC
DAY1 = dt.date(2026, 3, 1)
DAY2 = dt.date(2026, 3, 2)
FILE1 = "file:/landing/crm_members/dt=2026-03-01/crm_members_20260301.csv"
FILE1_2 = "file:/landing/crm_members/dt=2026-03-01/crm_members_20260301_2.csv"
FILE1_10 = "file:/landing/crm_members/dt=2026-03-01/crm_members_20260301_10.csv"
FILE2 = "file:/landing/crm_members/dt=2026-03-02/crm_members_20260302.csv"

BRONZE_DDL = (
    "member_id string, card_no string, name string, phone string, email string, gender string, "
    "birthday string, register_channel string, register_store_code string, register_time string, "
    "level string, points string, unionid string, marketing_opt_out string, "
    "_delivery_date date, _source_file string, _line_no int, _record_hash string"
)


def _crm(member_id: str | None, line: int, **values: str) -> tuple:
    """One bronze CRM row with plain defaults; `values` overrides columns by name."""
    row = {
        "member_id": member_id,
        "card_no": "8860000000000001",
        "name": "张三",
        "phone": "13800138000",
        "email": "a@b.com",
        "gender": "M",
        "birthday": "1990-03-05",
        "register_channel": "STORE",
        "register_store_code": "S0001",
        "register_time": "2022-01-29 17:53:35",
        "level": "普卡",
        "points": "1",
        "unionid": "oU7x",
        "marketing_opt_out": "N",
        "_delivery_date": DAY1,
        "_source_file": FILE1,
        "_line_no": line,
        "_record_hash": f"h{line}",
    }
    row.update(values)
    return tuple(row.values())


def test_members_normalise_every_crm_spelling(spark):
    rows = [
        _crm(
            " m00000001 ",
            2,
            card_no=" 8860 0001 ",
            name=" 张三 ",
            phone="+86 138-0013-8000",
            email=" Li@X.com ",
            gender="男",
            register_channel=" store ",
            register_store_code=" s0001 ",
            level="普卡",
            points=" 395 ",
            unionid=" oU7x ",
            marketing_opt_out="Y",
        ),
        _crm(
            "M2",
            3,
            gender="女",
            birthday="1990/3/5",
            phone="86-13800138001",
            email="not-an-email",
            register_channel="TMALL",
            register_store_code="",
            level="银卡",
            unionid="",
            marketing_opt_out="N",
        ),
        _crm(
            "M3",
            4,
            gender="1",
            birthday="19900305",
            phone="138****5678",
            email="",
            register_channel="jd",
            register_time="",
            level="金卡",
            unionid="   ",
            marketing_opt_out="",
        ),
        _crm("M4", 5, gender="2", birthday="1900-01-01", phone="", level="钻石卡"),
        _crm("M5", 6, gender="0", birthday="", level="黑卡", points="abc", name="  "),
        _crm("M6", 7, gender="", birthday="1900/1/1", register_time="2022-02-30 10:00:00"),
        _crm("M7", 8, gender=" f ", birthday="2026-02-30", marketing_opt_out="是"),
    ]
    got = members(spark.createDataFrame(rows, BRONZE_DDL))
    assert got.columns == MEMBER_COLUMNS

    reg = dt.datetime(2022, 1, 29, 9, 53, 35, tzinfo=UTC)  # 17:53:35 Shanghai
    bday = dt.date(1990, 3, 5)
    expected = spark.createDataFrame(
        [
            ("M00000001", "88600001", "张三", "13800138000", "138****8000", "li@x.com", "M", bday,
             "STORE", "S0001", reg, "REGULAR", "普卡", 395, "oU7x", True),
            ("M2", "8860000000000001", "张三", "13800138001", "138****8001", None, "F", bday,
             "TMALL", None, reg, "SILVER", "银卡", 1, None, False),
            ("M3", "8860000000000001", "张三", None, "138****5678", None, "M", bday,
             "JD", "S0001", None, "GOLD", "金卡", 1, None, None),
            ("M4", "8860000000000001", "张三", None, None, "a@b.com", "F", None,
             "STORE", "S0001", reg, "DIAMOND", "钻石卡", 1, "oU7x", False),
            ("M5", "8860000000000001", None, "13800138000", "138****8000", "a@b.com", None, None,
             "STORE", "S0001", reg, None, "黑卡", None, "oU7x", False),
            ("M6", "8860000000000001", "张三", "13800138000", "138****8000", "a@b.com", None,
             None, "STORE", "S0001", None, "REGULAR", "普卡", 1, "oU7x", False),
            ("M7", "8860000000000001", "张三", "13800138000", "138****8000", "a@b.com", "F",
             None, "STORE", "S0001", reg, "REGULAR", "普卡", 1, "oU7x", True),
        ],
        "member_id string, card_no string, name string, phone string, phone_display string, "
        "email string, gender string, birthday date, register_channel string, "
        "register_store_code string, register_time timestamp, level string, level_raw string, "
        "points int, unionid string, marketing_opt_out boolean",
    )  # fmt: skip
    assert_df_equality(
        got.select(*expected.columns).orderBy("member_id"),
        expected.orderBy("member_id"),
        ignore_nullable=True,
    )


def test_members_keep_one_row_per_member_and_snapshot(spark):
    rows = [
        # exact duplicate rows: one survives
        _crm("M1", 2, _record_hash="same"),
        _crm("M1", 3, _record_hash="same"),
        # same member twice, different values: the later line wins
        _crm("M2", 4, points="10"),
        _crm("M2", 9, points="20"),
        # a corrected re-export in the same delivery wins over the original, whatever the line;
        # re-export _10 is later than _2 (plain name order would say otherwise)
        _crm("M3", 8, points="30", _source_file=FILE1),
        _crm("M3", 2, points="31", _source_file=FILE1_2),
        _crm("M3", 1, points="32", _source_file=FILE1_10),
        # the member spelt differently is still the same member_id
        _crm("m4", 2, points="40", _source_file=FILE1_2),
        _crm(" M4", 3, points="41", _source_file=FILE1_2),
        # one person with two member records (same phone): both kept
        _crm("M5", 5, phone="13900000000"),
        _crm("M6", 6, phone="+8613900000000"),
        # rows without a member_id are not merged: the missing-key rule must see each
        _crm("", 10, points="50"),
        _crm(None, 11, points="51"),
        # the next day's snapshot is a snapshot of its own
        _crm("M1", 2, points="60", _delivery_date=DAY2, _source_file=FILE2),
    ]
    got = members(spark.createDataFrame(rows, BRONZE_DDL))
    expected = spark.createDataFrame(
        [
            (None, DAY1, 50, FILE1, 10),
            (None, DAY1, 51, FILE1, 11),
            ("M1", DAY1, 1, FILE1, 3),
            ("M1", DAY2, 60, FILE2, 2),
            ("M2", DAY1, 20, FILE1, 9),
            ("M3", DAY1, 32, FILE1_10, 1),
            ("M4", DAY1, 41, FILE1_2, 3),
            ("M5", DAY1, 1, FILE1, 5),
            ("M6", DAY1, 1, FILE1, 6),
        ],
        "member_id string, snapshot_date date, points int, _source_file string, _line_no int",
    )
    assert_df_equality(
        got.select(*expected.columns).orderBy("member_id", "snapshot_date", "_line_no"),
        expected,
        ignore_nullable=True,
    )


def test_a_crm_value_written_but_unreadable_is_quarantined_not_read_as_none(spark):
    """Before, an opt-out of `X`, a register_time of 2026-02-30, points `abc`, a gender or
    birthday in no contract spelling read as missing and passed the gate: silver replaced an
    opted-out member's `true` with null, which gold reads as contactable. A registration
    before earliest_business_date (the Unix epoch) passed too and became the person's
    "original account" in the golden record. Blank, gender 0 and the 1900-01-01 birthday
    still say "none"."""
    rows = [
        _crm("M1", 2),
        _crm("M2", 3, marketing_opt_out="", gender="0", birthday="1900-01-01", points=""),
        _crm("M3", 4, gender="", birthday="", register_time=""),
        _crm("M4", 5, marketing_opt_out="X"),
        _crm("M5", 6, register_time="2026-02-30 10:00:00"),
        _crm("M6", 7, points="abc"),
        _crm("M7", 8, gender="U"),
        _crm("M8", 9, birthday="1990-13-40"),
        _crm("M9", 10, register_time="1970-01-01 08:00:00"),
    ]
    got = members(spark.createDataFrame(rows, BRONZE_DDL), with_checks=True)
    assert got.columns == [*MEMBER_COLUMNS, *MEMBER_READABLE]
    parameters = {
        "future_limit": "2026-03-02T00:00:00",
        "earliest_time": "2000-01-01T00:00:00",
        "run_date": DAY1.isoformat(),
    }
    with run_gate(
        got,
        "silver.members",
        key_columns=["member_id"],
        run_id="r",
        run_date=DAY1,
        parameters=parameters,
    ) as gate:
        good = sorted(r.member_id for r in gate.good.collect())
        bad = sorted((r.record_key, r.expectation) for r in gate.quarantined.collect())
    assert good == ["M1", "M2", "M3"]
    assert bad == [
        ("M4", "marketing_opt_out_readable"),
        ("M5", "register_time_readable"),
        ("M6", "points_readable"),
        ("M7", "gender_readable"),
        ("M8", "birthday_readable"),
        ("M9", "registered_not_before_earliest_date"),
    ]


def test_a_member_the_full_snapshot_no_longer_lists_has_left_the_crm(spark):
    """Judged on day 3's snapshot, which lists M1 and M3 only. M2 was last listed on day 2: it
    leaves on day 3. M4 left on day 2 and keeps that day; M5 was marked on day 3 by an earlier
    try of the day and is found again; M3 is listed; M6 was listed on day 4 (a rerun of day 3
    after day 4 must not mark it)."""
    day3, day4 = dt.date(2026, 3, 3), dt.date(2026, 3, 4)
    held = spark.createDataFrame(
        [
            ("M1", DAY2, None),
            ("M2", DAY2, None),
            ("M3", DAY1, DAY2),
            ("M4", DAY1, DAY2),
            ("M5", DAY2, day3),
            ("M6", day4, None),
            (None, DAY1, None),
        ],
        "member_id string, snapshot_date date, left_crm_on date",
    ).withColumn("_source_file", F.lit(FILE1))
    listed = spark.createDataFrame([("M1",), ("M3",), ("M3",)], "member_id string")
    expected = spark.createDataFrame(
        [("M2", day3), ("M5", day3)], "member_id string, left_crm_on date"
    )
    assert_df_equality(
        left_the_crm(held, listed, day3),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert_df_equality(
        left_the_crm(held, listed, day3, snapshot_file_date=day3),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_a_late_file_of_an_earlier_day_judges_only_members_listed_before_it(spark):
    """Delivered on day 3 with no file of its own, day 1's corrected export lists M1 only. M2
    was last listed in day 2's file, a newer one: no evidence it left. M3, last listed in an
    older file (day 0's, delivered on day 1), was gone by day 1."""
    day0, day3 = dt.date(2026, 2, 28), dt.date(2026, 3, 3)
    held = spark.createDataFrame(
        [("M1", DAY1, FILE1), ("M2", DAY2, FILE2), ("M3", DAY1, FILE1.replace("0301", "0228"))],
        "member_id string, snapshot_date date, _source_file string",
    ).withColumn("left_crm_on", F.lit(None).cast("date"))
    listed = spark.createDataFrame([("M1",)], "member_id string")
    got = left_the_crm(held, listed, day3, snapshot_file_date=DAY1)
    assert [tuple(r) for r in got.collect()] == [("M3", day3)]
    assert day0 < DAY1  # M3's file is of day 0
