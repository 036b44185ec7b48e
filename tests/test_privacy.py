"""`lakehouse erase` building blocks: who the person is, the spellings swept for and their
guards, the bronze keys (equal to silver's), the row test, the log row (no value in it), the
file clean-up, and a table rewrite that leaves no value in any file of the table."""

from __future__ import annotations

import hashlib
import re
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from chispa import assert_df_equality
from delta.tables import DeltaTable
from pyspark.sql import functions as F
from pyspark.sql.types import StructType, _parse_datatype_string

from lakehouse import privacy
from lakehouse.config import load_settings
from lakehouse.gold.people.pii import salted_hash
from lakehouse.maintenance import LISTING_PARALLELISM, RETENTION_CHECK
from lakehouse.privacy import (
    BRONZE_RECORDS,
    ERASURE_LOG_SCHEMA,
    MIN_SWEEP_LENGTH,
    ErasureError,
    ErasureResult,
    Evidence,
    Person,
    Target,
    clean_files,
    combine,
    extra_spellings,
    fs_path,
    hash_spellings,
    log_record,
    parse_target,
    person_from_lookups,
    person_patterns,
    recover,
    rewrite_table,
    salted_sha256,
    scrub_lines,
    table_files,
    value_patterns,
)
from lakehouse.silver import campaigns, members, order_lines, orders
from lakehouse.tables import Tables

TYPES = ["phone", "email", "member_id", "card_no", "unionid", "openid", "tmall_nick", "jd_pin"]
PHONE = ("phone", "13800138000")
EMAIL = ("email", "li.lei@example.cn")
MEMBER = ("member_id", "M00020971")
SALT = "unit-test-salt-0123456789"


def _found(pattern: str, text: str) -> bool:
    return re.search(pattern, text) is not None


# --- the request and the person --------------------------------------------------------------


def test_parse_target_takes_identifiers_or_a_one_id():
    target = parse_target(["phone:+86 138 0013 8000", "EMAIL:Li@X.cn"], None, TYPES)
    assert target.identifiers == (("phone", "+86 138 0013 8000"), ("email", "Li@X.cn"))
    assert parse_target([], "oid00000000075bcd15", TYPES).one_id == "OID00000000075BCD15"
    with pytest.raises(ValueError, match=r"unknown identifier type 'mobile'.*known types: phone"):
        parse_target(["mobile:13800138000"], None, TYPES)
    with pytest.raises(ValueError, match="either --identifier"):
        parse_target(["phone:13800138000"], "OID00000000075BCD15", TYPES)
    with pytest.raises(ValueError, match="either --identifier"):
        parse_target([], None, TYPES)
    with pytest.raises(ValueError, match="not a one_id"):
        parse_target([], "OID123", TYPES)


def test_the_person_is_every_identifier_of_the_one_id():
    target = Target(identifiers=(("phone", "+86 13800138000"),))
    person = person_from_lookups(
        target,
        {("phone", "+86 13800138000"): "13800138000"},
        {PHONE: "OID1"},
        {},
        [PHONE, EMAIL, MEMBER],
        {},
    )
    assert person.one_id == "OID1"
    assert set(person.identifiers) == {PHONE, EMAIL, MEMBER}
    assert person.requested == (PHONE,)
    assert person.notes == ()


def test_a_shared_identifier_finds_no_rows_and_says_so():
    store_phone = ("phone", "13158006004")
    target = Target(identifiers=(store_phone, MEMBER))
    person = person_from_lookups(
        target,
        {store_phone: store_phone[1], MEMBER: MEMBER[1]},
        {MEMBER: "OID1"},
        {store_phone: "store_phone"},
        [MEMBER, EMAIL],
        {},
    )
    assert store_phone not in person.identifiers
    assert set(person.identifiers) == {MEMBER, EMAIL}
    assert person.shared == (store_phone,)
    assert (
        "store's own phone" in person.notes[0]
        and "no row is erased because of it" in (person.notes[0])
    )
    with pytest.raises(ErasureError, match="links nothing"):
        person_from_lookups(
            Target(identifiers=(store_phone,)),
            {store_phone: store_phone[1]},
            {},
            {store_phone: "shared"},
            [],
            {},
        )


def test_an_unlinked_identifier_is_erased_on_its_own():
    person = person_from_lookups(
        Target(identifiers=(PHONE,)), {PHONE: PHONE[1]}, {}, {}, [], {PHONE: 2}
    )
    assert person.one_id is None and person.identifiers == (PHONE,)
    assert "in no One ID component" in person.notes[0] and "2 record(s)" in person.notes[0]


def test_masked_values_and_two_people_are_refused():
    masked = ("phone", "138****8000")
    with pytest.raises(ErasureError, match="masked or invalid"):
        person_from_lookups(Target(identifiers=(masked,)), {masked: None}, {}, {}, [], {})
    with pytest.raises(ErasureError, match="2 different people"):
        person_from_lookups(
            Target(identifiers=(PHONE, EMAIL)),
            {PHONE: PHONE[1], EMAIL: EMAIL[1]},
            {PHONE: "OID1", EMAIL: "OID2"},
            {},
            [],
            {},
        )


def test_a_one_id_not_in_the_map_is_swept_for_by_itself():
    person = person_from_lookups(Target(one_id="OID00000000075BCD15"), {}, {}, {}, [], {})
    assert person.identifiers == () and "not in oneid.identity_map" in person.notes[0]
    patterns, _ = person_patterns(person, None)
    assert _found(combine(patterns), '{"one_id":"OID00000000075BCD15"}')


# --- spellings and their guards ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "13800138000",
        "+86 138 0013 8000",
        "86-13800138000",
        "0086 13800138000",
        "138-0013-8000",
        '{"phone":"+8613800138000"}',
        "a,13800138000,b",
        "\uff11\uff13\uff18\uff10\uff10\uff11\uff13\uff18\uff10\uff10\uff10",  # full width
        "\uff0b\uff18\uff16\u3000\uff11\uff13\uff18\uff0d0013\uff0d8000",
    ],
)
def test_a_phone_is_found_in_every_spelling_its_normaliser_accepts(text):
    assert _found(value_patterns(*PHONE)[0], text)


@pytest.mark.parametrize(
    "text",
    [
        "913800138000",
        "138001380001",
        "1380013800",
        "13900138000",
        "138****8000",
        "\uff1913800138000",  # a full-width digit before it
        "13800138000\uff10",
    ],
)
def test_a_phone_is_never_found_inside_another_number(text):
    assert not _found(value_patterns(*PHONE)[0], text)


def test_the_sweep_patterns_find_the_same_in_spark_as_in_python(spark):
    """The sweep runs as `rlike` in the JVM: its escapes (full-width digits) must mean there
    what they mean to Python's `re`."""
    texts = [
        "+86 138-0013-8000",
        "\uff11\uff13\uff18\uff10\uff10\uff11\uff13\uff18\uff10\uff10\uff10",
        "\uff0b\uff18\uff16\u3000\uff11\uff13\uff18\uff0d0013\uff0d8000",
        "\uff1913800138000",
        "138****8000",
    ]
    member = "\uff4d\uff10\uff10\uff10\uff12 0971"  # ｍ０００２ 0971
    texts += [member, "X" + member]
    email = "\uff2c\uff29.lei\uff20example.cn"  # ＬＩ.lei＠example.cn
    texts += [email, "-" + email, email + "\uff0eau"]
    pattern = combine([*value_patterns(*PHONE), *value_patterns(*MEMBER), *value_patterns(*EMAIL)])
    rows = spark.createDataFrame([(t,) for t in texts], "text string")
    found = dict(rows.select("text", F.col("text").rlike(pattern)).collect())
    assert found == {t: _found(pattern, t) for t in texts}
    assert list(found.values()) == [True, True, True, False, False, True, False, True, False, False]


def test_email_and_code_spellings_are_bounded():
    email = value_patterns(*EMAIL)[0]
    assert _found(email, " LI.LEI@EXAMPLE.CN ") and _found(email, "mail li.lei@example.cn.")
    assert not _found(email, "bli.lei@example.cn") and not _found(email, "li.lei@example.cn.au")
    assert _found(email, "li.lei\uff20example.cn") and _found(email, "\uff2c\uff29.lei@example.cn")
    assert not _found(email, "\uff42li.lei@example.cn")
    assert not _found(email, "li.lei@example.cn\uff0eau")
    member = value_patterns(*MEMBER)[0]
    assert _found(member, "m0002 0971") and _found(member, '"M00020971"')
    assert not _found(member, "M000209710") and not _found(member, "XM00020971")
    full_width = "\uff2d\uff10\uff10\uff10\uff12\uff10\uff19\uff17\uff11"  # Ｍ０００２０９７１
    assert _found(member, full_width) and _found(member, full_width.lower())
    assert not _found(member, "\uff38" + full_width) and not _found(member, full_width + "\uff11")


def test_short_values_are_never_swept_for_as_substrings():
    assert value_patterns("tmall_nick", "x" * (MIN_SWEEP_LENGTH - 1)) == []
    person = Person("OID1", (("tmall_nick", "小明"), PHONE), (PHONE,))
    patterns, notes = person_patterns(person, None)
    assert not _found(combine(patterns), "小明的店") and "shorter than" in notes[0]


def test_json_escaped_spellings_and_hashes_are_swept_for():
    nick = ("tmall_nick", 'say "hi" 小明')
    assert _found(combine(value_patterns(*nick)), '{"buyer_nick":"say \\"hi\\" 小明"}')
    digests = hash_spellings(*PHONE, SALT)
    assert hashlib.sha256(b"13800138000").hexdigest() in digests
    assert salted_sha256(PHONE[1], SALT) in digests
    assert hash_spellings("member_id", "M00020971", SALT) == []


def test_the_salted_hash_is_golds(spark):
    gold = spark.range(1).select(salted_hash(F.lit(PHONE[1]), SALT)).first()[0]
    assert salted_sha256(PHONE[1], SALT) == gold


def _hits(spark, pattern: str, texts) -> dict[str, bool]:
    """text → whether Spark's rlike finds `pattern` in it (Java's regex, not Python's)."""
    df = spark.createDataFrame([(t,) for t in texts], "t string")
    return {r.t: r.hit for r in df.select("t", F.col("t").rlike(pattern).alias("hit")).collect()}


def test_patterns_mean_the_same_to_spark_as_to_python(spark):
    person = Person("OID00000000075BCD15", (PHONE, EMAIL, MEMBER), (PHONE,))
    pattern = combine(person_patterns(person, SALT)[0])
    texts = [
        "+86 138-0013-8000",
        "913800138000",
        "LI.LEI@example.CN",
        "bli.lei@example.cn",
        "m00020971",
        "M000209711",
        "OID00000000075BCD15",
        salted_sha256(PHONE[1], SALT).upper(),
        "nobody",
    ]
    spark_says = _hits(spark, pattern, texts)
    assert spark_says == {t: _found(pattern, t) for t in texts}
    assert [t for t, hit in spark_says.items() if hit] == [
        "+86 138-0013-8000",
        "LI.LEI@example.CN",
        "m00020971",
        "OID00000000075BCD15",
        salted_sha256(PHONE[1], SALT).upper(),
    ]


def test_delivered_spellings_the_patterns_miss_are_added_as_delivered():
    patterns = value_patterns(*PHONE)
    extra = extra_spellings(["13800138000", " +86 138 0013 8000", "138.0013.8000", "138"], patterns)
    assert len(extra) == 1 and _found(extra[0], "tel 138.0013.8000;")


# --- bronze keys equal silver's ---------------------------------------------------------------

LINEAGE = "_delivery_date date, _source_file string, _line_no int, _record_hash string"


def _bronze(spark, dataset: str, rows: list[dict]):
    settings = load_settings("local")
    _, spec = settings.dataset(dataset)
    ddl = spec.schema_ddl or ", ".join(f"`{c}` string" for c in spec.columns.values())
    schema: StructType = _parse_datatype_string(f"{ddl}, {LINEAGE}")
    lineage = {
        "_delivery_date": date(2026, 3, 1),
        "_source_file": f"file:/landing/{dataset}.txt",
        "_record_hash": "h",
    }
    full = [{**lineage, "_line_no": i + 1, **r} for i, r in enumerate(rows)]
    return spark.createDataFrame(
        [tuple(r.get(f.name) for f in schema.fields) for r in full], schema
    )


def _keys(df, column: str = "order_key") -> list:
    return sorted(r[0] for r in df.select(column).collect())


def _bronze_keys(df, dataset: str) -> list:
    return sorted(r[0] for r in df.select(BRONZE_RECORDS[dataset].key()).collect())


def test_bronze_keys_are_the_keys_silver_gives_the_records(spark):
    cfg = load_settings("local").silver
    tmall = _bronze(
        spark,
        "tmall_orders",
        [
            {
                "order_no": '="2937123456789012345"',
                "shop_name": "旗舰店",
                "order_status": "交易成功",
            },
            {
                "order_no": "\t2937123456789012346",
                "shop_name": "旗舰店",
                "order_status": "交易成功",
            },
        ],
    )
    assert _bronze_keys(tmall, "tmall_orders") == _keys(orders.tmall_orders(tmall, cfg))
    items = _bronze(spark, "tmall_order_items", [{"order_no": "'2937123456789012345"}])
    assert _bronze_keys(items, "tmall_order_items") == ["TMALL:2937123456789012345"]
    jd = _bronze(spark, "jd_orders", [{"orderId": " 31234567890 ", "orderState": "FINISHED"}])
    assert _bronze_keys(jd, "jd_orders") == _keys(orders.jd_orders(jd, cfg))
    mall = _bronze(spark, "mall_orders", [{"order_id": " M20260301000164 ", "status": "PAID"}])
    assert _bronze_keys(mall, "mall_orders") == _keys(orders.mall_orders(mall, cfg))
    pos = _bronze(spark, "pos_sales", [{"store_code": " s0001", "ticket_no": "26030110001 "}])
    assert _bronze_keys(pos, "pos_sales") == _keys(order_lines.pos_lines(pos))
    crm = _bronze(spark, "crm_members", [{"member_id": " m00020971 "}])
    assert _bronze_keys(crm, "crm_members") == _keys(members.members(crm), "member_id")
    touches = _bronze(
        spark,
        "campaign_touches",
        [
            {
                "campaign_id": "cmp-0001",
                "touch_time": "2026-03-01 09:10:28",
                "phone": "+86 138 0013 8000",
            },
            {
                "campaign_id": "CMP-0001",
                "touch_time": "bad",
                "phone": "138****8000",
                "unionid": "o1",
            },
        ],
    )
    silver_touches = campaigns.campaign_touches(touches)
    assert _bronze_keys(touches, "campaign_touches") == _keys(silver_touches, "touch_key")


# --- which rows are the person's ------------------------------------------------------------


def _evidence(person: Person, records=None, lineage=None) -> Evidence:
    patterns, _ = person_patterns(person, SALT)
    return Evidence(combine(patterns), person.one_id, person.values(), records or {}, lineage or {})


def test_rows_are_found_by_value_key_lineage_and_one_id_and_others_stay(spark):
    person = Person("OID00000000075BCD15", (PHONE, EMAIL, MEMBER), (PHONE,))
    evidence = _evidence(
        person,
        records={"tmall_orders": frozenset({"TMALL:1"}), "crm_members": frozenset({"M00020971"})},
        lineage={"file:/a.csv": frozenset({7})},
    )
    silver_orders = spark.createDataFrame(
        [
            ("TMALL:1", None, "file:/a.csv", 1, None),  # the person's order, by key
            ("TMALL:2", "13800138000", "file:/a.csv", 2, None),  # carries the phone
            ("POS:S1:9", None, "file:/a.csv", 7, None),  # lineage: a bronze row of theirs
            ("JD:3", None, "file:/b.csv", 7, "OID00000000075BCD15"),  # the one_id
            ("JD:4", "13900139000", "file:/b.csv", 8, "OID0000000000000001"),  # someone else
            ("JD:5", "13158006004", "file:/a.csv", 8, None),  # a store phone: someone else
        ],
        "order_key string, buyer_phone string, _source_file string, _line_no int, one_id string",
    )
    kept = silver_orders.where(~evidence.condition(silver_orders, "silver.orders"))
    assert_df_equality(kept, silver_orders.where("order_key IN ('JD:4', 'JD:5')"))

    crm = _bronze(
        spark,
        "crm_members",
        [
            {"member_id": " m00020971 ", "phone": None},  # key, spelt differently
            {"member_id": "M1", "phone": "138 0013 8000"},  # a delivered spelling
            {"member_id": "M2", "email": "LI.LEI@EXAMPLE.CN "},
            {"member_id": "M3", "phone": "13900139000", "email": "wang@example.cn"},
        ],
    )
    kept = crm.where(~evidence.condition(crm, "bronze.crm_members")).select("member_id")
    assert _keys(kept, "member_id") == ["M3"]


def test_a_short_identifier_is_matched_exactly_in_its_own_column_only(spark):
    pin = ("jd_pin", "jd_li")
    person = Person(None, (pin,), (pin,))
    jd = _bronze(
        spark,
        "jd_orders",
        [
            {"orderId": "1", "pin": " jd_li "},
            {"orderId": "2", "pin": "jd_lily"},
            {"orderId": "3", "pin": "x", "orderState": "jd_li"},
        ],
    )
    evidence = _evidence(person)
    assert evidence.pattern is None
    kept = jd.where(~evidence.condition(jd, "bronze.jd_orders"))
    assert _keys(kept, "orderId") == ["2", "3"]


# --- the log ------------------------------------------------------------------------------------


def test_the_log_row_holds_types_and_salted_hashes_never_a_value(spark):
    person = Person(
        "OID00000000075BCD15", (PHONE, EMAIL, MEMBER), (PHONE,), shared=(("phone", "13158006004"),)
    )
    record = log_record(
        "r1",
        datetime(2026, 3, 4, 8, 0, tzinfo=UTC),
        "PIPL ticket 42",
        person,
        SALT,
        {"silver.orders": 3},
        ["silver.orders"],
        ["_reports/report-2026-03-03.html"],
        [],
        True,
        12.3456,
    )
    df = spark.createDataFrame([record], ERASURE_LOG_SCHEMA)
    text = df.select(F.to_json(F.struct("*"))).first()[0]
    for raw in ("13800138000", "li.lei@example.cn", "M00020971", "13158006004", "0013"):
        assert raw.lower() not in text.lower()
    row = df.first()
    assert [(i.identifier_type, i.value_sha256) for i in row.requested] == [
        ("phone", salted_sha256("13800138000", SALT))
    ]
    assert sorted(i.identifier_type for i in row.identifiers) == ["email", "member_id", "phone"]
    assert row.one_id == "OID00000000075BCD15" and row.rows_deleted == {"silver.orders": 3}
    assert row.seconds == 12.346 and row.verified


def test_the_summary_says_whether_anything_was_left_to_erase():
    person = Person(None, (PHONE,), (PHONE,))
    never = ErasureResult(person=person, dry_run=False)
    assert never.exit_code == 1 and "never seen" in never.describe()
    again = ErasureResult(person=person, dry_run=False, previous=[("abc", "2026-03-04 08:00:00")])
    assert again.exit_code == 0 and "Nothing left to erase" in again.describe()
    assert "request abc" in again.describe()
    done = ErasureResult(person=person, dry_run=True, rows={"silver.orders": 2})
    assert done.exit_code == 0 and "would delete" in done.describe()
    assert "nothing was changed" in done.describe()
    left = ErasureResult(person=person, dry_run=False, rows={"x.y": 1}, leftovers=["/w/f"])
    assert left.exit_code == 1 and "NOT COMPLETE" in left.describe()


# --- files --------------------------------------------------------------------------------------


def test_line_files_lose_the_persons_lines_pages_are_deleted(tmp_path):
    pattern = combine(value_patterns(*PHONE))
    text, removed = scrub_lines("one_id,phone\nOID1,13800138000\nOID2,13900139000\n", pattern)
    assert (text, removed) == ("one_id,phone\nOID2,13900139000\n", 1)
    export = tmp_path / "part-0000.csv"
    export.write_text("one_id,phone\nOID1,13800138000\nOID2,13900139000\n", encoding="utf-8")
    (tmp_path / ".part-0000.csv.crc").write_bytes(b"crc")
    page = tmp_path / "page.html"
    page.write_text("<td>+86 138 0013 8000</td>", encoding="utf-8")
    planned = clean_files([str(export), str(page)], pattern, dry_run=True)
    assert planned == ([str(page)], [str(export)]) and page.exists()
    assert clean_files([str(export), str(page)], pattern, dry_run=False) == planned
    assert export.read_text(encoding="utf-8") == "one_id,phone\nOID2,13900139000\n"
    assert not page.exists() and not (tmp_path / ".part-0000.csv.crc").exists()


def test_table_files_are_sorted_by_kind():
    root = "/w/silver/orders"
    files = [
        f"{root}/part-0.snappy.parquet",
        f"{root}/_delivery_date=2026-03-01/part-1.snappy.parquet",
        f"{root}/_change_data/cdc-0.snappy.parquet",
        f"{root}/_delta_log/00000000000000000000.json",
        f"{root}/_delta_log/00000000000000000000.crc",
        f"{root}/_delta_log/.00000000000000000000.json.crc",
        f"{root}/_delta_log/00000000000000000010.checkpoint.parquet",
        f"{root}/.part-0.snappy.parquet.crc",
        "/w/silver/orders_old/part-9.parquet",
    ]
    found = table_files(files, root)
    assert found.data == files[:3]
    assert found.log_text == files[3:5]
    assert found.checkpoints == [files[6]]


# --- a table rewritten without the person -------------------------------------------------------


def _holding(root: Path, value: str) -> list[str]:
    """Files whose bytes hold `value` (commits, checksums; parquet is compressed)."""
    return [str(p) for p in root.rglob("*") if p.is_file() and value.encode() in p.read_bytes()]


def test_a_rewritten_table_holds_no_value_in_any_file(spark, tmp_path):
    warehouse = tmp_path / "warehouse"
    tables = Tables(spark, str(warehouse))
    first = spark.createDataFrame(
        [("OID1", "13800138000", date(2026, 3, 1)), ("OID2", "13900139000", date(2026, 3, 1))],
        "one_id string, phone string, day date",
    )
    tables.append(first.coalesce(1), "silver", "people", partition_by=["day"])
    # The same phone keyed in full width on another record: one of its spellings.
    full_width = "\uff11\uff13\uff18\uff10\uff10\uff11\uff13\uff18\uff10\uff10\uff10"
    more = spark.createDataFrame(
        [("OID3", "13700137000", date(2026, 3, 2)), ("OID9", full_width, date(2026, 3, 2))],
        "one_id string, phone string, day date",
    )
    tables.append(more, "silver", "people")
    path = tables.path("silver", "people")
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.appendOnly' = 'false')")
    # Delta's own DELETE + VACUUM RETAIN 0 HOURS leaves the phone in the first commit's
    # data-skipping statistics (and in the DELETE's predicate): why erase rewrites tables.
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    DeltaTable.forPath(spark, str(copy)).delete("phone = '13800138000'")
    spark.conf.set(RETENTION_CHECK, "false")
    spark.conf.set(LISTING_PARALLELISM, "2")  # Spark's default lists files in 10000 tasks
    try:
        DeltaTable.forPath(spark, str(copy)).vacuum(0)
    finally:
        spark.conf.unset(RETENTION_CHECK)
        spark.conf.unset(LISTING_PARALLELISM)
    assert spark.read.format("delta").load(str(copy)).where("phone = '13800138000'").count() == 0
    assert str(copy / "_delta_log" / "00000000000000000000.json") in _holding(copy, "13800138000")
    before = spark.read.format("delta").load(path).where("one_id NOT IN ('OID1', 'OID9')")

    person = Person(None, (PHONE,), (PHONE,))
    rewrite_table(spark, tables, "silver", "people", _evidence(person), "req1", 2)

    after = spark.read.format("delta").load(path)
    assert_df_equality(after, before, ignore_row_order=True)
    detail = DeltaTable.forPath(spark, path).detail().first()
    assert detail.partitionColumns == ["day"]
    assert detail.properties.get("delta.appendOnly") == "false"
    assert _holding(warehouse, "13800138000") == _holding(warehouse, full_width) == []
    assert sorted(p.name for p in (warehouse / "silver").iterdir()) == ["people"]
    assert (
        spark.read.parquet(*map(str, Path(path).rglob("part-*.parquet")))
        .where("phone = '13800138000'")
        .count()
        == 0
    )
    with pytest.raises(ErasureError, match="changed while it was being erased"):
        rewrite_table(spark, tables, "silver", "people", _evidence(person), "req2", 1)
    assert spark.read.format("delta").load(path).count() == 2


def test_an_interrupted_swap_is_put_back(spark, tmp_path):
    warehouse = tmp_path / "warehouse"
    tables = Tables(spark, str(warehouse))
    tables.append(spark.range(3), "gold", "things")
    path = Path(tables.path("gold", "things"))
    path.rename(path.parent / ".erased-things-req9")  # moved aside, new one never arrived
    (path.parent / ".erasing-things-req9").mkdir()
    notes = recover(spark, str(warehouse))
    assert len(notes) == 2 and any("put back" in note for note in notes)
    assert sorted(p.name for p in path.parent.iterdir()) == ["things"]
    assert spark.read.format("delta").load(str(path)).count() == 3


def test_a_one_id_merged_away_is_followed_to_the_person_it_is_now(spark, tmp_path):
    """Before: `erase --one-id` of an id One ID had merged into another found no identifier,
    erased only rows still quoting the old id (the MERGE row in the history) and reported
    success while the person's orders, member record and portrait stayed."""
    from lakehouse.privacy import resolve
    from lakehouse.tables import Tables

    tables = Tables(spark, str(tmp_path))
    spark.createDataFrame(
        [("phone", "13912345678", "OID_C"), ("member_id", "M1", "OID_C"), ("email", "x@y.cn", "Z")],
        "identifier_type string, identifier_value string, one_id string",
    ).write.format("delta").save(tables.path("oneid", "identity_map"))
    spark.createDataFrame(
        [
            ("OID_A", "OID_B", "MERGE", 3),  # A into B on one day, B into C on a later one
            ("OID_B", "OID_C", "MERGE", 5),
            ("OID_S", "OID_C", "SPLIT", 1),  # S split between C and Z
            ("OID_S", "Z", "SPLIT", 1),
            ("OID_D", None, "DISSOLVED", 2),
        ],
        "old_one_id string, new_one_id string, event string, nodes long",
    ).write.format("delta").save(tables.path("oneid", "one_id_history"))

    person = resolve(spark, tables, Target(one_id="OID_A"))
    assert person.one_id == "OID_C"
    assert person.identifiers == (("member_id", "M1"), ("phone", "13912345678"))
    assert person.former_one_ids == ("OID_A", "OID_B")
    assert "merged into OID_C" in person.notes[0]
    patterns, _ = person_patterns(person, None)
    assert _found(combine(patterns), '{"one_id":"OID_A"}')  # rows still quoting the old id

    with pytest.raises(ErasureError, match=r"OID_S was split .* now under OID_C, Z"):
        resolve(spark, tables, Target(one_id="OID_S"))
    dissolved = resolve(spark, tables, Target(one_id="OID_D"))
    assert dissolved.one_id == "OID_D" and dissolved.identifiers == ()


def test_an_erasure_stopped_midway_is_rerun_by_the_merged_away_one_id(spark, tmp_path):
    """The history is rewritten after the map (before: alphabetically, ahead of every silver
    table, so a stop in silver left `--one-id OID_A` resolving to nothing, "never seen", with
    the person's silver rows still there). Stopped after the map, before the history: the
    rerun sweeps every id the chain passed through. Before: OID_A alone; B -> C stayed."""
    from lakehouse.privacy import _rewrite_order, resolve
    from lakehouse.tables import Tables

    tables = ["oneid.one_id_history", "silver.orders", "oneid.identity_map", "gold.member_tags"]
    assert _rewrite_order(tables)[-2:] == ["oneid.identity_map", "oneid.one_id_history"]
    tables = Tables(spark, str(tmp_path))
    spark.createDataFrame(
        [("email", "x@y.cn", "Z")], "identifier_type string, identifier_value string, one_id string"
    ).write.format("delta").save(tables.path("oneid", "identity_map"))
    spark.createDataFrame(
        [("OID_A", "OID_B", "MERGE", 3), ("OID_B", "OID_C", "MERGE", 5)],
        "old_one_id string, new_one_id string, event string, nodes long",
    ).write.format("delta").save(tables.path("oneid", "one_id_history"))

    person = resolve(spark, tables, Target(one_id="OID_A"))
    assert (person.one_id, person.identifiers) == ("OID_A", ())
    assert person.former_one_ids == ("OID_B", "OID_C")
    patterns, _ = person_patterns(person, None)
    assert _found(combine(patterns), '{"old_one_id":"OID_B","new_one_id":"OID_C"}')


def test_a_nick_is_never_found_inside_another_person_s_longer_nick(spark):
    """Before: the boundary knew ASCII letters only, so `橘子汽水123` matched inside another
    person's `甜甜橘子汽水123`, and that person's rows were erased too."""
    pattern = combine(value_patterns("tmall_nick", "橘子汽水123"))
    texts = {
        '{"buyer_nick":"橘子汽水123"}': True,
        '"橘子汽水123","13800138000"': True,
        "x 橘子汽水123,": True,
        '{"buyer_nick":"甜甜橘子汽水123"}': False,
        "橘子汽水1234": False,
        "はな橘子汽水123": False,
        "Ève橘子汽水123": False,
    }
    assert _hits(spark, pattern, texts) == {t: _found(pattern, t) for t in texts} == texts


def test_a_raw_line_bronze_could_not_read_is_found_by_the_person_s_order_number(spark):
    """Before: a quarantined raw line of a buyer with a short nick (`小鱼儿12`) and a masked
    phone matched no value pattern and had no key or lineage: it survived erasure."""
    from lakehouse.privacy import order_number_patterns

    records = {
        "tmall_orders": frozenset({"TMALL:2937000000000000001"}),
        "jd_orders": frozenset({"JD:230012345678"}),
        "mall_orders": frozenset({"MALL:M20260301000123"}),
        "pos_sales": frozenset({"POS:S001:12"}),  # a ticket number: short, reused by stores
        "crm_members": frozenset({"M00020971"}),
    }
    pattern = combine(order_number_patterns(records))
    texts = {
        '"=""2937000000000000001""","小鱼儿12","89.00","0.00"': True,
        '{"orderId": 230012345678, "pin": "jd_5f3a': True,  # cut short
        '{"order_id": "M20260301000123", "member_id": nu': True,
        '"=""29370000000000000012""","someone else"': False,
        "S001,1,12,1,2026/03/01 10:00:00": False,
        "M00020971": False,
    }
    assert _hits(spark, pattern, texts) == {t: _found(pattern, t) for t in texts} == texts


def test_a_table_written_again_after_an_interrupted_swap_never_costs_the_old_one(spark, tmp_path):
    """Before: with the old table moved aside and the new one never moved in, a daily job that
    wrote the table again made recover() delete the old folder: the table's whole history."""
    warehouse = tmp_path / "warehouse"
    tables = Tables(spark, str(warehouse))
    tables.append(spark.range(3), "bronze", "things")
    path = Path(tables.path("bronze", "things"))
    path.rename(path.parent / ".erased-things-req9")
    (path.parent / ".erasing-things-req9").mkdir()
    tables.append(spark.range(1), "bronze", "things")  # the next day's job, before recovery
    notes = recover(spark, str(warehouse))
    assert len(notes) == 2 and all("left" in note and "by hand" in note for note in notes)
    names = sorted(p.name for p in path.parent.iterdir())
    assert names == [".erased-things-req9", ".erasing-things-req9", "things"]
    assert spark.read.format("delta").load(str(path.parent / ".erased-things-req9")).count() == 3


def test_an_identifier_one_id_has_not_linked_yet_is_erased_with_the_person_its_records_name(
    spark, tmp_path
):
    """Before: the CRM changed a member's phone, silver ran, One ID not yet; `erase
    phone:NEW` erased the rows holding NEW and that CRM record only, and reported Verified
    while the member's orders and portrait (under their one_id) stayed."""
    from lakehouse.privacy import resolve
    from lakehouse.tables import Tables

    tables = Tables(spark, str(tmp_path))
    ids = "source string, record_key string, identifier_type string, identifier_value string"
    spark.createDataFrame(
        [
            ("crm_members", "M1", "member_id", "M1"),
            ("crm_members", "M1", "phone", "13912345679"),  # today's new phone
            ("crm_members", "M1", "email", "a@b.cn"),
            ("tmall_orders", "TMALL:1", "phone", "13700000001"),  # another one's order ...
            ("tmall_orders", "TMALL:1", "phone", "13912345670"),  # ... with an unlinked phone
            ("jd_orders", "JD:2", "phone", "13912345670"),
            ("jd_orders", "JD:2", "jd_pin", "pin_z"),
        ],
        ids,
    ).write.format("delta").save(tables.path("silver", "identities"))
    spark.createDataFrame(
        [
            ("member_id", "M1", "OID_M"),
            ("email", "a@b.cn", "OID_M"),
            ("phone", "13912345678", "OID_M"),  # the old phone
            ("phone", "13700000001", "OID_X"),
            ("jd_pin", "pin_z", "OID_Z"),
        ],
        "identifier_type string, identifier_value string, one_id string",
    ).write.format("delta").save(tables.path("oneid", "identity_map"))

    person = resolve(spark, tables, Target(identifiers=(("phone", "139-1234-5679"),)))
    assert person.one_id == "OID_M"
    assert set(person.identifiers) == {
        ("member_id", "M1"),
        ("email", "a@b.cn"),
        ("phone", "13912345678"),
        ("phone", "13912345679"),
    }
    assert "not linked by One ID yet" in person.notes[-1]
    with pytest.raises(ErasureError, match=r"2 different one_ids .*OID_X, OID_Z"):
        resolve(spark, tables, Target(identifiers=(("phone", "13912345670"),)))


class _Listed:
    def __init__(self, path: str):
        self.path = path

    def getPath(self):  # Hadoop's LocatedFileStatus, Path
        return self

    def toString(self):
        return self.path


class _Listing:
    def __init__(self, paths: list[str]):
        self.items = [_Listed(p) for p in paths]

    def hasNext(self):
        return bool(self.items)

    def next(self):
        return self.items.pop(0)


class _QualifyingFs:
    """A Hadoop file system as HDFS is: it lists qualified paths (hdfs://nn:8020/...)."""

    def exists(self, path):
        return True

    def makeQualified(self, path):
        return _Listed("hdfs://nn:8020/lh")

    def listFiles(self, path, recursive):
        return _Listing(
            [
                "hdfs://nn:8020/lh/silver/m/part-0.snappy.parquet",
                "hdfs://nn:8020/lh/silver/m/_delta_log/00000000000000000000.json",
            ]
        )


def test_files_of_a_warehouse_spelled_without_its_namenode_are_found(monkeypatch):
    """Before: under hdfs:///lh (the README's spelling) Hadoop's qualified listing matched no
    table root, so the erasure rewrote no history and its proof scanned nothing: 'verified'."""
    monkeypatch.setattr(privacy, "_hadoop_fs", lambda spark, path: (_QualifyingFs(), path))
    files = privacy.list_files(None, "hdfs:///lh")
    found = table_files(files, fs_path("hdfs:///lh/silver/m"))
    assert found.data == ["hdfs:///lh/silver/m/part-0.snappy.parquet"]
    assert found.log_text == ["hdfs:///lh/silver/m/_delta_log/00000000000000000000.json"]
