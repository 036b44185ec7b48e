"""Row-level Spark predicates derived from the suite's own expectations.

GX judges a batch; it does not split it. To quarantine rows, each row-level expectation is
turned into a Spark Column from the *same* typed GX expectation (parameters substituted by GX),
mirroring the Spark condition GX's metric uses: GX counts a row as unexpected when
`row_condition AND column IS NOT NULL AND NOT expected` (nulls pass every rule but
not_be_null; a predicate that evaluates to NULL counts as expected), uniqueness is a count over a
window partitioned by the value, and compound uniqueness ignores the rows `ignore_row_if`
names. Written this way the gate's quarantine counts equal GX's unexpected counts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import reduce
from typing import Any

from great_expectations.expectations.expectation import Expectation
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.quality import reference as ref

NOT_NULL = "expect_column_values_to_not_be_null"
IN_SET = "expect_column_values_to_be_in_set"
NOT_IN_SET = "expect_column_values_to_not_be_in_set"
BETWEEN = "expect_column_values_to_be_between"
REGEX = "expect_column_values_to_match_regex"
NOT_REGEX = "expect_column_values_to_not_match_regex"
UNIQUE = "expect_column_values_to_be_unique"
COMPOUND_UNIQUE = "expect_compound_columns_to_be_unique"
IN_REFERENCE = ref.REFERENCE_TYPE

ROW_LEVEL_TYPES = frozenset(
    {NOT_NULL, IN_SET, NOT_IN_SET, BETWEEN, REGEX, NOT_REGEX, UNIQUE, COMPOUND_UNIQUE, IN_REFERENCE}
)
SUMMARY_SKIP = frozenset({"batch_id", "result_format", "catch_exceptions", "include_config"})


@dataclass(frozen=True)
class Check:
    """A row-level rule ready to evaluate: its typed expectation and the flag column it fills."""

    name: str
    flag: str  # boolean column: True when the row passes
    expectation: Expectation

    @property
    def type(self) -> str:
        return self.expectation.expectation_type

    @property
    def columns(self) -> tuple[str, ...]:
        exp = self.expectation
        if self.type == COMPOUND_UNIQUE:
            return tuple(exp.column_list)
        return (exp.column,)


def _lit(value: Any) -> Column:
    return F.lit(value)


def _between(exp: Expectation, column: Column) -> Column:
    low, high = exp.min_value, exp.max_value
    if low is None and high is None:
        raise ValueError("min_value and max_value cannot both be None")
    if low is not None and high is not None:
        try:
            inverted = low > high
        except TypeError:  # a date against a datetime, a number against text: a suite error
            raise ValueError(
                f"min_value {low!r} and max_value {high!r} cannot be compared "
                f"({type(low).__name__} against {type(high).__name__})"
            ) from None
        if inverted:
            raise ValueError(f"min_value {low} is greater than max_value {high}")
    conditions = []
    if low is not None:
        conditions.append(column > _lit(low) if exp.strict_min else column >= _lit(low))
    if high is not None:
        conditions.append(column < _lit(high) if exp.strict_max else column <= _lit(high))
    return reduce(lambda a, b: a & b, conditions)


def _in_set(exp: Expectation, column: Column) -> Column:
    if exp.value_set is None:
        return F.lit(True)  # GX: vacuously true
    return column.isin(list(exp.value_set))


# Expected-value conditions of the plain map rules (GX's `column_condition_partial`s).
EXPECTED: dict[str, Callable[[Expectation, Column], Column]] = {
    IN_SET: _in_set,
    NOT_IN_SET: lambda exp, column: ~column.isin(list(exp.value_set or [])),
    BETWEEN: _between,
    REGEX: lambda exp, column: column.rlike(exp.regex),
    NOT_REGEX: lambda exp, column: ~column.rlike(exp.regex),
}


def _applies(exp: Expectation) -> Column:
    """Rows the rule looks at: GX filters the batch with the Spark `row_condition` string."""
    condition = getattr(exp, "row_condition", None)
    if condition is None:
        return F.lit(True)
    # GX 1.24 wraps a Spark string condition in a PassThroughCondition.
    text = getattr(condition, "pass_through_filter", condition)
    if not isinstance(text, str):
        raise ValueError(f"row_condition {condition!r} is not a Spark SQL string")
    return F.coalesce(F.expr(text), F.lit(False))


def applies(check: Check) -> Column:
    """Rows in GX's `element_count`: those its row_condition keeps (all rows without one)."""
    return _applies(check.expectation)


def considered(check: Check) -> Column:
    """Rows GX's `mostly` and `unexpected_percent` are taken over: the non-null ones (every row
    for not_be_null; the rows `ignore_row_if` keeps for compound uniqueness)."""
    exp, kind = check.expectation, check.type
    applying = _applies(exp)
    if kind == COMPOUND_UNIQUE:
        missing = [F.col(c).isNull() for c in exp.column_list]
        if exp.ignore_row_if == "all_values_are_missing":
            return applying & ~reduce(lambda a, b: a & b, missing)
        if exp.ignore_row_if == "any_value_is_missing":
            return applying & ~reduce(lambda a, b: a | b, missing)
        return applying
    if kind == NOT_NULL:
        return applying
    return applying & F.col(exp.column).isNotNull()


def unexpected(check: Check, reference_hit: str | None = None) -> Column:
    """True when the row fails the rule, never NULL."""
    exp, kind = check.expectation, check.type
    applying = _applies(exp)
    if kind == COMPOUND_UNIQUE:
        columns = [F.col(c) for c in exp.column_list]
        counted = considered(check)
        count = F.count(F.when(counted, 1)).over(Window.partitionBy(*columns))
        failing = counted & (count > 1)
    else:
        column = F.col(exp.column)
        if kind == NOT_NULL:
            failing = applying & column.isNull()
        elif kind == UNIQUE:
            counted = considered(check)
            count = F.count(F.when(counted, 1)).over(Window.partitionBy(column))
            failing = counted & (count > 1)
        elif kind == IN_REFERENCE:
            if reference_hit is None:
                raise ValueError("a reference rule needs its joined reference column")
            failing = applying & column.isNotNull() & ~F.col(reference_hit)
        else:
            failing = applying & column.isNotNull() & ~EXPECTED[kind](exp, column)
    return F.coalesce(failing, F.lit(False))


def annotate(
    df: DataFrame, checks: Sequence[Check], references: Mapping[str, DataFrame]
) -> DataFrame:
    """`df` plus one boolean flag column per check (True = passes), in one projection.

    Reference rules are left joins with the reference's distinct keys (so the row count never
    changes); window rules add one shuffle each. Nothing is evaluated here.
    """
    hits: dict[str, str] = {}
    for check in checks:
        if check.type != IN_REFERENCE:
            continue
        exp = check.expectation
        hit = f"{check.flag}_ref"
        df = ref.missing_from_reference(
            df, exp.column, references[exp.reference], exp.reference_column or exp.column
        ).withColumnRenamed("_dq_in_reference", hit)
        hits[check.name] = hit
    flags = [(~unexpected(check, hits.get(check.name))).alias(check.flag) for check in checks]
    return df.select("*", *flags).drop(*hits.values())


def _short(value: Any, limit: int = 10) -> str:
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        shown = ", ".join(_short(v) for v in items[:limit])
        more = f", … {len(items) - limit} more" if len(items) > limit else ""
        return f"[{shown}{more}]"
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def summary(expectation: Expectation) -> str:
    """`type(k=v, ...)`: the rule as GX ran it, short enough for a quarantine row."""
    kwargs = expectation.configuration.kwargs
    parts = [f"{k}={_short(v)}" for k, v in kwargs.items() if k not in SUMMARY_SKIP]
    return f"{expectation.expectation_type}({', '.join(parts)})"


def reason(check: Check) -> str:
    """Why a row failed, in words; the suite's `description` wins when given."""
    exp, kind = check.expectation, check.type
    if exp.description:
        return str(exp.description)
    if kind == NOT_NULL:
        return "value is null"
    if kind == IN_SET:
        return f"value not in {_short(exp.value_set)}"
    if kind == NOT_IN_SET:
        return f"value in forbidden set {_short(exp.value_set)}"
    if kind == BETWEEN:
        low = "(" if exp.strict_min else "["
        high = ")" if exp.strict_max else "]"
        lo = "-∞" if exp.min_value is None else _short(exp.min_value)
        hi = "+∞" if exp.max_value is None else _short(exp.max_value)
        return f"value outside {low}{lo}, {hi}{high}"
    if kind == REGEX:
        return f"value does not match {exp.regex}"
    if kind == NOT_REGEX:
        return f"value matches {exp.regex}"
    if kind == UNIQUE:
        return "value occurs more than once"
    if kind == COMPOUND_UNIQUE:
        return f"({', '.join(exp.column_list)}) combination occurs more than once"
    return f"value not found in {exp.reference}.{exp.reference_column or exp.column}"


def value_text(check: Check) -> Column:
    """The failing value as a string: `a=1|b=x` for a compound rule, NULL for a null value."""
    if check.type == COMPOUND_UNIQUE:
        return F.concat_ws(
            "|",
            *[
                F.concat(F.lit(f"{c}="), F.coalesce(F.col(c).cast("string"), F.lit("null")))
                for c in check.expectation.column_list
            ],
        )
    return F.col(check.expectation.column).cast("string")
