"""Every shipped tag of conf/tags.yml on the hand-built members, the catalog checks, refresh.

Adding a tag to conf/tags.yml: add its expected value for OID_A (and a member without it) to
EXPECTED_A / EXPECTED_C below.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import yaml
from chispa import assert_df_equality

from lakehouse.config import load_settings
from lakehouse.gold.people.settings import TagCatalog, TagDefinition
from lakehouse.gold.people.tags import (
    TagError,
    carried_over,
    catalog_frame,
    check_catalog,
    due,
    period_start,
    pivot_tags,
    redefined_tags,
    tag_values,
    to_compute,
)
from tests.gold.people.conftest import AS_OF

EXPECTED_A = {
    "rfm_class": "重要保持客户",
    "rfm_code": "333",
    "lifecycle": "复购",
    "churn_warning": "false",
    "fav_category": "女装",
    "fav_brand": "拾光",
    "fav_channel": "TMALL",
    "price_level": "低价",
    "shopping_days": "工作日型",
    "coupon_affinity": "中",
    "age_group": "35-39",
    "sex": "F",
    "bought_30d": "true",
    "omni_channel": "true",
}
# A member known only: no purchase, no order; tags with a null value give no row, and a tag
# over orders is what its expression gives over no orders (before: no row, so an audience's
# `NOT bought_30d` dropped every prospect).
EXPECTED_C = {
    "lifecycle": "无消费",
    "churn_warning": "false",
    "bought_30d": "false",
    "omni_channel": "false",
}


@pytest.fixture(scope="module")
def catalog():
    return load_settings("local").tags


def test_every_shipped_tag_has_an_expected_value(catalog):
    assert set(EXPECTED_A) == {t.code for t in catalog}


def test_shipped_tags_on_hand_built_members(spark, people_world, catalog):
    check_catalog(catalog, people_world["portrait"], people_world["history"])
    rows = tag_values(list(catalog), people_world["portrait"], people_world["history"], AS_OF)
    expected = spark.createDataFrame(
        [("OID_A", k, v, AS_OF) for k, v in EXPECTED_A.items()]
        + [("OID_C", k, v, AS_OF) for k, v in EXPECTED_C.items()],
        "one_id string, tag_code string, tag_value string, as_of date",
    )
    assert_df_equality(
        rows.where("one_id IN ('OID_A', 'OID_C')"),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )
    # the opted-out buyer still has tags (opt-out is applied by audiences, not by tags)
    e = {r.tag_code: r.tag_value for r in rows.where("one_id = 'OID_E'").collect()}
    assert e["rfm_class"] == "一般发展客户" and e["lifecycle"] == "普通"
    # the catalog's types come back in the audience view
    wide = pivot_tags(rows, catalog).where("one_id = 'OID_A'").first()
    assert wide["churn_warning"] is False and wide["bought_30d"] is True


def test_a_new_tag_is_yaml_only(spark, people_world):
    text = """
    - code: big_spender
      name_cn: 高消费
      name_en: big spender
      category: 价值 value
      over: orders
      expr: "sum(net_sales) >= 300"
      type: boolean
    """
    catalog = TagCatalog.model_validate(yaml.safe_load(text))
    check_catalog(catalog, people_world["portrait"], people_world["history"])
    rows = tag_values(list(catalog), people_world["portrait"], people_world["history"], AS_OF)
    # sum over no orders is null: the members without orders (B, C) have no row
    assert {r.one_id: r.tag_value for r in rows.collect()} == {
        "OID_A": "true",
        "OID_D": "false",
        "OID_E": "true",
    }


def _tag(**kw) -> TagCatalog:
    base = {"code": "t1", "name_cn": "标签", "name_en": "tag", "category": "c", "expr": "gender"}
    return TagCatalog.model_validate([{**base, **kw}])


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"expr": "gendr"}, "tag t1 (conf/tags.yml): unknown column `gendr`"),
        ({"expr": "gender = = 'F'"}, "tag t1 (conf/tags.yml): syntax error"),
        ({"expr": "no_such_fn(gender)"}, "unknown function"),
        ({"over": "orders", "expr": "platform"}, "tag t1 (conf/tags.yml)"),
        ({"expr": "gender", "type": "boolean"}, "type boolean but `gender` gives string"),
        ({"code": "city"}, "tag city (conf/tags.yml): the code is also a portrait column"),
    ],
)
def test_bad_tags_are_named_at_job_start(people_world, kw, message):
    with pytest.raises(TagError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_catalog(_tag(**kw), people_world["portrait"], people_world["history"])


def test_refresh_and_catalog_table(spark, catalog):
    daily, weekly, monthly = (
        TagDefinition(code="x", name_cn="x", name_en="x", category="c", expr="1", refresh=r)
        for r in ("daily", "weekly", "monthly")
    )
    monday, tuesday, first = date(2026, 3, 9), date(2026, 3, 10), date(2026, 4, 1)
    assert [due(daily, d) for d in (monday, tuesday, first)] == [True, True, True]
    assert [due(weekly, d) for d in (monday, tuesday, first)] == [True, False, False]
    assert [due(monthly, d) for d in (monday, tuesday, first)] == [False, False, True]
    frame = catalog_frame(spark, catalog)
    row = frame.where("tag_code = 'bought_30d'").first()
    assert (row.name_cn, row.over, row.value_type, row.refresh) == (
        "近30天购买",
        "orders",
        "boolean",
        "daily",
    )
    assert frame.count() == len(catalog)


def test_a_tag_not_due_is_carried_and_computed_for_people_new_since(spark, people_world, catalog):
    """Tuesday: omni_channel (weekly) was computed on Monday for OID_A only. A keeps Monday's
    value and date; everyone else, new since, gets today's. Before: only A had a row until the
    next Monday, and `omni_channel` and `NOT omni_channel` both left the others out."""
    weekly = [t for t in catalog if t.code == "omni_channel"]
    assert AS_OF.weekday() == 1 and not due(weekly[0], AS_OF)
    monday = date(2026, 3, 9)
    previous = spark.createDataFrame(
        [("OID_A", "omni_channel", "false", monday), ("OID_GONE", "omni_channel", "true", monday)],
        "one_id string, tag_code string, tag_value string, as_of date",
    )
    portrait, history = people_world["portrait"], people_world["history"]
    got = carried_over(weekly, previous, portrait, history, AS_OF)
    today = tag_values(weekly, portrait, history, AS_OF).where("one_id <> 'OID_A'")
    expected = today.unionByName(previous.where("one_id = 'OID_A'"))
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    assert {r.one_id for r in got.collect()} == {r.one_id for r in portrait.collect()}


def test_each_tag_not_due_is_computed_for_the_people_it_has_no_row_for(
    spark, people_world, catalog
):
    """Two tags not due (weekly omni_channel, a monthly fav_channel): OID_A has Monday's
    omni_channel row but no fav_channel row (a non-buyer on the 1st, say). A gets today's
    fav_channel and keeps Monday's omni_channel. Before: a row of any kept tag made A no
    newcomer, and A had no fav_channel until the next month's first."""
    weekly = next(t for t in catalog if t.code == "omni_channel")
    monthly = next(t for t in catalog if t.code == "fav_channel").model_copy(
        update={"refresh": "monthly"}
    )
    kept = [weekly, monthly]
    assert not any(due(t, AS_OF) for t in kept)
    monday = date(2026, 3, 9)
    previous = spark.createDataFrame(
        [("OID_A", "omni_channel", "false", monday)],
        "one_id string, tag_code string, tag_value string, as_of date",
    )
    portrait, history = people_world["portrait"], people_world["history"]
    got = carried_over(kept, previous, portrait, history, AS_OF)
    today = tag_values(kept, portrait, history, AS_OF).where(
        "NOT (one_id = 'OID_A' AND tag_code = 'omni_channel')"
    )
    assert_df_equality(
        got, today.unionByName(previous), ignore_row_order=True, ignore_nullable=True
    )
    assert ("OID_A", "fav_channel", "TMALL") in {
        (r.one_id, r.tag_code, r.tag_value) for r in got.collect()
    }


def test_a_tag_whose_monday_or_first_had_no_run_is_computed_by_the_period_s_first_run(catalog):
    """Before: the tags job ran on Sunday 8 March and Tuesday 10 March, not on Monday 9: the
    weekly omni_channel was carried from Monday 2 March until Monday 16, two weeks old, while
    gold.tag_catalog said it was published on the 10th. A monthly tag missing its 1st was
    carried for nearly two months."""
    weekly = next(t for t in catalog if t.code == "omni_channel")
    monthly = weekly.model_copy(update={"code": "m", "refresh": "monthly"})
    daily = weekly.model_copy(update={"code": "d", "refresh": "daily"})
    tags = [weekly, monthly, daily]
    published = [
        {"tag_code": t.code, "over": t.over, "definition": t.expr, "value_type": t.type}
        for t in tags
    ]
    tuesday, wednesday = date(2026, 3, 10), date(2026, 3, 11)
    assert [period_start(t, tuesday) for t in tags] == [date(2026, 3, 9), date(2026, 3, 1), tuesday]
    last_week = {"omni_channel": date(2026, 3, 2), "m": date(2026, 3, 1), "d": date(2026, 3, 8)}
    assert to_compute(tags, tuesday, last_week, published) == [weekly, daily]
    # computed on Tuesday for everyone, Wednesday carries it (and March's monthly tag)
    this_week = {**last_week, "omni_channel": tuesday}
    assert to_compute(tags, wednesday, this_week, published) == [daily]
    # April 2nd, with no run on the 1st: the monthly tag is computed
    assert to_compute(tags, date(2026, 4, 2), this_week, published) == [weekly, monthly, daily]


def test_a_tag_redefined_since_the_catalog_was_published_is_computed_even_when_not_due(catalog):
    """Before: omni_channel (weekly) given a new expr on a Tuesday was carried over with the old
    definition's values until Monday, while the catalog published the new definition (so an
    audience's freshness check passed on stale values)."""
    weekly = next(t for t in catalog if t.code == "omni_channel")
    assert not due(weekly, AS_OF)
    published = [
        {
            "tag_code": t.code,
            "over": t.over,
            "definition": t.expr,
            "value_type": t.type,
        }
        for t in catalog
    ]
    existing = {t.code: AS_OF - timedelta(days=1) for t in catalog}  # Monday's rows
    assert weekly not in to_compute(catalog, AS_OF, existing, published)
    changed = weekly.model_copy(update={"expr": weekly.expr + " AND true"})
    redefined = [changed if t is weekly else t for t in catalog]
    assert changed in to_compute(redefined, AS_OF, existing, published)
    assert redefined_tags(redefined, published) == {"omni_channel": "changed"}
    first = next(iter(catalog)).code
    assert redefined_tags(redefined, published[1:]) == {first: "new", "omni_channel": "changed"}
