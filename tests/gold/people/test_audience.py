"""Audiences: a bad expression names the unknown column or the syntax fault; opted-out members
never appear; export writes the channel's identifier, hashed where the channel wants a hash."""

from __future__ import annotations

import hashlib
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lakehouse.gold.people import audience
from lakehouse.gold.people.settings import TagCatalog
from lakehouse.gold.people.tags import catalog_frame, tag_values
from lakehouse.quality.gate import GateFailed
from lakehouse.tables import Tables
from tests.gold.people.conftest import AS_OF


def _publish_catalog(tables: Tables, settings, day: date) -> None:
    """gold.tag_catalog as gold.member_tags publishes it beside the tags of `day`."""
    catalog = catalog_frame(tables.spark, settings.tags)
    published = catalog.withColumn("published_on", F.lit(day).cast("date"))
    tables.replace_where(published, "gold", "tag_catalog", "true")


@pytest.fixture(scope="module")
def view(people_world):
    return people_world["portrait"]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("rfm_segmnt = '重要挽留客户'", "unknown column `rfm_segmnt` (did you mean"),
        ("rfm_segment = = '重要挽留客户'", "syntax error"),
        ("preferred_category = '女装' AND", "syntax error"),
        ("nope(city)", "unknown function"),
        ("   ", "--where is empty"),
        # before: counted, gated and written on three different draws (a negative opted-out count)
        ("lifecycle_stage = '复购' AND rand() < 0.1", "not deterministic"),
        ("uuid() < '8'", "not deterministic"),
    ],
)
def test_bad_expressions_say_why(view, where, message):
    with pytest.raises(audience.AudienceError, match=message.replace("(", r"\(")):
        audience.select(view, where)


def test_a_sample_by_a_hash_of_one_id_is_the_same_members_every_time(view):
    where = "pmod(xxhash64(one_id, 'hold-out-1'), 100) < 50"
    first = {r.one_id for r in audience.select(view, where).collect()}
    assert first == {r.one_id for r in audience.select(view, where).collect()}
    assert 0 < len(first) < view.count()
    # current_date() is fixed for a query: a condition on it is taken
    assert audience.select(view, "datediff(current_date(), date'2026-01-01') > 0").count()


def test_bad_names():
    for name in ("", "a b", "x'; DROP", "a" * 65):
        with pytest.raises(audience.AudienceError, match="audience name"):
            audience.check_name(name)
    assert audience.check_name("女装_挽留-2026") == "女装_挽留-2026"


def test_create_excludes_opted_out_and_export(spark, people_world, settings_for, monkeypatch):
    settings = settings_for()
    tables = Tables(spark, settings.warehouse)
    tables.replace_where(people_world["portrait"], "gold", "member_portrait", "true")
    # Tags missing, or of an earlier day: every tag of a member they have not seen would read
    # null, and `bought_30d` and `NOT bought_30d` would both leave them out. Before: an audience
    # short by those members, silently.
    with pytest.raises(audience.AudienceError, match=r"gold\.member_tags does not exist"):
        audience.create(spark, tables, settings, "buyers", "purchase_orders > 0")
    tags = tag_values(list(settings.tags), people_world["portrait"], people_world["history"], AS_OF)
    tables.replace_where(tags, "gold", "member_tags", "true")
    _publish_catalog(tables, settings, AS_OF - timedelta(days=1))
    with pytest.raises(
        audience.AudienceError, match=re.escape(f"run gold.member_tags for {AS_OF} first")
    ):
        audience.create(spark, tables, settings, "buyers", "purchase_orders > 0")
    _publish_catalog(tables, settings, AS_OF)
    golden = spark.createDataFrame(
        [("OID_A", "13812345678", False), ("OID_E", "13698765432", True)],
        "one_id string, phone string, marketing_opt_out boolean",
    ).select("*", *[F.lit(None).cast("string").alias(c) for c in ("email", "unionid")])
    tables.replace_where(golden, "oneid", "golden_members", "true")

    # OID_E (opted out) is a buyer like OID_A: only the opt-out keeps it out
    made = audience.create(spark, tables, settings, "buyers", "purchase_orders > 0")
    assert (made.members, made.opted_out_removed, made.as_of) == (1, 1, AS_OF)
    members = tables.read("gold", "audience_members").collect()
    assert [(r.audience, r.one_id) for r in members] == [("buyers", "OID_A")]
    # tags are columns too
    again = audience.create(
        spark, tables, settings, "tmall", "fav_channel = 'TMALL' AND bought_30d"
    )
    assert again.members == 1
    assert [a["audience"] for a in audience.list_audiences(tables)] == ["buyers", "tmall"]
    # A failed gold.audiences gate writes neither table. Before: the members slice was written
    # first, so `buyers` held everyone under its old condition and count.
    real_raise = audience.raise_if_failed

    def audiences_gate_fails(outcome):
        if outcome.table == "gold.audiences":
            raise GateFailed("quality gate gold.audiences failed (forced)")
        real_raise(outcome)

    monkeypatch.setattr(audience, "raise_if_failed", audiences_gate_fails)
    with pytest.raises(GateFailed, match="forced"):
        audience.create(spark, tables, settings, "buyers", "true")
    monkeypatch.undo()
    members = tables.read("gold", "audience_members").where("audience = 'buyers'").collect()
    assert [r.one_id for r in members] == ["OID_A"]

    sms = audience.export(spark, tables, settings, "buyers", "sms", str(settings.warehouse))
    text = "".join(p.read_text() for p in Path(sms.path).glob("*.csv"))
    assert text.splitlines() == ["one_id,phone", "OID_A,13812345678"]
    ads = audience.export(spark, tables, settings, "buyers", "ADS_PHONE_SHA256")
    text = "".join(p.read_text() for p in Path(ads.path).glob("*.csv"))
    digest = hashlib.sha256(b"13812345678").hexdigest()
    assert text.splitlines() == ["one_id,phone_sha256", f"OID_A,{digest}"]
    assert (sms.rows, sms.without_identifier, sms.opted_out) == (1, 0, 0)
    # OID_A opts out after the audience was made: left out of the export, and counted
    tables.replace_where(
        golden.withColumn("marketing_opt_out", F.lit(True)), "oneid", "golden_members", "true"
    )
    late = audience.export(spark, tables, settings, "buyers", "SMS")
    text = "".join(p.read_text() for p in Path(late.path).glob("*.csv"))
    assert text.splitlines() == ["one_id,phone"]
    assert (late.rows, late.without_identifier, late.opted_out) == (0, 0, 1)
    with pytest.raises(audience.AudienceError, match="unknown channel 'FAX'"):
        audience.export(spark, tables, settings, "buyers", "FAX")
    with pytest.raises(audience.AudienceError, match="no audience 'ghost'"):
        audience.export(spark, tables, settings, "ghost", "SMS")


def _with_tags(settings, tags: list[dict]):
    """`settings` with conf/tags.yml's catalog replaced by `tags`."""
    return settings.model_copy(update={"tags": TagCatalog.model_validate(tags)})


def _published_world(spark, people_world, settings) -> Tables:
    """Portrait, tags and catalog of AS_OF in a fresh warehouse, as the day's jobs leave them."""
    tables = Tables(spark, settings.warehouse)
    tables.replace_where(people_world["portrait"], "gold", "member_portrait", "true")
    tags = tag_values(list(settings.tags), people_world["portrait"], people_world["history"], AS_OF)
    tables.replace_where(tags, "gold", "member_tags", "true")
    _publish_catalog(tables, settings, AS_OF)
    return tables


def test_create_refuses_tags_added_or_changed_since_member_tags(spark, people_world, settings_for):
    # Before: only the catalog's day was checked, so a tag added to conf/tags.yml after the
    # day's gold.member_tags read null for every member, and both `vip_plus` and
    # `NOT vip_plus` gave an empty audience, exit 0.
    settings = settings_for()
    tables = _published_world(spark, people_world, settings)
    vip = {
        "code": "vip_plus",
        "name_cn": "超级会员",
        "name_en": "VIP plus",
        "category": "价值 value",
        "expr": "level = 'GOLD'",
        "type": "boolean",
    }
    added = _with_tags(settings, [*(t.model_dump() for t in settings.tags), vip])
    for where in ("vip_plus", "NOT vip_plus"):
        with pytest.raises(
            audience.AudienceError,
            match=re.escape(f"vip_plus (new): run gold.member_tags for {AS_OF} again"),
        ):
            audience.create(spark, tables, added, "vip", where)
    # a changed definition holds the old definition's values: refused as well
    first, *rest = (t.model_dump() for t in settings.tags)
    changed = _with_tags(settings, [first | {"expr": "'x'"}, *rest])
    with pytest.raises(audience.AudienceError, match=re.escape(f"{first['code']} (changed)")):
        audience.create(spark, tables, changed, "vip", "true")
    assert not tables.exists("gold", "audiences")


def test_export_of_an_audience_with_no_member_empties_its_folder(
    spark, people_world, settings_for, tmp_path
):
    # Before: existence was read from gold.audience_members, so an audience created again with
    # no member was "no audience 'vip'" (exit 2) although `list` showed it, and the earlier
    # export's raw phones of people the new condition leaves out stayed in the outbox.
    settings = settings_for()
    tables = _published_world(spark, people_world, settings)
    golden = spark.createDataFrame(
        [("OID_A", "13812345678", None, None, False)],
        "one_id string, phone string, email string, unionid string, marketing_opt_out boolean",
    )
    tables.replace_where(golden, "oneid", "golden_members", "true")
    outbox = tmp_path / "outbox"
    audience.create(spark, tables, settings, "vip", "purchase_orders > 0")
    first = audience.export(spark, tables, settings, "vip", "SMS", str(outbox))
    assert first.rows == 1
    assert audience.create(spark, tables, settings, "vip", "false").members == 0
    assert [(a["audience"], a["members"]) for a in audience.list_audiences(tables)] == [("vip", 0)]
    empty = audience.export(spark, tables, settings, "vip", "SMS", str(outbox))
    assert (empty.rows, empty.without_identifier, empty.opted_out) == (0, 0, 0)
    files = sorted(Path(empty.path).glob("*.csv"))
    assert [f.read_text().splitlines() for f in files] == [["one_id,phone"]]


def test_export_counts_members_no_longer_in_one_id_apart(spark, settings_for, tmp_path):
    # Before: a member whose One ID was merged away, split or dissolved since the audience was
    # created has no golden record and was counted "without the identifier", hiding that the
    # audience is out of date.
    settings = settings_for()
    tables = Tables(spark, settings.warehouse)
    created = F.lit("2026-03-10 08:00:00").cast("timestamp")
    members = spark.createDataFrame(
        [("vip", "OID_A"), ("vip", "OID_B")], "audience string, one_id string"
    )
    tables.replace_where(
        members.withColumn("created_at", created), "gold", "audience_members", "true"
    )
    summary = spark.createDataFrame(
        [("vip", "true", 2, AS_OF)], "audience string, where_expr string, members long, as_of date"
    )
    tables.replace_where(summary.withColumn("created_at", created), "gold", "audiences", "true")
    golden = spark.createDataFrame(  # OID_A merged into another One ID: no golden record
        [("OID_B", "13900001111", None, None, False)],
        "one_id string, phone string, email string, unionid string, marketing_opt_out boolean",
    )
    tables.replace_where(golden, "oneid", "golden_members", "true")
    done = audience.export(spark, tables, settings, "vip", "SMS", str(tmp_path / "outbox"))
    counts = (done.rows, done.without_identifier, done.opted_out, done.no_longer_in_oneid)
    assert counts == (1, 0, 0, 1)
    text = "".join(p.read_text() for p in Path(done.path).glob("*.csv"))
    assert text.splitlines() == ["one_id,phone", "OID_B,13900001111"]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("net_sales / purchase_orders > 500", "[DIVIDE_BY_ZERO] Division by zero."),
        ("cast(city AS int) > 0", "[CAST_INVALID_INPUT] The value '"),
    ],
)
def test_create_names_a_condition_that_fails_on_the_data(
    spark, people_world, settings_for, where, message
):
    # Before: ANSI mode raised these while rows were read, outside the eager check: a raw
    # Spark error, exit 1. OID_B bought nothing (purchase_orders 0); cities are Chinese names.
    assert people_world["rows"]["OID_B"].purchase_orders == 0
    settings = settings_for()
    tables = _published_world(spark, people_world, settings)
    with pytest.raises(audience.AudienceError) as raised:
        audience.create(spark, tables, settings, "big", where)
    assert str(raised.value).startswith(f"--where {where!r}: fails on the data: {message}")
    assert str(raised.value).endswith(
        "instead; use try_divide / try_cast (null where the value does not compute)"
    )
    assert "spark.sql.ansi.enabled" not in str(raised.value)
    assert not tables.exists("gold", "audiences")
