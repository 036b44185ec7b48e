"""Where a gate's verdict is kept: `ops.dq_results` (one row per expectation) and GX data docs."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from functools import reduce
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import (
    BooleanType,
    DateType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from lakehouse.quality.gate import GateOutcome, _gx_lock, gx_context
from lakehouse.spark import local_path, small_frame
from lakehouse.tables import Tables, in_few_files

log = logging.getLogger(__name__)

DQ_RESULTS = ("ops", "dq_results")
DQ_RESULTS_SCHEMA = StructType(
    [
        StructField("run_id", StringType(), False),
        StructField("run_date", DateType(), False),
        StructField("table", StringType(), False),
        StructField("expectation", StringType(), False),
        StructField("expectation_type", StringType(), False),
        StructField("column", StringType(), True),
        StructField("policy", StringType(), False),
        StructField("success", BooleanType(), False),
        StructField("observed_value", StringType(), True),
        StructField("unexpected_count", LongType(), True),
        StructField("element_count", LongType(), True),
        StructField("unexpected_percent", DoubleType(), True),
        StructField("unexpected_examples", StringType(), True),
        StructField("failing_rows", LongType(), True),
        StructField("rule", StringType(), False),
        StructField("exception", StringType(), True),
        StructField("checked_at", TimestampType(), False),
    ]
)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


def results_frame(spark: SparkSession, outcome: GateOutcome) -> DataFrame:
    rows = [
        (
            outcome.run_id,
            outcome.run_date,
            outcome.table,
            r.name,
            r.type,
            ",".join(r.columns) or None,
            r.policy,
            r.success,
            _json(r.observed_value),
            r.unexpected_count,
            r.element_count,
            None if r.unexpected_percent is None else float(r.unexpected_percent),
            _json(list(r.partial_unexpected)) if r.partial_unexpected else None,
            r.failing_rows,
            r.rule,
            r.exception,
            outcome.checked_at,
        )
        for r in outcome.results
    ]
    return small_frame(spark, rows, DQ_RESULTS_SCHEMA)


def build_data_docs(outcome: GateOutcome, docs_dir: str) -> str | None:
    """Render the gate's GX validation as HTML under `docs_dir`; returns the page's URL."""
    return build_data_docs_of([outcome], docs_dir).get(id(outcome))


def build_data_docs_of(outcomes: list[GateOutcome], docs_dir: str) -> dict[int, str]:
    """Render the gates' GX validations under `docs_dir` in one site build (one index page
    however many gates: a job's gates are rendered together when it ends); sets and returns
    each outcome's page URL, keyed by `id(outcome)`.

    The ephemeral context keeps validation results in memory, so the index page lists this
    process's gates; each validation page stays on disk under validations/<suite>/<run_id>/.
    """
    folder = local_path(docs_dir)
    if folder is None:
        log.warning("data docs skipped: %s is not a local folder", docs_dir)
        return {}
    outcomes = [o for o in outcomes if o.validation is not None]
    if not outcomes:
        return {}
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    site = "lakehouse_" + hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:10]
    urls: dict[int, str] = {}
    with _gx_lock:
        context = gx_context()
        if site not in context.list_data_docs_sites():
            context.add_data_docs_site(
                site_name=site,
                site_config={
                    "class_name": "SiteBuilder",
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(folder.resolve()),
                    },
                },
            )
        identifiers = []
        for outcome in outcomes:
            identifier = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=outcome.table),
                run_id=RunIdentifier(
                    run_name=outcome.run_id, run_time=outcome.checked_at.replace(tzinfo=UTC)
                ),
                batch_identifier=outcome.table,
            )
            context.validation_results_store.set(identifier, outcome.validation)
            identifiers.append(identifier)
        context.build_data_docs(site_names=[site], resource_identifiers=identifiers)
        for outcome, identifier in zip(outcomes, identifiers, strict=True):
            found = context.get_docs_sites_urls(resource_identifier=identifier, site_names=[site])
            if found:
                outcome.docs_url = urls[id(outcome)] = found[0]["site_url"]
    return urls


# Inside a job (runtime.run_job opens `batched_results`) the gates' rows wait here and are
# appended once when the job ends, failed or not: one ops.dq_results commit per job instead of
# one per gate (a commit costs about a second on small data, and every tenth a checkpoint).
# Their data docs wait too and are rendered in one site build (one index page per job, not one
# per gate: the index lists every validation of the process, so its cost grows with the run).
_batch: list[tuple[Tables, DataFrame]] | None = None
_docs_batch: list[tuple[GateOutcome, str]] | None = None


@contextmanager
def batched_results() -> Iterator[None]:
    """Hold every `record_results` of the block and append them in one commit at its end (also
    when the block raises, so a failed gate still leaves its evidence behind)."""
    global _batch, _docs_batch
    if _batch is not None:  # nested: the outer block writes
        yield
        return
    _batch, _docs_batch = [], []
    try:
        yield
    finally:
        pending, _batch = _batch, None
        docs, _docs_batch = _docs_batch, None
        try:
            _flush(pending)
        finally:
            _build_docs(docs)


def _flush(pending: list[tuple[Tables, DataFrame]]) -> None:
    by_warehouse: dict[str, tuple[Tables, list[DataFrame]]] = {}
    for tables, frame in pending:
        by_warehouse.setdefault(tables.warehouse, (tables, []))[1].append(frame)
    for tables, frames in by_warehouse.values():
        tables.append(in_few_files(reduce(DataFrame.unionByName, frames)), *DQ_RESULTS)


def _build_docs(pending: list[tuple[GateOutcome, str]]) -> None:
    by_dir: dict[str, list[GateOutcome]] = {}
    for outcome, docs_dir in pending:
        by_dir.setdefault(docs_dir, []).append(outcome)
    for docs_dir, outcomes in by_dir.items():
        try:
            build_data_docs_of(outcomes, docs_dir)
        except Exception:  # docs are a convenience: never fail a job over them
            log.warning("data docs under %s could not be built", docs_dir, exc_info=True)


def record_results(
    tables: Tables, outcome: GateOutcome, *, data_docs: bool | None = None
) -> int | None:
    """Append the outcome to ops.dq_results (and render data docs); returns the Delta version,
    or None inside `batched_results` (the append comes at the end of the block).

    Record before raising on a failed gate, so a failure leaves its evidence behind.
    `data_docs` overrides conf/quality.yml's `data_docs.enabled`; inside `batched_results` the
    page is rendered (and `outcome.docs_url` set) when the block ends.
    """
    frame = results_frame(tables.spark, outcome)
    if _batch is not None:
        _batch.append((tables, frame))
        version = None
    else:
        version = tables.append(in_few_files(frame), *DQ_RESULTS)
    if outcome.settings.data_docs.enabled if data_docs is None else data_docs:
        if _docs_batch is not None:
            _docs_batch.append((outcome, outcome.settings.docs_dir(tables.warehouse)))
            return version
        try:
            outcome.docs_url = build_data_docs(outcome, outcome.settings.docs_dir(tables.warehouse))
        except Exception:  # docs are a convenience: never fail a gate over them
            log.warning("data docs for %s could not be built", outcome.table, exc_info=True)
    return version
