"""conf/quality.yml: validated on load; lookup by name, then key, then table and global default."""

from __future__ import annotations

import pytest

from lakehouse.config import ConfigError
from lakehouse.quality import load_quality_settings, parse_suite, quality_settings
from lakehouse.quality.policy import resolve_policies

SUITE = parse_suite(
    {
        "name": "silver.orders",
        "expectations": [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "k"}},
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "status", "value_set": ["PAID"]},
                "meta": {"name": "status_valid"},
            },
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "k"}},
            {"type": "expect_table_row_count_to_equal", "kwargs": {"value": 3}},
        ],
    },
    "test",
)


def test_repository_configuration_loads():
    settings = load_quality_settings()
    assert settings.default == "fail"
    assert settings.for_table("example.orders").default == "quarantine"
    assert settings.docs_dir("/wh/") == "/wh/_dq_docs"


def test_lookup_order_and_table_level_quarantine_becomes_fail():
    settings = quality_settings(
        {
            "default": "warn",
            "tables": {
                "silver.orders": {
                    "default": "quarantine",
                    "expectations": {
                        "expect_column_values_to_not_be_null:k": "fail",
                        "expect_column_values_to_be_in_set:status": "fail",
                        "status_valid": "warn",
                    },
                }
            },
        }
    )
    assert resolve_policies(settings, SUITE) == {
        "expect_column_values_to_not_be_null:k": "fail",  # by type:column
        "status_valid": "warn",  # meta.name wins over type:column
        "expect_column_values_to_be_unique:k": "quarantine",  # table default
        "expect_table_row_count_to_equal": "fail",  # quarantine cannot apply to a table rule
    }
    other = SUITE.__class__(name="silver.items", rules=SUITE.rules, document=SUITE.document)
    assert set(resolve_policies(settings, other).values()) == {"warn"}  # global default


def test_explicit_quarantine_of_a_table_level_rule_is_an_error():
    settings = quality_settings(
        {
            "tables": {
                "silver.orders": {"expectations": {"expect_table_row_count_to_equal": "quarantine"}}
            }
        }
    )
    with pytest.raises(ConfigError, match="quarantine is meaningless"):
        resolve_policies(settings, SUITE)


def test_policy_for_an_expectation_the_suite_lacks_is_an_error():
    settings = quality_settings(
        {"tables": {"silver.orders": {"expectations": {"status_vaild": "warn"}}}}
    )
    with pytest.raises(ConfigError, match=r"status_vaild; known: .*status_valid"):
        resolve_policies(settings, SUITE)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"defualt": "warn"}, "unknown key 'defualt'"),
        ({"default": "ignore"}, "'default' must be one of quarantine, warn, fail, not 'ignore'"),
        (
            {"tables": {"silver.orders": {"expectations": {"x": "drop"}}}},
            "'tables.silver.orders.expectations.x' must be one of",
        ),
        (
            {"tables": {"silver.orders": {"policy": "warn"}}},
            "unknown key 'tables.silver.orders.policy'",
        ),
        ({"tables": {"orders": {}}}, "must be named '<layer>.<table>'"),
        ({"data_docs": {"enabled": "sometimes"}}, "'data_docs.enabled'"),
    ],
)
def test_invalid_configuration_fails_with_one_sentence(raw, message):
    with pytest.raises(ConfigError, match=message):
        quality_settings(raw)


def test_configuration_file_errors_name_the_file(tmp_path):
    (tmp_path / "quality.yml").write_text("default: fail\ntables:\n  a.b:\n    deafult: warn\n")
    with pytest.raises(ConfigError, match=r"quality\.yml\): unknown key 'tables\.a\.b\.deafult'"):
        load_quality_settings(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_quality_settings(tmp_path / "nowhere")


def test_every_repository_suite_loads_and_its_policies_resolve():
    from lakehouse.quality import load_suite
    from lakehouse.quality.suite import default_expectations_dir

    settings = load_quality_settings()
    policies = {
        path.stem: resolve_policies(settings, load_suite(path.stem))
        for path in sorted(default_expectations_dir().glob("*.json"))
    }
    # Referential integrity and reconciliation: each rule's policy is a decision
    # (conf/quality.yml says why).
    assert policies["silver.order_lines"]["order_known"] == "quarantine"
    assert policies["silver.order_lines"]["sku_is_product"] == "fail"
    assert policies["silver.campaign_touches"]["campaign_known"] == "warn"
    assert policies["silver.inventory_daily"]["sku_is_product"] == "warn"
    assert policies["silver.inventory_daily"]["store_location_is_store"] == "warn"
    assert policies["silver.reconciliation"] == {
        "rows_reconcile": "fail",
        "amount_reconciles": "fail",
    }


def test_a_misspelt_table_in_the_file_is_an_error_not_a_fallback_to_the_default(tmp_path):
    (tmp_path / "quality.yml").write_text(
        "default: fail\ntables:\n  silver.order_line:\n    default: quarantine\n"
    )
    with pytest.raises(
        ConfigError, match=r"tables\.silver\.order_line name no expectation suite .*silver\.orders"
    ):
        load_quality_settings(tmp_path)


def test_gold_never_quarantines():
    with pytest.raises(ConfigError, match=r"tables\.gold\.store_daily: quarantine is for bronze"):
        quality_settings({"tables": {"gold.store_daily": {"expectations": {"x": "quarantine"}}}})
    # inherited from the global default, quarantine is read as fail, as for table-level rules
    settings = quality_settings({"default": "quarantine"})
    gold = SUITE.__class__(name="gold.store_daily", rules=SUITE.rules, document=SUITE.document)
    assert set(resolve_policies(settings, gold).values()) == {"fail"}


def test_a_data_docs_dir_on_a_remote_file_system_stays_a_uri():
    """Before: s3a://b/dq became the local folder <root>/s3a:/b/dq and the docs were written
    there, where quality.md says docs on s3a:// or hdfs:// are skipped with a warning."""
    from pathlib import Path

    from lakehouse.spark import local_path

    settings = quality_settings({"data_docs": {"dir": "s3a://b/dq"}})
    settings = settings.model_copy(update={"root": Path("/r")})
    assert settings.docs_dir("/wh") == "s3a://b/dq"
    assert local_path(settings.docs_dir("/wh")) is None
    relative = quality_settings({"data_docs": {"dir": "docs/dq"}}).model_copy(
        update={"root": Path("/r")}
    )
    assert relative.docs_dir("/wh") == "/r/docs/dq"
