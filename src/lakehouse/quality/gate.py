"""Run a gate: split good from quarantined rows in Spark, judge the batch, document it.

One pass: the input is projected once with one boolean flag column per row-level rule and
persisted; the good rows, the quarantine rows and the verdicts all read that cache. Row-level
rules are judged from that pass (one aggregation: unexpected, element and non-null counts per
rule, then GX's own `mostly` arithmetic and result format), so their rows are not scanned a
second time by GX's metric graph; GX validates the table-level rules (row counts, sums, column
pairs, anything else a suite names). Both kinds end in one GX validation result for data docs.
The caller writes `good` and `quarantined` and then releases the cache (`with run_gate(...) as
outcome:` or `outcome.release()`); `raise_if_failed` releases it before raising.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import reduce
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, StringType, StructField, StructType

from lakehouse.config import ConfigError
from lakehouse.quality import reference as ref
from lakehouse.quality.policy import (
    Policy,
    QualitySettings,
    load_quality_settings,
    quality_settings,
    resolve_policies,
)
from lakehouse.quality.predicates import (
    COMPOUND_UNIQUE,
    NOT_NULL,
    UNIQUE,
    Check,
    annotate,
    applies,
    considered,
    reason,
    summary,
    value_text,
)
from lakehouse.quality.suite import Suite, load_suite, rule_columns
from lakehouse.runtime import JobError
from lakehouse.spark import small_frame

log = logging.getLogger(__name__)

DATASOURCE = "lakehouse"
QUARANTINE_SCHEMA = StructType(
    [
        StructField("table", StringType(), True),
        StructField("record_key", StringType(), True),
        StructField("expectation", StringType(), True),
        StructField("rule", StringType(), True),
        StructField("column", StringType(), True),
        StructField("value", StringType(), True),
        StructField("reason", StringType(), True),
        StructField("record", StringType(), True),
        StructField("run_id", StringType(), True),
        StructField("run_date", DateType(), True),
    ]
)


class GateError(ValueError):
    """The gate cannot run as called: a parameter, reference or column is missing."""


class GateFailed(JobError):
    """A fail-policy expectation did not pass: the caller must commit nothing."""


@dataclass(frozen=True)
class RuleResult:
    """One expectation's verdict: GX's judgement plus the gate's own row count."""

    name: str
    type: str
    columns: tuple[str, ...]
    row_level: bool
    policy: Policy
    success: bool
    rule: str  # type(kwargs) as validated, parameters substituted
    observed_value: Any = None
    unexpected_count: int | None = None
    element_count: int | None = None
    unexpected_percent: float | None = None
    partial_unexpected: tuple[Any, ...] = ()
    failing_rows: int | None = None  # rows the Spark predicate flags (row-level rules)
    exception: str | None = None

    def describe(self) -> str:
        if self.exception:
            return f"{self.name}: {self.rule} raised {self.exception}"
        if self.row_level or self.unexpected_count is not None:
            examples = ", ".join(str(v) for v in self.partial_unexpected[:5])
            return (
                f"{self.name}: {self.rule}: {self.unexpected_count} unexpected of "
                f"{self.element_count} rows" + (f" (e.g. {examples})" if examples else "")
            )
        return f"{self.name}: {self.rule}: observed {self.observed_value!r}"


@dataclass
class GateOutcome:
    """What a gate decided. `good`/`quarantined` are lazy and read the gate's cache."""

    table: str
    run_id: str
    run_date: date
    good: DataFrame
    quarantined: DataFrame
    results: list[RuleResult]
    checked_at: datetime
    settings: QualitySettings
    validation: Any = None  # GX's ExpectationSuiteValidationResult, for data docs
    docs_url: str | None = None  # set by record_results when data docs were built
    _cached: DataFrame | None = field(default=None, repr=False)

    @property
    def failed(self) -> list[RuleResult]:
        """Fail-policy rules that did not pass."""
        return [r for r in self.results if r.policy == "fail" and not r.success]

    @property
    def warnings(self) -> list[RuleResult]:
        return [r for r in self.results if r.policy == "warn" and not r.success]

    @property
    def passed(self) -> bool:
        return not self.failed

    def release(self) -> None:
        """Drop the gate's cache; call after `good` and `quarantined` are written."""
        if self._cached is not None:
            self._cached.unpersist()
            self._cached = None

    def __enter__(self) -> GateOutcome:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def failure_message(outcome: GateOutcome) -> str:
    lines = [f"quality gate {outcome.table} failed ({len(outcome.failed)} rule(s)):"]
    lines += [f"  - {r.describe()}" for r in outcome.failed]
    return "\n".join(lines)


def raise_if_failed(outcome: GateOutcome) -> None:
    """Raise GateFailed (after releasing the cache) when a fail-policy rule did not pass."""
    if outcome.passed:
        return
    outcome.release()
    raise GateFailed(failure_message(outcome))


# --- GX ---------------------------------------------------------------------------------------

_gx_lock = threading.RLock()
_gx_context: Any = None
_gx_session: SparkSession | None = None


def gx_context() -> Any:
    """One ephemeral GX context per process, with a Spark datasource built on the active session.

    The datasource gets no `spark_config` (GX would apply it to, or restart, the session) and
    `persist=False` (the gate caches its input itself and releases it; GX would persist every
    batch and never unpersist).
    """
    global _gx_context, _gx_session
    with _gx_lock:
        active = SparkSession.getActiveSession()
        if _gx_context is None or (active is not None and active is not _gx_session):
            # A new session (the old one stopped) needs a new datasource: GX caches the engine.
            import great_expectations as gx

            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = {"globally": False}
            context.data_sources.add_spark(name=DATASOURCE, persist=False)
            _gx_context, _gx_session = context, active
        return _gx_context


def _batch_definition(asset_name: str) -> Any:
    datasource = gx_context().data_sources.get(DATASOURCE)
    try:
        asset = datasource.get_asset(asset_name)
    except LookupError:
        asset = datasource.add_dataframe_asset(name=asset_name)
    try:
        return asset.get_batch_definition("whole")
    except (KeyError, LookupError):
        return asset.add_batch_definition_whole_dataframe("whole")


def validate_with_gx(
    df: DataFrame,
    suite: Suite,
    parameters: Mapping[str, Any],
    references: Mapping[str, DataFrame],
    examples: int = 20,
    rules: Sequence[str] | None = None,
) -> Any:
    """GX's verdict on the whole DataFrame with the suite as written (only `rules`, by name,
    when given).

    SUMMARY: counts and up to `examples` failing values per expectation, never row lists.
    """
    with _gx_lock:
        batch = _batch_definition(suite.name).get_batch(batch_parameters={"dataframe": df})
        with ref.references_installed(references):
            return batch.validate(
                suite.to_gx(rules),
                expectation_parameters=dict(parameters),
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": examples},
            )


# --- the gate ---------------------------------------------------------------------------------


def _settings(policies: QualitySettings | Mapping[str, Any] | None) -> QualitySettings:
    if policies is None:
        return load_quality_settings()
    if isinstance(policies, QualitySettings):
        return policies
    return quality_settings(dict(policies), "policies passed to run_gate")


def _check_inputs(
    df: DataFrame,
    suite: Suite,
    key_columns: Sequence[str],
    references: Mapping[str, DataFrame],
) -> None:
    present = set(df.columns)
    missing_keys = [c for c in key_columns if c not in present]
    if missing_keys:
        raise GateError(f"key columns {missing_keys} are not in the DataFrame for {suite.name}")
    missing = sorted(
        {
            c
            for rule in suite.rules
            if rule.type != "expect_column_to_exist"  # GX's own verdict covers that one
            for c in rule.columns
            if c not in present
        }
    )
    if missing:
        raise GateError(
            f"suite {suite.name} checks columns the DataFrame does not have: {', '.join(missing)}"
        )
    absent = sorted(suite.references - set(references))
    if absent:
        raise GateError(
            f"suite {suite.name} checks references {', '.join(absent)}: pass a DataFrame for each "
            "in references={...}"
        )
    for rule in suite.rules:
        if rule.type == ref.REFERENCE_TYPE:
            kwargs = rule.config.kwargs
            column = kwargs.get("reference_column") or kwargs["column"]
            frame = references[kwargs["reference"]]
            if column not in frame.columns:
                raise GateError(
                    f"{suite.name} {rule.name}: reference {kwargs['reference']} has no column "
                    f"{column!r}"
                )


def _plain(value: Any) -> Any:
    """GX results hold numpy scalars and dates; keep what JSON and Spark can take."""
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return str(value)


def _number(value: Any, kind: type) -> Any:
    """GX may hand back numpy scalars; Spark rows want plain ints and floats."""
    return None if value is None else kind(value)


def _exception(info: Mapping[str, Any] | None) -> str | None:
    """GX's error message for an expectation it could not evaluate.

    `exception_info` is either one record or, when metrics failed, records keyed by metric id.
    """
    if not info:
        return None
    records = [info] if "raised_exception" in info else list(info.values())
    messages = [
        " ".join(str(r.get("exception_message")).split())[:500]
        for r in records
        if isinstance(r, Mapping) and r.get("raised_exception")
    ]
    return "; ".join(messages) or None


def _quarantine(
    annotated: DataFrame,
    checks: Sequence[Check],
    table: str,
    key_columns: Sequence[str],
    input_columns: Sequence[str],
    run_id: str,
    run_date: date,
) -> DataFrame:
    """One row per (failing row, failed quarantine rule), with the row as JSON for replay."""
    schema = QUARANTINE_SCHEMA
    if not checks:
        return small_frame(annotated.sparkSession, [], schema)
    failures = F.array(
        *[
            F.when(
                ~F.col(check.flag),
                F.struct(
                    F.lit(check.name).alias("expectation"),
                    F.lit(summary(check.expectation)).alias("rule"),
                    F.lit(",".join(check.columns)).alias("column"),
                    value_text(check).alias("value"),
                    F.lit(reason(check)).alias("reason"),
                ),
            )
            for check in checks
        ]
    )
    key = (
        F.concat_ws("|", *[F.coalesce(F.col(c).cast("string"), F.lit("null")) for c in key_columns])
        if key_columns
        else F.lit(None).cast("string")
    )
    any_failed = reduce(lambda a, b: a | b, [~F.col(c.flag) for c in checks])
    failed = annotated.where(any_failed).select(
        key.alias("record_key"),
        F.to_json(
            F.struct(*[F.col(c) for c in input_columns]), {"ignoreNullFields": "false"}
        ).alias("record"),
        F.explode(F.filter(failures, lambda x: x.isNotNull())).alias("f"),
    )
    return failed.select(
        F.lit(table).alias("table"),
        "record_key",
        "f.expectation",
        "f.rule",
        "f.column",
        "f.value",
        "f.reason",
        "record",
        F.lit(run_id).alias("run_id"),
        F.lit(run_date).cast("date").alias("run_date"),
    ).to(schema)


# Up to this many failing rows, every rule's examples come from one collect of them; above it,
# one `limit` query per failing rule (each may run several Spark jobs as it scans further).
EXAMPLE_ROWS_COLLECTED = 10_000


def _examples(
    annotated: DataFrame, checks: Sequence[Check], counts: Mapping[str, Any], examples: int
) -> dict[str, list[Any]]:
    """Each failing rule's first `examples` failing values, in the frame's row order (what a
    `limit` query per rule returns), by flag column."""
    failing = [c for c in checks if counts[f"{c.flag}_unexpected"]]
    if not failing or examples <= 0:
        return {}

    def values(c: Check, rows: list[Any]) -> list[Any]:
        if c.type == COMPOUND_UNIQUE:
            return [{col: row[col] for col in c.columns} for row in rows]
        return [row[c.columns[0]] for row in rows]

    if counts["_dq_failing_rows"] > EXAMPLE_ROWS_COLLECTED:
        return {
            c.flag: values(
                c, annotated.where(~F.col(c.flag)).select(*c.columns).limit(examples).collect()
            )
            for c in failing
        }
    columns = list(dict.fromkeys(col for c in failing for col in (c.flag, *c.columns)))
    rows = (
        annotated.where(reduce(lambda a, b: a | b, [~F.col(c.flag) for c in failing]))
        .select(*columns)
        .collect()
    )
    # `is False`: a null flag is not a failure, as `where(~flag)` has it.
    return {c.flag: values(c, [r for r in rows if r[c.flag] is False][:examples]) for c in failing}


def _row_level_results(annotated: DataFrame, checks: Sequence[Check], examples: int) -> list[Any]:
    """GX validation results for the row-level rules, from the gate's flags instead of GX's
    metric graph: one aggregation for every rule's counts, one collect of the failing rows for
    every failing rule's examples (`_examples`), then GX's own `mostly` test and SUMMARY
    format. The gate's tests compare these with GX validating the same rules itself."""
    from great_expectations.core.expectation_validation_result import (
        ExpectationValidationResult,
    )
    from great_expectations.expectations.expectation import _format_map_output, _mostly_success
    from great_expectations.expectations.expectation_configuration import parse_result_format

    if not checks:
        return []
    aggregates = []
    for c in checks:
        aggregates += [
            F.count(F.when(~F.col(c.flag), 1)).alias(f"{c.flag}_unexpected"),
            F.count(F.when(applies(c), 1)).alias(f"{c.flag}_elements"),
            F.count(F.when(considered(c), 1)).alias(f"{c.flag}_considered"),
        ]
    any_failed = reduce(lambda a, b: a | b, [~F.col(c.flag) for c in checks])
    aggregates.append(F.count(F.when(any_failed, 1)).alias("_dq_failing_rows"))
    counts = annotated.agg(*aggregates).first().asDict()
    examples_of = _examples(annotated, checks, counts, examples)
    result_format = parse_result_format(
        {"result_format": "SUMMARY", "partial_unexpected_count": examples}
    )
    results = []
    for c in checks:
        unexpected_count = int(counts[f"{c.flag}_unexpected"])
        element_count = int(counts[f"{c.flag}_elements"])
        nonnull_count = int(counts[f"{c.flag}_considered"])
        mostly = c.expectation.mostly
        # GX's denominators: not_be_null takes every row and reports no missing count;
        # compound uniqueness takes the rows ignore_row_if keeps; the rest the non-null rows.
        denominator = element_count if c.type == NOT_NULL else nonnull_count
        success = (
            True
            if element_count == 0 or denominator == 0
            else _mostly_success(denominator, unexpected_count, mostly)
        )
        values = examples_of.get(c.flag, [])
        result = _format_map_output(
            result_format=result_format,
            success=success,
            element_count=element_count,
            nonnull_count=None if c.type == NOT_NULL else nonnull_count,
            # GX sums a map rule's flags (no row in its domain: null, not 0) but counts the
            # duplicates of a uniqueness rule.
            unexpected_count=(
                None
                if element_count == 0 and c.type not in (UNIQUE, COMPOUND_UNIQUE)
                else unexpected_count
            ),
            unexpected_list=values,
        )
        results.append(
            ExpectationValidationResult(
                success=success,
                expectation_config=c.expectation.configuration,
                result=result["result"],
                exception_info={
                    "raised_exception": False,
                    "exception_traceback": None,
                    "exception_message": None,
                },
            )
        )
    return results


def _suite_validation(suite: Suite, results: Sequence[Any], gx_validation: Any) -> Any:
    """One GX suite validation result holding every rule's result, for data docs."""
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
    )

    successful = sum(1 for r in results if r.success)
    meta = dict(gx_validation.meta) if gx_validation is not None else {}
    meta.setdefault("great_expectations_version", gx.__version__)
    meta.setdefault("active_batch_definition", {"data_asset_name": suite.name})
    return ExpectationSuiteValidationResult(
        results=list(results),
        success=successful == len(results),
        suite_name=suite.name,
        statistics={
            "evaluated_expectations": len(results),
            "successful_expectations": successful,
            "unsuccessful_expectations": len(results) - successful,
            "success_percent": 100.0 * successful / len(results) if results else None,
        },
        meta=meta,
        batch_id=getattr(gx_validation, "batch_id", None),
    )


def _results(
    suite: Suite,
    policies: Mapping[str, Policy],
    validation: Any,
    rules_as_run: Mapping[str, str],
    failing_rows: Mapping[str, int],
) -> list[RuleResult]:
    results: list[RuleResult] = []
    # GX returns results in its own order (grouped by column): match them by configuration.
    by_rule = {}
    for gx_result in validation.results:
        config = gx_result.expectation_config
        name = (config.meta or {}).get("name")
        if name is None:  # the same key Rule.key derives
            columns = ",".join(rule_columns(config.kwargs))
            name = f"{config.type}:{columns}" if columns else config.type
        by_rule[name] = gx_result
    for rule in suite.rules:
        gx_result = by_rule.get(rule.name)
        if gx_result is None:
            raise RuntimeError(f"GX returned no result for {suite.name} {rule.name}")
        exception = _exception(gx_result.exception_info)
        res = gx_result.result or {}
        results.append(
            RuleResult(
                name=rule.name,
                type=rule.type,
                columns=rule.columns,
                row_level=rule.row_level,
                policy=policies[rule.name],
                success=bool(gx_result.success) and exception is None,
                rule=rules_as_run[rule.name],
                observed_value=_plain(res.get("observed_value")),
                unexpected_count=_number(res.get("unexpected_count"), int),
                element_count=_number(res.get("element_count"), int),
                unexpected_percent=_number(res.get("unexpected_percent"), float),
                partial_unexpected=tuple(_plain(res.get("partial_unexpected_list") or [])),
                failing_rows=failing_rows.get(rule.name),
                exception=exception,
            )
        )
    return results


def run_gate(
    df: DataFrame,
    suite_name: str | Suite,
    *,
    key_columns: Sequence[str],
    run_id: str,
    run_date: date,
    policies: QualitySettings | Mapping[str, Any] | None = None,
    parameters: Mapping[str, Any] | None = None,
    references: Mapping[str, DataFrame] | None = None,
) -> GateOutcome:
    """Gate `df` with suite `suite_name` (`<layer>.<table>`, or a loaded Suite).

    `parameters` fill the suite's `{"$PARAMETER": name}` entries (the suite file's
    `suite_parameters` are defaults); `references` maps each reference label of
    `expect_column_values_to_be_in_reference` to a DataFrame; `policies` defaults to
    conf/quality.yml. Raises GateError / ConfigError before any Spark work when the call
    does not fit the suite; never raises for bad data (see `raise_if_failed`).
    """
    suite = suite_name if isinstance(suite_name, Suite) else load_suite(suite_name)
    settings = _settings(policies)
    policy_of = resolve_policies(settings, suite)
    references = dict(references or {})
    params = {**suite.suite_parameters, **(parameters or {})}
    _check_inputs(df, suite, key_columns, references)

    checks: list[Check] = []
    rules_as_run: dict[str, str] = {}
    for i, rule in enumerate(suite.rules):
        try:
            expectation = rule.configured(params)
        except Exception as exc:
            raise GateError(f"{suite.name} {rule.name}: {' '.join(str(exc).split())}") from None
        rules_as_run[rule.name] = summary(expectation)
        if rule.row_level:
            checks.append(Check(rule.name, f"_dq_ok_{i}", expectation))
    try:
        annotated_lazy = annotate(df, checks, references)
    except ValueError as exc:
        raise GateError(f"{suite.name}: {exc}") from None

    input_columns = list(df.columns)
    annotated = annotated_lazy.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        row_level = _row_level_results(annotated, checks, settings.unexpected_examples)
        table_level = [rule.name for rule in suite.rules if not rule.row_level]
        gx_validation = (
            validate_with_gx(
                annotated.select(*input_columns),
                suite,
                params,
                references,
                settings.unexpected_examples,
                rules=table_level,
            )
            if table_level
            else None
        )
        validation = _suite_validation(
            suite, row_level + list(gx_validation.results if gx_validation else []), gx_validation
        )
        failing_rows = {
            check.name: int(result.result["unexpected_count"] or 0)
            for check, result in zip(checks, row_level, strict=True)
        }
        results = _results(suite, policy_of, validation, rules_as_run, failing_rows)
    except BaseException:
        annotated.unpersist()
        raise

    quarantine_checks = [c for c in checks if policy_of[c.name] == "quarantine"]
    keep = reduce(lambda a, b: a & b, [F.col(c.flag) for c in quarantine_checks], F.lit(True))
    good = annotated.where(keep).select(*input_columns)
    quarantined = _quarantine(
        annotated, quarantine_checks, suite.name, key_columns, input_columns, run_id, run_date
    )
    outcome = GateOutcome(
        table=suite.name,
        run_id=run_id,
        run_date=run_date,
        good=good,
        quarantined=quarantined,
        results=results,
        checked_at=datetime.now(UTC),
        settings=settings,
        validation=validation,
        _cached=annotated,
    )
    for warning in outcome.warnings:
        log.warning("quality gate %s: %s", suite.name, warning.describe())
    return outcome


__all__ = [
    "QUARANTINE_SCHEMA",
    "ConfigError",
    "GateError",
    "GateFailed",
    "GateOutcome",
    "RuleResult",
    "raise_if_failed",
    "run_gate",
]
