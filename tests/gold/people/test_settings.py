"""conf/gold.yml gold.people and conf/tags.yml: defaults load, malformed entries name the key or
the tag."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lakehouse.config import ConfigError, load_settings
from lakehouse.gold.people.settings import PeopleSettings, TagCatalog

TAG = {"code": "t1", "name_cn": "标签", "name_en": "tag", "category": "c", "expr": "gender"}


def test_shipped_configuration_loads():
    settings = load_settings("local")
    people = settings.gold.people
    assert people.rfm.window_days == 365 and people.rfm.bins == 5
    assert (people.lifecycle.loyal_min_purchases, people.lifecycle.loyal_max_recency_days) == (
        4,
        90,
    )
    assert people.lifecycle.churn_after_days == 180
    assert people.salt_env == "LAKEHOUSE_PII_SALT"
    codes = [t.code for t in settings.tags]
    assert len(codes) == len(set(codes)) >= 10


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{k: v for k, v in TAG.items() if k != "name_cn"}], "tag t1: name_cn: Field required"),
        ([TAG, TAG], "tag t1: the code is used twice"),
        ([{**TAG, "code": "Bad-Code"}], "tag Bad-Code: code"),
        ([{**TAG, "expr": "concat(a, 'b'"}], "tag t1: expr: Value error, expr has unbalanced"),
        ([{**TAG, "refresh": "hourly"}], "tag t1: refresh"),
        ([{**TAG, "colour": "red"}], "tag t1: colour: unknown key"),
        ([{k: v for k, v in TAG.items() if k != "code"}], "tag #1 (no code): code"),
    ],
)
def test_malformed_tags_name_the_tag(entries, message):
    with pytest.raises(ValidationError) as err:
        TagCatalog.model_validate(entries)
    assert message in str(err.value)


def test_malformed_tag_in_conf_is_a_config_error(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    for path in (load_settings("local").root / "conf").glob("*.yml"):
        (conf / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (conf / "tags.yml").write_text(
        "tags:\n  - {code: x, name_en: x, category: c, expr: gender}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="tag x: name_cn: Field required"):
        load_settings("local", conf)


@pytest.mark.parametrize(
    ("people", "message"),
    [
        ({"rfm": {"window": 365}}, "Extra inputs"),
        (
            {"preferences": {"price_bands": [{"label": "a"}, {"label": "b", "max": 9}]}},
            "only the last",
        ),
        (
            {
                "preferences": {
                    "price_bands": [
                        {"label": "a", "max": 9},
                        {"label": "b", "max": 3},
                        {"label": "c"},
                    ]
                }
            },
            "must increase",
        ),
        ({"preferences": {"coupon_high_share": 0.2, "coupon_medium_share": 0.5}}, "below"),
        ({"age_band_edges": [30, 20]}, "strictly increasing"),
        ({"non_purchase_statuses": ["VOID"]}, "unknown status VOID"),
        # before: loaded, then the portrait job failed with a bare KeyError: 'low'
        ({"preferences": {"coupon_labels": {"high": "高", "medium": "中"}}}, "misses low"),
        ({"export_channels": {"SMS": {"identifier": "fax"}}}, "identifier"),
    ],
)
def test_bad_people_settings(people, message):
    with pytest.raises(ValidationError, match=message):
        PeopleSettings.model_validate(people)
