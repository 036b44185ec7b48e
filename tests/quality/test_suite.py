"""Suite files: GX's own format, checked on load with errors that name file and expectation."""

from __future__ import annotations

import json
from pathlib import Path

import great_expectations as gx
import pytest

from lakehouse.quality import SuiteError, load_suite, parse_suite
from lakehouse.quality.suite import default_expectations_dir

EXAMPLE = "example.orders"


def _write(folder: Path, name: str, document: object) -> Path:
    path = folder / f"{name}.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _suite(*expectations: dict, name: str = "t.orders") -> dict:
    return {"name": name, "expectations": list(expectations)}


NOT_NULL = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "k"}}


def test_example_suite_loads_with_names_keys_and_levels():
    suite = load_suite(EXAMPLE)
    assert suite.path == default_expectations_dir() / f"{EXAMPLE}.json"
    by_name = {rule.name: rule for rule in suite.rules}
    assert by_name["order_key_unique"].key == "expect_column_values_to_be_unique:order_key"
    assert by_name["channel_order_unique"].columns == ("channel", "channel_order_no")
    assert by_name["store_known"].row_level
    assert not by_name["row_count_matches"].row_level
    assert by_name["row_count_matches"].key == "expect_table_row_count_to_equal"
    assert suite.references == {"master.stores"}


def test_suite_file_is_plain_gx_serialisation():
    document = json.loads((default_expectations_dir() / f"{EXAMPLE}.json").read_text())
    suite = gx.ExpectationSuite(**document)
    assert len(suite.expectations) == len(document["expectations"])
    assert suite.expectations[-1].configuration.kwargs["min_value"] == {"$PARAMETER": "revenue_min"}


def test_rule_without_meta_name_is_named_by_type_and_column():
    suite = parse_suite(_suite(NOT_NULL), "test")
    assert suite.rules[0].name == suite.rules[0].key == "expect_column_values_to_not_be_null:k"


def test_missing_suite_names_the_file_and_known_suites(tmp_path):
    _write(tmp_path, "silver.orders", _suite(NOT_NULL, name="silver.orders"))
    with pytest.raises(SuiteError, match=r"silver\.order_lines.*does not exist.*silver\.orders"):
        load_suite("silver.order_lines", tmp_path)


def test_invalid_json_is_reported(tmp_path):
    (tmp_path / "t.orders.json").write_text('{"name": "t.orders",', encoding="utf-8")
    with pytest.raises(SuiteError, match="not valid JSON"):
        load_suite("t.orders", tmp_path)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (_suite(NOT_NULL, name="t.other"), "file is named for 't.orders'"),
        ({**_suite(NOT_NULL), "rules": []}, "unknown keys rules"),
        (_suite(), "non-empty list"),
        (
            _suite({"type": "expect_column_values_to_be_purple", "kwargs": {"column": "k"}}),
            r"expectations\[0\] \(expect_column_values_to_be_purple\) is not a valid GX",
        ),
        (
            _suite(
                {
                    "type": "expect_column_values_to_be_between",
                    "kwargs": {"column": "k", "min_value": "not a number"},
                }
            ),
            r"expectations\[0\] \(expect_column_values_to_be_between\) is not a valid GX",
        ),
        (_suite({**NOT_NULL, "kwarg": {}}), "unknown keys: kwarg"),
        (_suite(NOT_NULL, NOT_NULL), r"\[0\] and \[1\] are both named"),
        (
            _suite(
                {
                    "type": "expect_column_values_to_be_in_set",
                    "kwargs": {"column": "k", "value_set": [1], "row_condition": 'k>"1"'},
                }
            ),
            "condition_parser 'spark'",
        ),
    ],
    ids=[
        "name",
        "unknown-key",
        "empty",
        "unknown-type",
        "bad-kwargs",
        "unknown-entry-key",
        "duplicate",
        "row-condition",
    ],
)
def test_bad_suite_files_fail_with_a_clear_error(tmp_path, document, message):
    _write(tmp_path, "t.orders", document)
    with pytest.raises(SuiteError, match=message):
        load_suite("t.orders", tmp_path)
