"""Each row-level rule's Spark predicate, nulls included, derived from the suite's expectation.

GX's semantics, matched here: a null value passes every rule except not_be_null; `mostly` does
not soften the split (every failing row is flagged); uniqueness flags every occurrence of a
repeated value; compound uniqueness ignores rows `ignore_row_if` names (by default rows whose
columns are all null) and treats nulls as equal otherwise.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from lakehouse.quality import parse_suite
from lakehouse.quality.predicates import Check, annotate, reason


def _check(entry: dict, parameters: dict[str, Any] | None = None) -> Check:
    rule = parse_suite({"name": "t.t", "expectations": [entry]}, "test").rules[0]
    return Check(rule.name, "_ok", rule.configured(parameters or {}))


def _flags(spark, ddl, rows, entry, parameters=None, references=None) -> list[bool]:
    df = spark.createDataFrame([(i, *row) for i, row in enumerate(rows)], f"id int, {ddl}")
    annotated = annotate(df, [_check(entry, parameters)], references or {})
    return [row["_ok"] for row in sorted(annotated.collect(), key=lambda row: row["id"])]


def _rule(kind: str, **kwargs: Any) -> dict:
    return {"type": f"expect_{kind}", "kwargs": kwargs}


CASES = [
    pytest.param(
        "v string",
        [("a",), (None,)],
        _rule("column_values_to_not_be_null", column="v"),
        [True, False],
        id="not_null",
    ),
    pytest.param(
        "v string",
        [("PAID",), ("X",), (None,)],
        _rule("column_values_to_be_in_set", column="v", value_set=["PAID"], mostly=0.1),
        [True, False, True],
        id="in_set-null-passes-mostly-ignored",
    ),
    pytest.param(
        "v string",
        [("PAID",), ("X",), (None,)],
        _rule("column_values_to_not_be_in_set", column="v", value_set=["X"]),
        [True, False, True],
        id="not_in_set",
    ),
    pytest.param(
        "v int",
        [(-1,), (0,), (5,), (10,), (11,), (None,)],
        _rule("column_values_to_be_between", column="v", min_value=0, max_value=10),
        [False, True, True, True, False, True],
        id="between-inclusive",
    ),
    pytest.param(
        "v double",
        [(0.0,), (5.5,), (10.0,)],
        _rule(
            "column_values_to_be_between",
            column="v",
            min_value=0,
            max_value=10,
            strict_min=True,
            strict_max=True,
        ),
        [False, True, False],
        id="between-strict",
    ),
    pytest.param(
        "v date",
        [(date(2019, 12, 31),), (date(2026, 3, 2),), (date(2026, 3, 3),), (None,)],
        _rule(
            "column_values_to_be_between",
            column="v",
            min_value="2020-01-01",
            max_value={"$PARAMETER": "run_date"},
        ),
        [False, True, False, True],
        id="between-dates-iso-and-parameter",
    ),
    pytest.param(
        "v timestamp",
        [(datetime(2026, 3, 2, 23, 59),), (datetime(2026, 3, 3, 0, 0),)],
        _rule(
            "column_values_to_be_between",
            column="v",
            max_value={"$PARAMETER": "run_end"},
            strict_max=True,
        ),
        [True, False],
        id="between-timestamp-parameter",
    ),
    pytest.param(
        "v string",
        [("13800138000",), ("123",), (None,)],
        _rule("column_values_to_match_regex", column="v", regex=r"^1[3-9]\d{9}$"),
        [True, False, True],
        id="regex",
    ),
    pytest.param(
        "v string",
        [("ok",), ("test-1",), (None,)],
        _rule("column_values_to_not_match_regex", column="v", regex="^test"),
        [True, False, True],
        id="not_regex",
    ),
    pytest.param(
        "v string",
        [("a",), ("a",), ("b",), (None,), (None,)],
        _rule("column_values_to_be_unique", column="v"),
        [False, False, True, True, True],
        id="unique-nulls-pass",
    ),
    pytest.param(
        "a string, b int",
        [("x", 1), ("x", 1), ("x", 2), ("x", None), ("x", None), (None, None), (None, None)],
        _rule("compound_columns_to_be_unique", column_list=["a", "b"]),
        [False, False, True, False, False, True, True],
        id="compound-unique",
    ),
    pytest.param(
        "a string, b int",
        [("x", None), ("x", None), ("x", 1), ("x", 1)],
        _rule(
            "compound_columns_to_be_unique",
            column_list=["a", "b"],
            ignore_row_if="any_value_is_missing",
        ),
        [True, True, False, False],
        id="compound-unique-any-missing",
    ),
    pytest.param(
        "v string, channel string",
        [("X", "TMALL"), ("X", "JD"), ("PAID", "TMALL"), ("X", None)],
        _rule(
            "column_values_to_be_in_set",
            column="v",
            value_set=["PAID"],
            row_condition="channel = 'TMALL'",
            condition_parser="spark",
        ),
        [False, True, True, True],
        id="row-condition",
    ),
]


@pytest.mark.parametrize(("ddl", "rows", "entry", "expected"), CASES)
def test_row_level_predicate(spark, ddl, rows, entry, expected):
    parameters = {"run_date": "2026-03-02", "run_end": "2026-03-03T00:00:00"}
    assert _flags(spark, ddl, rows, entry, parameters) == expected


def test_reference_predicate_joins_distinct_keys_and_keeps_every_row(spark):
    stores = spark.createDataFrame([("S01",), ("S01",), ("S02",), (None,)], "code string")
    entry = _rule(
        "column_values_to_be_in_reference",
        column="store",
        reference="master.stores",
        reference_column="code",
    )
    rows = [("S01",), ("S99",), (None,), ("S02",)]
    flags = _flags(spark, "store string", rows, entry, references={"master.stores": stores})
    assert flags == [True, False, True, True]


def test_reasons_describe_the_rule_or_use_the_suite_description():
    between = _rule("column_values_to_be_between", column="v", min_value=0, strict_max=True)
    between["kwargs"]["max_value"] = 10
    assert reason(_check(between)) == "value outside [0.0, 10.0)"
    described = {**_rule("column_values_to_not_be_null", column="v"), "description": "必填"}
    assert reason(_check(described)) == "必填"


def test_bounds_of_types_that_cannot_be_compared_are_a_clear_error(spark):
    """Before: a date minimum against a datetime run-time maximum raised Python's bare
    TypeError (can't compare datetime.datetime to datetime.date), past the gate's GateError."""
    entry = _rule(
        "column_values_to_be_between",
        column="d",
        min_value="2020-01-01",
        max_value={"$PARAMETER": "limit"},
    )
    check = _check(entry, {"limit": datetime(2026, 3, 1, 12)})
    df = spark.createDataFrame([(date(2026, 3, 1),)], "d date")
    with pytest.raises(ValueError, match="cannot be compared"):
        annotate(df, [check], {})
