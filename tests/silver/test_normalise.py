"""The silver normalisers: every spelling of the landing contract, plus garbage, under ANSI mode.

Each test builds one small DataFrame of (raw, expected) rows and runs one action.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal

import pytest
from chispa import assert_column_equality, assert_df_equality
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.silver import normalise as n
from lakehouse.spark import session_conf

UTC = dt.UTC
D = Decimal
GARBAGE = [None, "", "   ", "\t", "\u3000", "abc", "!@#$%"]


def ts(*parts: int) -> dt.datetime:
    """An instant given in UTC."""
    return dt.datetime(*parts, tzinfo=UTC)


def _sql_literal(value: object) -> str:
    """A Spark SQL literal for a test value; strings travel as UTF-8 hex, so any text is safe."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return f"CAST(X'{value.encode().hex()}' AS STRING)"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | Decimal):
        return f"'{value}'"
    if isinstance(value, dt.datetime):
        assert value.tzinfo is not None, "test instants carry their offset"
        return f"TIMESTAMP'{value.isoformat()}'"
    if isinstance(value, dt.date):
        return f"DATE'{value.isoformat()}'"
    raise TypeError(f"no SQL literal for {value!r}")


def frame(spark: SparkSession, rows: list[tuple], schema: str) -> DataFrame:
    """A small DataFrame as an inline VALUES table (`schema`: "name type, name type, ...").

    Why not createDataFrame: that builds an RDD, so every assertion launches a Spark job.
    A VALUES table is a local relation: Spark evaluates the expressions on the driver and the
    whole module runs in seconds. `test_driver_and_executor_agree` covers the job path.
    """
    columns = [c.split(None, 1) for c in re.split(r",\s*(?![^()]*\))", schema)]
    values = ", ".join("(" + ", ".join(map(_sql_literal, row)) + ")" for row in rows)
    aliases = ", ".join(f"c{i}" for i in range(len(columns)))
    select = ", ".join(f"CAST(c{i} AS {t}) AS `{name}`" for i, (name, t) in enumerate(columns))
    return spark.sql(f"SELECT {select} FROM VALUES {values} AS v({aliases})")


def check(
    spark: SparkSession,
    fn: Callable[[Column], Column],
    rows: list[tuple],
    schema: str,
) -> None:
    """fn(raw) equals expected on every row, and has expected's type."""
    df = frame(spark, rows, schema).withColumn("actual", fn(F.col("raw")))
    assert df.schema["actual"].dataType == df.schema["expected"].dataType
    assert_column_equality(df, "actual", "expected")


def nulls(values: list, expected: object = None) -> list[tuple]:
    return [(v, expected) for v in values]


def test_session_is_ansi_and_utc(spark):
    # The normalisers must hold under the project's real settings.
    assert spark.conf.get("spark.sql.ansi.enabled") == "true"
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"


# --- phones -------------------------------------------------------------------------------------


def test_phone_every_spelling_and_garbage(spark):
    m = "13800138000"
    rows = [
        ("13800138000", m),
        ("+8613800138000", m),
        ("+86 138 0013 8000", m),
        ("+86-138-0013-8000", m),
        ("86-13800138000", m),
        ("8613800138000", m),
        ("008613800138000", m),
        ("0086 138 0013 8000", m),
        ("138-0013-8000", m),
        (" 138 0013 8000\t", m),
        ("\t13800138000", m),
        ("138\u30000013\u30008000", m),
        # Keyed in the input method's full-width mode, whole or in part.
        ("\uff11\uff13\uff18\uff10\uff10\uff11\uff13\uff18\uff10\uff10\uff10", m),
        ("\uff0b\uff18\uff16\u3000\uff11\uff13\uff18\uff0d0013\uff0d8000", m),
        ("19912345678", "19912345678"),
        ("138****5678", None),  # masked: no identifier
        ("+86 138****5678", None),
        ("12345678901", None),  # second digit 2
        ("1380013800", None),  # 10 digits
        ("138001380001", None),  # 12 digits
        ("86138001380", None),  # 86 + too few digits
        ("+85213800138000", None),  # Hong Kong prefix
        ("021-12345678", None),  # landline
        ("1380013800O", None),  # letter O
        ("99999999999999999999", None),
        *nulls(GARBAGE),
    ]
    check(spark, n.phone, rows, "raw string, expected string")


def test_phone_is_masked(spark):
    rows = [
        ("138****5678", True),
        ("+86 138****5678", True),
        ("86-138****5678", True),
        (" 138****5678 ", True),
        ("\uff11\uff13\uff18\uff0a\uff0a\uff0a\uff0a5678", True),
        ("13800138000", False),
        ("138*****678", False),
        ("138****567", False),
        ("****", False),
        *nulls(GARBAGE, False),
    ]
    check(spark, n.phone_is_masked, rows, "raw string, expected boolean")


def test_phone_display(spark):
    rows = [
        ("13800138000", "138****8000"),
        ("+86 138 0013 8000", "138****8000"),
        ("138-0013-8000", "138****8000"),
        ("138****5678", "138****5678"),
        ("86-138****5678", "138****5678"),
        ("\uff11\uff13\uff18\uff10\uff10\uff11\uff13\uff18\uff10\uff10\uff10", "138****8000"),
        ("12345678901", None),
        *nulls(GARBAGE),
    ]
    check(spark, n.phone_display, rows, "raw string, expected string")


# --- email, codes, free text, order numbers -----------------------------------------------------


def test_email(spark):
    rows = [
        ("li@example.com", "li@example.com"),
        (" Li.Wei@Example.COM ", "li.wei@example.com"),
        ("\tZHANG@QQ.COM\u3000", "zhang@qq.com"),
        ("user+tag@mail.example.cn", "user+tag@mail.example.cn"),
        ("li\uff20example.com", "li@example.com"),  # a full-width ＠
        ("\uff2c\uff49\uff20\uff45\uff58\uff0e\uff43\uff4e", "li@ex.cn"),  # all full width
        ("a@b@c.com", None),
        ("li wei@example.com", None),
        ("li@example", None),
        ("li@.com", None),
        ("li@example.", None),
        ("@example.com", None),
        ("li@", None),
        ("not an email", None),
        *nulls(GARBAGE),
    ]
    check(spark, n.email, rows, "raw string, expected string")


def test_code(spark):
    rows = [
        (" sku-00123 ", "SKU-00123"),
        ("SKU-00123", "SKU-00123"),
        ("\tsku-00123\u3000", "SKU-00123"),
        ("sku 001 23", "SKU00123"),
        ("s001", "S001"),
        ("wh-01", "WH-01"),
        ("m00012345", "M00012345"),
        # Keyed in full width, whole or in part (`ＳＫＵ－００１２３`, `ｍ0001 2345`).
        ("\uff33\uff2b\uff35\uff0d\uff10\uff10\uff11\uff12\uff13", "SKU-00123"),
        ("\uff4d0001\u30002345", "M00012345"),
        (None, None),
        ("", None),
        ("   ", None),
        ("\t", None),
        ("\u3000\u3000", None),
    ]
    check(spark, n.code, rows, "raw string, expected string")


def test_non_blank_keeps_inner_characters(spark):
    rows = [
        ("张三", "张三"),
        ("  张三 ", "张三"),
        ("\t小明\u3000", "小明"),
        ("tb 123  abc", "tb 123  abc"),
        ("😀 nick ✨", "😀 nick ✨"),
        ("浙江省 杭州市 西湖区 文三路1号", "浙江省 杭州市 西湖区 文三路1号"),
        ("jd_5f3a9c", "jd_5f3a9c"),
        ("a\u00a0", "a"),
        (None, None),
        ("", None),
        ("   ", None),
        ("\t\u3000\r\n", None),
    ]
    check(spark, n.non_blank, rows, "raw string, expected string")


def test_order_number(spark):
    no = "2937000000000000001"
    rows = [
        ('="2937000000000000001"', no),  # bronze value after CSV parsing
        ('"=""2937000000000000001"""', no),  # the raw CSV field, unparsed
        ("=2937000000000000001", no),  # quotes lost
        ("\t2937000000000000001", no),
        ("'2937000000000000001", no),
        (" 2937000000000000001 ", no),
        ('\t="2937000000000000001"', no),
        ("293700000000000001", "293700000000000001"),  # 18 digits
        ("230012345678", "230012345678"),  # JD orderId
        ("M20260301000123", "M20260301000123"),  # mall order_id
        ("2.937E+18", None),  # mangled by Excel: digits lost
        ("2937-0001", None),
        ('=""', None),
        ("'", None),
        *nulls(GARBAGE[:-2]),
    ]
    check(spark, n.order_number, rows, "raw string, expected string")


# --- money and counts ---------------------------------------------------------------------------


def test_yuan(spark):
    rows = [
        ("299.00", D("299.00")),
        ("1,299.00", D("1299.00")),
        (" 12.5 ", D("12.50")),
        ("¥12.50", D("12.50")),
        ("￥12.50", D("12.50")),
        ("¥ 1,299.00", D("1299.00")),
        ("-3.00", D("-3.00")),
        ("-¥3.00", D("-3.00")),
        ("¥-3.00", D("-3.00")),
        ("0.00", D("0.00")),
        ("0", D("0.00")),
        ("1,234,567.89", D("1234567.89")),
        ("12.500", D("12.50")),
        ("9999999999999999.99", D("9999999999999999.99")),
        ("99999999999999999.00", None),  # does not fit DECIMAL(18,2)
        ("12.505", None),  # not a yuan amount; no silent rounding
        ("12,34.00", None),
        ("1,2", None),
        ("12.", None),
        (".5", None),
        ("--3", None),
        ("1e3", None),
        ("NaN", None),
        ("Infinity", None),
        *nulls(GARBAGE),
    ]
    check(spark, n.yuan, rows, "raw string, expected decimal(18,2)")


def test_fen_to_yuan_from_strings(spark):
    rows = [
        ("29900", D("299.00")),
        ("3000", D("30.00")),
        ("1", D("0.01")),
        ("0", D("0.00")),
        ("-500", D("-5.00")),
        (" 26900 ", D("269.00")),
        ("29900.0", D("299.00")),
        ("999999999999999999", D("9999999999999999.99")),
        ("9999999999999999999", None),  # does not fit DECIMAL(18,2)
        ("29900.5", None),
        ("1e5", None),
        ("1,000", None),
        *nulls(GARBAGE),
    ]
    check(spark, n.fen_to_yuan, rows, "raw string, expected decimal(18,2)")


def test_fen_to_yuan_from_numbers(spark):
    rows = [(29900, D("299.00")), (-100, D("-1.00")), (0, D("0.00")), (None, None)]
    check(spark, n.fen_to_yuan, rows, "raw bigint, expected decimal(18,2)")


def test_quantity(spark):
    rows = [
        ("3", 3),
        (" 3 ", 3),
        ("-1", -1),
        ("+2", 2),
        ("3.0", 3),
        ("3.00", 3),
        ("0", 0),
        ("007", 7),
        ("2147483647", 2147483647),
        ("3.5", None),
        ("1e3", None),
        ("1,000", None),
        ("99999999999", None),  # beyond int
        *nulls(GARBAGE),
    ]
    check(spark, n.quantity, rows, "raw string, expected int")


# --- times --------------------------------------------------------------------------------------


def test_shanghai_local_to_utc_both_formats(spark):
    rows = [
        ("2026-03-01 10:22:01", "local", ts(2026, 3, 1, 2, 22, 1)),
        (" 2026-03-01 10:22:01 ", "local", ts(2026, 3, 1, 2, 22, 1)),
        ("2026-03-01 00:00:00", "local", ts(2026, 2, 28, 16, 0, 0)),
        ("2026-03-02 07:59:59", "local", ts(2026, 3, 1, 23, 59, 59)),
        ("2026/03/01 10:22:01", "pos", ts(2026, 3, 1, 2, 22, 1)),
        ("2026/12/31 23:59:59", "pos", ts(2026, 12, 31, 15, 59, 59)),
        ("2026-02-30 10:00:00", "local", None),  # impossible date
        ("2026-03-01 25:00:00", "local", None),
        ("2026-03-01", "local", None),
        ("2026/03/01 10:22:01", "local", None),  # wrong format for the source
        ("2026-03-01 10:22:01", "pos", None),
        ("2026-03-01T02:22:01Z", "local", None),
        *[(g, kind, None) for g in GARBAGE for kind in ("local", "pos")],
    ]
    df = frame(spark, rows, "raw string, kind string, expected timestamp")
    actual = F.when(
        F.col("kind") == "pos", n.shanghai_local_to_utc(F.col("raw"), n.POS_FORMAT)
    ).otherwise(n.shanghai_local_to_utc(F.col("raw")))
    df = df.withColumn("actual", actual)
    assert df.schema["actual"].dataType == df.schema["expected"].dataType
    assert_column_equality(df, "actual", "expected")


def test_utc_iso_to_timestamp(spark):
    instant = ts(2026, 3, 1, 2, 22, 1)
    rows = [
        ("2026-03-01T02:22:01Z", instant),
        ("2026-03-01T02:22:01+00:00", instant),
        ("2026-03-01T02:22:01+0000", instant),
        ("2026-03-01T10:22:01+08:00", instant),  # an explicit offset is honoured
        (" 2026-03-01T02:22:01Z ", instant),
        ("2026-03-01 02:22:01Z", instant),
        ("2026-03-01t02:22:01z", instant),
        ("2026-03-01T02:22:01", instant),  # no offset: the source is UTC
        ("2026-03-01T02:22:01.123Z", ts(2026, 3, 1, 2, 22, 1) + dt.timedelta(microseconds=123000)),
        ("2026-03-01T02:22:01.123456+00:00", ts(2026, 3, 1, 2, 22, 1, 123456)),
        ("2026-02-30T02:22:01Z", None),
        ("2026-03-01", None),
        ("2026-03-01T02:22Z", ts(2026, 3, 1, 2, 22, 0)),  # ISO 8601 without seconds
        ("2026-03-01T10:22+08:00", ts(2026, 3, 1, 2, 22, 0)),
        ("2026-03-01T02:22", ts(2026, 3, 1, 2, 22, 0)),
        ("2026-03-01T02:22.5Z", None),  # a fraction of a minute is no spelling
        ("2026-03-01T02:2Z", None),
        ("2026-03-01T02:22:01Z[UTC]", None),
        ("1772331721", None),
        *nulls(GARBAGE),
    ]
    check(spark, n.utc_iso_to_timestamp, rows, "raw string, expected timestamp")


def test_shanghai_date(spark):
    rows = [
        (ts(2026, 3, 1, 17, 0, 0), dt.date(2026, 3, 2)),
        (ts(2026, 3, 1, 16, 0, 0), dt.date(2026, 3, 2)),
        (ts(2026, 3, 1, 15, 59, 59), dt.date(2026, 3, 1)),
        (ts(2025, 12, 31, 16, 0, 0), dt.date(2026, 1, 1)),
        (ts(2026, 3, 1, 0, 0, 0), dt.date(2026, 3, 1)),
        (None, None),
    ]
    check(spark, n.shanghai_date, rows, "raw timestamp, expected date")


def test_times_do_not_depend_on_session_time_zone(spark):
    schema = (
        "local string, iso string, want_local timestamp, want_iso timestamp, "
        "want_local_date date, want_iso_date date"
    )
    rows = [
        # 02:30 on 2026-03-08 does not exist in New York (DST gap); it does in Shanghai.
        ("2026-03-08 02:30:00", "2026-03-01T17:00:00Z",
         ts(2026, 3, 7, 18, 30), ts(2026, 3, 1, 17), dt.date(2026, 3, 8), dt.date(2026, 3, 2)),
        # 01:30 on 2026-11-01 happens twice in New York; 05:30Z is the first one.
        ("2026-11-01 01:30:00", "2026-11-01T05:30:00Z",
         ts(2026, 10, 31, 17, 30), ts(2026, 11, 1, 5, 30), dt.date(2026, 11, 1),
         dt.date(2026, 11, 1)),
        ("2026-03-01 00:30:00", "2026-03-01T15:59:59+00:00",
         ts(2026, 2, 28, 16, 30), ts(2026, 3, 1, 15, 59, 59), dt.date(2026, 3, 1),
         dt.date(2026, 3, 1)),
    ]  # fmt: skip
    before = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        # Built inside: Spark fixes an expression's time zone when it analyses the plan.
        df = frame(spark, rows, schema)
        local = n.shanghai_local_to_utc(F.col("local"))
        iso = n.utc_iso_to_timestamp(F.col("iso"))
        names = ["local", "iso", "local_date", "iso_date"]
        actual = [local, iso, n.shanghai_date(local), n.shanghai_date(iso)]
        df = df.select(
            F.struct(*[c.alias(name) for c, name in zip(actual, names, strict=True)]).alias("a"),
            F.struct(*[F.col(f"want_{name}").alias(name) for name in names]).alias("want"),
            # Control: the session-zone way (from_utc_timestamp + to_date) gets dates wrong here.
            (F.to_date(F.from_utc_timestamp(iso, n.SHANGHAI)) != F.col("want_iso_date")).alias(
                "naive_wrong"
            ),
        )
        assert_column_equality(df, "a", "want")
        assert df.where("naive_wrong").count() > 0
    finally:
        spark.conf.set("spark.sql.session.timeZone", before)
    assert spark.conf.get("spark.sql.session.timeZone") == before


# --- dates --------------------------------------------------------------------------------------


def test_birthday(spark):
    d = dt.date(1990, 5, 7)
    rows = [
        ("1990-05-07", d),
        ("1990/5/7", d),
        ("1990/05/07", d),
        ("19900507", d),
        (" 1990-05-07 ", d),
        ("1990-5-7", d),
        ("1990/12/31", dt.date(1990, 12, 31)),
        ("2024-02-29", dt.date(2024, 2, 29)),
        ("1900-01-02", dt.date(1900, 1, 2)),
        ("2099-01-01", dt.date(2099, 1, 1)),  # future: kept, judged by quality rules
        ("1900-01-01", None),  # placeholder, in every spelling
        ("1900/1/1", None),
        ("1900/01/01", None),
        ("19000101", None),
        ("1899-12-31", None),
        ("0001-01-01", None),
        ("2026-02-30", None),
        ("2026/2/30", None),
        ("20260230", None),
        ("2025-02-29", None),
        ("1990-13-01", None),
        ("1990-05/07", None),  # mixed separators
        ("1990.05.07", None),
        ("199005", None),
        ("1990-05-07 00:00:00", None),
        *nulls(GARBAGE),
    ]
    check(spark, n.birthday, rows, "raw string, expected date")


def test_is_future_with_column_date_and_string(spark):
    day = dt.date(2026, 3, 1)
    rows = [
        (dt.date(2026, 3, 2), day, True, True),
        (day, day, False, False),
        (dt.date(2026, 2, 28), day, False, False),
        (None, day, False, False),
        (dt.date(2026, 3, 2), None, False, True),
    ]
    df = frame(spark, rows, "d date, as_of date, exp_col boolean, exp_lit boolean")
    df = df.select(
        F.array(
            n.is_future(F.col("d"), F.col("as_of")),
            n.is_future(F.col("d"), day),
            n.is_future(F.col("d"), "2026-03-01"),
        ).alias("actual"),
        F.array("exp_col", "exp_lit", "exp_lit").alias("expected"),
    )
    assert_column_equality(df, "actual", "expected")


# --- enumerations -------------------------------------------------------------------------------


def test_gender(spark):
    rows = [
        ("M", "M"),
        ("F", "F"),
        ("m", "M"),
        ("f", "F"),
        ("男", "M"),
        ("女", "F"),
        ("1", "M"),
        ("2", "F"),
        (" 男 ", "M"),
        ("\tf\u3000", "F"),
        ("0", None),
        ("9", None),
        ("X", None),
        ("男性", None),
        ("12", None),
        *nulls(GARBAGE),
    ]
    check(spark, n.gender, rows, "raw string, expected string")


def test_yes_no(spark):
    rows = [
        ("Y", True),
        ("N", False),
        ("y", True),
        ("n", False),
        ("是", True),
        ("否", False),
        ("1", True),
        ("0", False),
        ("true", True),
        ("false", False),
        ("TRUE", True),
        ("False", False),
        (" Y ", True),
        ("2", None),
        ("maybe", None),
        ("是的", None),
        *nulls(GARBAGE),
    ]
    check(spark, n.yes_no, rows, "raw string, expected boolean")


def test_member_level(spark):
    rows = [
        ("普卡", "REGULAR"),
        ("银卡", "SILVER"),
        ("金卡", "GOLD"),
        ("钻石卡", "DIAMOND"),
        (" 金卡 ", "GOLD"),
        ("\t钻石卡\u3000", "DIAMOND"),
        ("GOLD", "GOLD"),  # already normalised: unchanged
        ("gold", "GOLD"),
        ("黑卡", None),
        ("金", None),
        ("金 卡", None),
        *nulls(GARBAGE),
    ]
    check(spark, n.member_level, rows, "raw string, expected string")
    assert n.MEMBER_LEVELS == {
        "普卡": "REGULAR",
        "银卡": "SILVER",
        "金卡": "GOLD",
        "钻石卡": "DIAMOND",
    }


# --- identifier dispatch ------------------------------------------------------------------------


def test_identifier_normalisers_map_every_identifier_type():
    assert {
        "phone": n.phone,
        "email": n.email,
        "member_id": n.code,
        "card_no": n.code,
        "unionid": n.non_blank,
        "openid": n.non_blank,
        "tmall_nick": n.non_blank,
        "jd_pin": n.non_blank,
    } == n.IDENTIFIER_NORMALISERS


def test_normalised_identifier_by_type_column(spark):
    rows = [
        ("phone", "+86 138 0013 8000", "13800138000"),
        ("phone", "138****5678", None),
        (" PHONE ", "13800138000", "13800138000"),
        ("email", " Li@X.com ", "li@x.com"),
        ("member_id", " m00012345 ", "M00012345"),
        ("card_no", "c 0001", "C0001"),
        ("unionid", " oU7xAbC ", "oU7xAbC"),
        ("openid", "oX3kDeF", "oX3kDeF"),
        ("tmall_nick", " 小明 123 ", "小明 123"),
        ("jd_pin", "jd_5f3a9c", "jd_5f3a9c"),
        ("fax", "12345", None),
        (None, "x", None),
        ("email", None, None),
    ]
    df = frame(spark, rows, "type string, value string, expected string")
    df = df.withColumn("actual", n.normalised_identifier(F.col("type"), F.col("value")))
    assert_column_equality(df, "actual", "expected")


def test_normalised_identifier_by_type_name(spark):
    rows = [(" Li@X.com ", "li@x.com"), ("nope", None)]
    check(spark, lambda c: n.normalised_identifier("email", c), rows, "raw string, expected string")
    with pytest.raises(ValueError, match="unknown identifier type 'fax'"):
        n.normalised_identifier("fax", F.col("raw"))


# --- properties ---------------------------------------------------------------------------------


def test_string_normalisers_are_idempotent(spark):
    # Silver may normalise a value that is already normal (a re-run, a join key): no change.
    fns = [
        n.phone, n.phone_display, n.email, n.code, n.non_blank, n.order_number, n.gender,
        n.member_level,
    ]  # fmt: skip
    raw = [
        "+86 138 0013 8000", "138****5678", " Li@X.com ", " sku-00123 ", '="2937000000000000001"',
        "男", " 金卡 ", "  张三 ", "\u3000", "", None, "abc",
    ]  # fmt: skip
    df = frame(spark, [(r,) for r in raw], "raw string")
    once = [fn(F.col("raw")) for fn in fns]
    twice = [fn(fn(F.col("raw"))) for fn in fns]
    df = df.select(F.array(*once).alias("once"), F.array(*twice).alias("twice"))
    assert_column_equality(df, "once", "twice")


def test_driver_and_executor_agree(spark):
    """The other tests evaluate on the driver (local relation, interpreted); silver jobs run
    compiled code in executors. Same expressions through a real job, compiled (whole-stage
    code generation, which the test session turns off for speed), give the same rows."""
    day = dt.date(2026, 3, 1)
    fns: dict[str, Callable[[Column], Column]] = {
        "phone": n.phone,
        "masked": n.phone_is_masked,
        "display": n.phone_display,
        "email": n.email,
        "code": n.code,
        "non_blank": n.non_blank,
        "order_number": n.order_number,
        "yuan": n.yuan,
        "fen": n.fen_to_yuan,
        "quantity": n.quantity,
        "local": n.shanghai_local_to_utc,
        "pos": lambda c: n.shanghai_local_to_utc(c, n.POS_FORMAT),
        "iso": n.utc_iso_to_timestamp,
        "iso_date": lambda c: n.shanghai_date(n.utc_iso_to_timestamp(c)),
        "birthday": n.birthday,
        "future": lambda c: n.is_future(n.birthday(c), day),
        "gender": n.gender,
        "yes_no": n.yes_no,
        "level": n.member_level,
        "identifier": lambda c: n.normalised_identifier(F.lit("phone"), c),
    }
    raw = [
        "13800138000", "+86 138 0013 8000", "138****5678", " Li@X.com ", " sku-00123 ",
        '="2937000000000000001"', "1,299.00", "¥12.50", "29900", "3.0", "2026-03-01 10:22:01",
        "2026/03/01 10:22:01", "2026-03-01T17:22:01Z", "1990/5/7", "2099-01-01", "19000101",
        "2026-02-30", "男", "是", " 金卡 ", "", "\u3000", None, "abc", "-1",
    ]  # fmt: skip
    columns = [fn(F.col("raw")).alias(name) for name, fn in fns.items()]
    on_driver = frame(spark, [(r,) for r in raw], "raw string").select(*columns)
    compiled = {
        "spark.sql.codegen.wholeStage": "true",
        "spark.sql.codegen.factoryMode": "CODEGEN_ONLY",
    }
    with session_conf(spark, compiled):
        in_a_job = spark.createDataFrame([(r,) for r in raw], "raw string").select(*columns)
        plan = in_a_job._jdf.queryExecution().executedPlan().toString()
        assert "*(1) Project" in plan, plan  # the projection runs as generated code
        rows = in_a_job.collect()
    assert_df_equality(spark.createDataFrame(rows, in_a_job.schema), on_driver)


def test_shanghai_any_local_to_utc_reads_every_common_spelling(spark):
    """The CRM's register_time and the touches' touch_time have no format in the contract: every
    usual spelling reads."""
    instant = ts(2026, 3, 1, 2, 22, 1)
    rows = [
        ("2026-03-01 10:22:01", instant),
        ("2026/03/01 10:22:01", instant),
        ("2026/3/1 10:22:01", instant),
        ("2026-03-01T10:22:01", instant),
        ("2026-03-01 10:22:01.000", instant),
        ("2026-03-01T02:22:01Z", instant),  # an explicit zone is honoured
        ("2026-03-01T10:22:01+08:00", instant),
        ("2026-03-01", ts(2026, 2, 28, 16, 0, 0)),  # a date alone: its midnight
        ("2026/3/1", ts(2026, 2, 28, 16, 0, 0)),
        ("20260301 10:22:01", instant),  # the compact date calendar_date reads, with a time
        ("20260301", ts(2026, 2, 28, 16, 0, 0)),
        ("2026-03-01 10:22", ts(2026, 3, 1, 2, 22, 0)),  # no seconds, as a spreadsheet saves it
        ("2026/3/1 10:22", ts(2026, 3, 1, 2, 22, 0)),
        ("2026-03-01 10:22:", None),
        ("2026-03-01 10:22.5", None),  # a fraction of a minute is no spelling
        ("2026-03-01T02:22Z", ts(2026, 3, 1, 2, 22, 0)),  # an explicit zone, no seconds
        ("2026-03-01T10:22+08:00", ts(2026, 3, 1, 2, 22, 0)),
        ("2026-03-01T10:22", ts(2026, 3, 1, 2, 22, 0)),  # no zone: Shanghai's
        ("20260301102201", None),  # no separator at all: no spelling this reads
        ("2026-02-30 10:00:00", None),
        ("2026-03-01 25:00:00", None),
        ("yesterday", None),
        ("", None),
        (None, None),
    ]
    df = frame(spark, rows, "raw string, expected timestamp").withColumn(
        "actual", n.shanghai_any_local_to_utc(F.col("raw"))
    )
    assert_column_equality(df, "actual", "expected")


def test_calendar_date_reads_the_spellings_a_system_writes(spark):
    """Master, campaign and inventory dates have no format in the contract beyond ISO."""
    rows = [
        ("2026-03-01", dt.date(2026, 3, 1)),
        (" 2026/3/1 ", dt.date(2026, 3, 1)),
        ("2026/03/01", dt.date(2026, 3, 1)),
        ("20260301", dt.date(2026, 3, 1)),
        ("1900-01-01", dt.date(1900, 1, 1)),  # not a birthday: no placeholder here
        ("2026-02-30", None),
        ("2026-3", None),
        ("", None),
        (None, None),
    ]
    df = frame(spark, rows, "raw string, expected date").withColumn(
        "actual", n.calendar_date(F.col("raw"))
    )
    assert_column_equality(df, "actual", "expected")
