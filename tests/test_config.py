"""Configuration loads, merges and refuses what it cannot use, with one clear sentence."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from lakehouse.config import ConfigError, deep_merge, load_settings

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.fixture()
def conf_copy(tmp_path: Path) -> Path:
    target = tmp_path / "conf"
    shutil.copytree(CONF, target)
    return target


def test_local_overlay_merges_over_base_and_resolves_paths(monkeypatch):
    monkeypatch.delenv("LAKEHOUSE_LANDING", raising=False)
    monkeypatch.delenv("LAKEHOUSE_WAREHOUSE", raising=False)
    settings = load_settings("local", CONF)
    assert settings.env == "local"
    assert settings.spark.conf["spark.sql.shuffle.partitions"] == "4"  # overlay
    assert settings.spark.conf["spark.sql.session.timeZone"] == "UTC"  # base
    assert settings.landing == str((CONF.parent / "data/landing").resolve())
    assert settings.dataset("pos_sales")[0] == "pos_sales"
    assert settings.dataset("stores")[0] == "master"


def test_environment_variables_override_paths(monkeypatch, tmp_path):
    monkeypatch.setenv("LAKEHOUSE_ENV", "cluster")
    monkeypatch.setenv("LAKEHOUSE_LANDING", "s3a://bucket/landing")
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", str(tmp_path))
    settings = load_settings(conf_dir=CONF)
    assert settings.env == "cluster"
    assert settings.spark.delta_jars == "provided"
    assert settings.landing == "s3a://bucket/landing"
    assert settings.warehouse == str(tmp_path)


def test_unknown_environment_names_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown environment 'prod'.*cluster, local"):
        load_settings("prod", CONF)


def test_unknown_key_is_one_clear_error(conf_copy):
    (conf_copy / "local.yml").write_text("spark:\n  mastr: local[1]\n")
    with pytest.raises(ConfigError, match=r"unknown key 'spark.mastr'"):
        load_settings("local", conf_copy)


def test_wrong_type_is_one_clear_error(conf_copy):
    (conf_copy / "local.yml").write_text("bronze:\n  max_raw_chars: lots\n")
    with pytest.raises(ConfigError, match=r"'bronze.max_raw_chars'"):
        load_settings("local", conf_copy)


def test_a_null_spark_setting_is_one_clear_error(conf_copy):
    """Before: `null` reached Spark as the text "None", failing the session (or its first
    shuffle) with an error that named no configuration file."""
    (conf_copy / "local.yml").write_text("spark:\n  conf:\n    spark.sql.shuffle.partitions: ~\n")
    with pytest.raises(ConfigError, match=r"spark.sql.shuffle.partitions: null; give a value"):
        load_settings("local", conf_copy)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("    phone: {rule", "    phnoe: {rule"), "golden_record.phnoe: no source provides"),
        (
            ("    birthday: {rule: priority_then_newest, sources: [crm_members]}\n", ""),
            "birthday: gold.member_portrait reads it from the golden record",
        ),
    ],
)
def test_a_golden_record_oneid_golden_cannot_build_is_refused_at_load(conf_copy, edit, message):
    """Before: the configuration loaded, and a run-all failed hours later at oneid.golden
    (a misspelt attribute) or deep in gold.member_portrait (one it reads left out)."""
    text = (conf_copy / "oneid.yml").read_text()
    assert edit[0] in text
    (conf_copy / "oneid.yml").write_text(text.replace(*edit))
    with pytest.raises(ConfigError, match=message):
        load_settings("local", conf_copy)


def test_missing_path_is_one_clear_error(conf_copy, monkeypatch):
    monkeypatch.delenv("LAKEHOUSE_LANDING", raising=False)
    base = (conf_copy / "base.yml").read_text().replace("  landing: data/landing\n", "")
    (conf_copy / "base.yml").write_text(base)
    with pytest.raises(ConfigError, match=r"missing key 'paths.landing'"):
        load_settings("local", conf_copy)


def test_bad_dataset_spec_is_refused(conf_copy):
    sources = (conf_copy / "sources.yml").read_text()
    (conf_copy / "sources.yml").write_text(
        sources.replace("encoding: gb18030", "encoding: gb9999", 1)
    )
    with pytest.raises(ConfigError, match=r"unknown encoding 'gb9999'"):
        load_settings("local", conf_copy)


def test_invalid_yaml_names_the_file(conf_copy):
    (conf_copy / "local.yml").write_text("spark: [unclosed\n")
    with pytest.raises(ConfigError, match=r"local.yml is not valid YAML"):
        load_settings("local", conf_copy)


def test_deep_merge_keeps_nested_keys():
    assert deep_merge({"a": {"x": 1, "y": 2}, "b": 1}, {"a": {"y": 3}}) == {
        "a": {"x": 1, "y": 3},
        "b": 1,
    }


def test_unknown_skus_stop_no_run_unless_a_threshold_is_set():
    """The landing contract: a code that maps to nothing may not stop a run."""
    silver = load_settings("local").silver
    assert silver.unmapped_rate_threshold is None
    assert silver.unmapped_threshold(14)[0] is None
    assert silver.unmapped_threshold(10_000)[0] is None


def test_small_deliveries_are_judged_by_the_small_unmapped_threshold():
    silver = load_settings("local").silver.model_copy(
        update={
            "unmapped_rate_threshold": 0.05,
            "unmapped_rate_min_lines": 200,
            "unmapped_rate_threshold_small": 0.5,
        }
    )
    assert silver.unmapped_threshold(14)[0] == 0.5
    assert "fewer than 200 lines" in silver.unmapped_threshold(199)[1]
    assert silver.unmapped_threshold(200) == (0.05, "silver.unmapped_rate_threshold")
    # the small threshold never makes small deliveries stricter than big ones
    strict = silver.model_copy(update={"unmapped_rate_threshold_small": 0.01})
    assert strict.unmapped_threshold(10)[0] == 0.05


def test_the_cluster_environment_needs_its_paths(monkeypatch):
    monkeypatch.delenv("LAKEHOUSE_LANDING", raising=False)
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", "hdfs:///lakehouse")
    # before: the driver's local data/landing under the bundle, which executors cannot see
    with pytest.raises(ConfigError, match=r"no landing path .*set LAKEHOUSE_LANDING"):
        load_settings("cluster", CONF)


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_path_variable_is_an_error_not_the_default(monkeypatch, value):
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", value)
    with pytest.raises(ConfigError, match="LAKEHOUSE_WAREHOUSE is set but empty"):
        load_settings("local", CONF)


def test_a_uri_with_one_slash_is_not_a_relative_path(monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", "file:/data/wh")
    assert load_settings("local", CONF).warehouse == "file:/data/wh"


@pytest.mark.parametrize("env", ["base", "sources", "quality"])
def test_a_shared_file_is_not_an_environment(env):
    with pytest.raises(ConfigError, match=rf"unknown environment '{env}'.*known: cluster, local"):
        load_settings(env, CONF)


def test_a_crm_snapshot_missing_too_many_members_is_taken_for_a_cut_off_export():
    silver = load_settings("local").silver.model_copy(
        update={"max_crm_departure_share": 0.2, "crm_departure_min_members": 100}
    )
    last = dt.date(2026, 3, 1)
    assert silver.crm_departures_error(20, 100, last) is None  # a fifth may leave
    error = silver.crm_departures_error(21, 100, last)
    assert error is not None
    assert "21 of the 100 members the snapshot of 2026-03-01 listed" in error
    assert "silver.max_crm_departure_share" in error
    assert silver.crm_departures_error(99, 99, last) is None  # too few to judge by a share
    assert silver.crm_departures_error(0, 0, last) is None
    with pytest.raises(ValueError, match="max_crm_departure_share"):
        type(silver).model_validate({**silver.model_dump(), "max_crm_departure_share": 1.5})


def test_a_key_given_twice_is_refused_with_its_lines(conf_copy):
    """Before: PyYAML kept the second `paths:` block, and the first one's landing was dropped
    without a word. Merge keys (`<<`) still override as YAML means them."""
    (conf_copy / "local.yml").write_text(
        "paths:\n  landing: /data/in\nbronze:\n  max_raw_chars: 10\npaths:\n  warehouse: /data/wh\n"
    )
    with pytest.raises(
        ConfigError, match=r"(?s)local.yml is not valid YAML.*'paths' twice \(first on line 1\)"
    ):
        load_settings("local", conf_copy)
    (conf_copy / "local.yml").write_text(
        "spark:\n  conf: &c\n    spark.sql.shuffle.partitions: '3'\n"
        "bronze:\n  <<: {max_raw_chars: 10}\n  max_raw_chars: 20\n"
    )
    assert load_settings("local", conf_copy).bronze.max_raw_chars == 20


def test_a_quality_file_with_a_table_twice_is_refused(conf_copy):
    from lakehouse.quality.policy import load_quality_settings

    text = (conf_copy / "quality.yml").read_text()
    (conf_copy / "quality.yml").write_text(text + "\n" + text)
    with pytest.raises(ConfigError, match=r"(?s)quality.yml is not valid YAML.*twice"):
        load_quality_settings(conf_copy)


@pytest.mark.parametrize("value", [" /data/wh", "/data/wh ", "/data/wh\n"])
def test_a_path_variable_with_whitespace_around_it_is_an_error(monkeypatch, value):
    """Before: "/data/wh " was another, empty warehouse; " /data/wh" a folder under the
    project named " "."""
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", value)
    with pytest.raises(ConfigError, match=r"LAKEHOUSE_WAREHOUSE=.* starts or ends with whitespace"):
        load_settings("local", CONF)


def test_an_empty_environment_name_is_an_error_not_local(monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_ENV", "")
    with pytest.raises(ConfigError, match="LAKEHOUSE_ENV is set but empty"):
        load_settings(conf_dir=CONF)
    with pytest.raises(ConfigError, match="environment name is empty"):
        load_settings(" ", CONF)


def test_a_platform_left_out_of_a_silver_map_is_refused_at_load(conf_copy):
    """Before: it loaded, and silver.sales failed mid-job with a bare KeyError: 'JD'."""
    silver = (conf_copy / "silver.yml").read_text()
    shops = "  online_default_shop:\n    JD: POP\n    MALL: OWN\n"
    assert shops in silver
    (conf_copy / "silver.yml").write_text(
        silver.replace(shops, "  online_default_shop:\n    MALL: OWN\n")
    )
    with pytest.raises(ConfigError, match=r"silver.online_default_shop lacks JD"):
        load_settings("local", conf_copy)
