"""Data-quality gates: GX suites from expectations/, row splits in Spark, ops.dq_results.

    outcome = run_gate(df, "silver.orders", key_columns=["order_key"], run_id=..., run_date=...)
    with outcome:
        record_results(tables, outcome)
        raise_if_failed(outcome)
        tables.replace_where(outcome.good, "silver", "orders", ...)
        tables.replace_where(outcome.quarantined, "silver", "quarantine", ...)

See docs/quality.md.
"""

from lakehouse.quality.gate import (
    QUARANTINE_SCHEMA,
    GateError,
    GateFailed,
    GateOutcome,
    RuleResult,
    gx_context,
    raise_if_failed,
    run_gate,
)
from lakehouse.quality.policy import (
    POLICIES,
    Policy,
    QualitySettings,
    load_quality_settings,
    quality_settings,
    resolve_policies,
)
from lakehouse.quality.reference import REFERENCE_TYPE, ExpectColumnValuesToBeInReference
from lakehouse.quality.results import (
    DQ_RESULTS,
    DQ_RESULTS_SCHEMA,
    build_data_docs,
    record_results,
)
from lakehouse.quality.suite import Rule, Suite, SuiteError, load_suite, parse_suite

__all__ = [
    "DQ_RESULTS",
    "DQ_RESULTS_SCHEMA",
    "POLICIES",
    "QUARANTINE_SCHEMA",
    "REFERENCE_TYPE",
    "ExpectColumnValuesToBeInReference",
    "GateError",
    "GateFailed",
    "GateOutcome",
    "Policy",
    "QualitySettings",
    "Rule",
    "RuleResult",
    "Suite",
    "SuiteError",
    "build_data_docs",
    "gx_context",
    "load_quality_settings",
    "load_suite",
    "parse_suite",
    "quality_settings",
    "raise_if_failed",
    "record_results",
    "resolve_policies",
    "run_gate",
]
