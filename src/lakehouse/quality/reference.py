"""Referential integrity as a GX expectation: `expect_column_values_to_be_in_reference`.

GX validates one batch; an expectation that a column's values exist in *another* data set
(order_lines.order_key in orders, sku_id in products) has no core expectation, and
`expect_column_values_to_be_in_set` would put the whole key set into the suite. So the rule is a
custom expectation registered with GX (subclassing is GX's own extension point): its kwargs name
the reference by a label (`"reference": "silver.orders"`) and the reference's column; the caller
hands the gate a DataFrame for each label. GX computes the rule itself, with an anti-join, so its
verdict is an independent check of the Spark predicate the gate splits rows with.

Importing this module registers the expectation and its metric with GX.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

from great_expectations.compatibility.pydantic import StrictStr
from great_expectations.core.metric_domain_types import MetricDomainTypes
from great_expectations.execution_engine import SparkDFExecutionEngine
from great_expectations.expectations.expectation import ColumnAggregateExpectation
from great_expectations.expectations.metrics.column_aggregate_metric_provider import (
    ColumnAggregateMetricProvider,
)
from great_expectations.expectations.metrics.metric_provider import metric_value
from great_expectations.expectations.model_field_types import MostlyField
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

REFERENCE_TYPE = "expect_column_values_to_be_in_reference"
METRIC = "column_values.lakehouse_not_in_reference"
PARTIAL_UNEXPECTED = 20

# The reference frames of the validation running now. GX resolves metrics on the caller's thread
# but offers no way to hand a metric a DataFrame, so the gate installs them here for the length
# of one validation; the lock keeps two gates in two threads from seeing each other's frames.
_lock = threading.RLock()
_frames: dict[str, DataFrame] = {}


@contextmanager
def references_installed(frames: Mapping[str, DataFrame]) -> Iterator[None]:
    """Make `frames` visible to the reference metric while GX validates."""
    with _lock:
        previous = dict(_frames)
        _frames.clear()
        _frames.update(frames)
        try:
            yield
        finally:
            _frames.clear()
            _frames.update(previous)


def reference_frame(name: str) -> DataFrame:
    try:
        return _frames[name]
    except KeyError:
        raise LookupError(
            f"no reference data set {name!r} was passed to the gate (references={{...}})"
        ) from None


def missing_from_reference(
    values: DataFrame, column: str, reference: DataFrame, reference_column: str
) -> DataFrame:
    """`values` with a boolean `_dq_in_reference`: null when `column` is null.

    The reference is reduced to its distinct keys first, so the left join keeps exactly the
    rows of `values`.
    """
    keys = (
        reference.select(F.col(reference_column).alias("_dq_ref_key"))
        .where(F.col("_dq_ref_key").isNotNull())
        .distinct()
        .withColumn("_dq_ref_hit", F.lit(True))
    )
    joined = values.join(keys, F.col(column) == F.col("_dq_ref_key"), "left")
    found = F.when(F.col(column).isNull(), F.lit(None)).otherwise(F.col("_dq_ref_hit").isNotNull())
    return joined.withColumn("_dq_in_reference", found).drop("_dq_ref_key", "_dq_ref_hit")


class ColumnValuesNotInReference(ColumnAggregateMetricProvider):
    """Counts of a column's values, and of those missing from the reference, in one pass."""

    metric_name = METRIC
    value_keys = ("reference", "reference_column")

    @metric_value(engine=SparkDFExecutionEngine)
    def _spark(
        cls,
        execution_engine: SparkDFExecutionEngine,
        metric_domain_kwargs: dict,
        metric_value_kwargs: dict,
        **kwargs: Any,
    ) -> dict[str, Any]:
        df, _, accessor = execution_engine.get_compute_domain(
            metric_domain_kwargs, MetricDomainTypes.COLUMN
        )
        column = accessor["column"]
        result_format = (kwargs.get("runtime_configuration") or {}).get("result_format")
        examples = PARTIAL_UNEXPECTED
        if isinstance(result_format, dict):
            examples = int(result_format.get("partial_unexpected_count", examples))
        reference_column = metric_value_kwargs.get("reference_column") or column
        reference = reference_frame(metric_value_kwargs["reference"])
        checked = missing_from_reference(
            df.select(F.col(column).alias("_dq_value")),
            "_dq_value",
            reference,
            reference_column,
        ).persist()
        try:
            counts = checked.agg(
                F.count(F.lit(1)).alias("element_count"),
                F.count("_dq_value").alias("nonnull_count"),
                F.count(F.when(~F.col("_dq_in_reference"), 1)).alias("unexpected_count"),
            ).first()
            samples = (
                [
                    row[0]
                    for row in checked.where(~F.col("_dq_in_reference"))
                    .select("_dq_value")
                    .limit(examples)
                    .collect()
                ]
                if examples and counts["unexpected_count"]
                else []
            )
        finally:
            checked.unpersist()
        return {**counts.asDict(), "partial_unexpected_list": samples}


class ExpectColumnValuesToBeInReference(ColumnAggregateExpectation):
    """Expect each non-null value of `column` to exist in `reference_column` of `reference`.

    `reference` is a label the caller maps to a DataFrame (`run_gate(references=...)`);
    `reference_column` defaults to `column`. Nulls pass, as in GX's own map expectations.
    """

    reference: StrictStr
    reference_column: StrictStr | None = None
    mostly: MostlyField = 1

    metric_dependencies: ClassVar[tuple[str, ...]] = (METRIC,)
    success_keys: ClassVar[tuple[str, ...]] = ("reference", "reference_column", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column", "reference", "reference_column")
    library_metadata: ClassVar[dict[str, Any]] = {
        "maturity": "experimental",
        "tags": ["lakehouse", "referential integrity"],
        "contributors": ["lakehouse"],
        "requirements": [],
    }

    def _validate(
        self,
        metrics: dict,
        runtime_configuration: dict | None = None,
        execution_engine: Any = None,
    ) -> dict[str, Any]:
        found = metrics[METRIC]
        nonnull, unexpected = found["nonnull_count"], found["unexpected_count"]
        element_count = found["element_count"]
        success = nonnull == 0 or (nonnull - unexpected) / nonnull >= self.mostly
        return {
            "success": success,
            "result": {
                "element_count": element_count,
                "unexpected_count": unexpected,
                "unexpected_percent": 100.0 * unexpected / nonnull if nonnull else 0.0,
                "missing_count": element_count - nonnull,
                "partial_unexpected_list": found["partial_unexpected_list"],
            },
        }
