"""The bad-input corpus (tests/corpus/) through bronze and silver: every hand-made line ends in a
silver table or in a quarantine with its reason, no job fails, nothing vanishes, counts reconcile.

Why one run for all cases: a job costs seconds of fixed Spark and Delta work whatever the input,
so the corpus is laid over one generated landing zone (seed 7, scale 0.02) and run once; each case
then only reads what the run left. Two delivery dates: 2026-03-01 runs only the sales path (its
bronze jobs, silver.master, silver.sales) for the cases that need an earlier delivery (a file
delivered twice, a state change across days, an older state arriving late, a corrected file);
2026-03-02 runs every bronze and silver job.

silver.unmapped_rate_threshold is raised to 0.5 here: the generator forces one unknown SKU per
sales dataset on its first day, which on ~60 lines of scale 0.02 is above the configured 5 %.
The threshold itself is not under test; every unknown SKU line is still checked to be kept and
flagged.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyspark.sql import Row, SparkSession
from pyspark.sql import functions as F

from lakehouse.config import Paths, Settings, load_settings
from lakehouse.datagen import generate
from lakehouse.orchestrate import one_line
from lakehouse.registry import build_registry, in_order
from lakehouse.runtime import run_job
from lakehouse.tables import Tables

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
MANIFEST: dict[str, Any] = yaml.safe_load((CORPUS / "cases.yml").read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = MANIFEST["cases"]

D0, D = date(2026, 3, 1), date(2026, 3, 2)
SEED, SCALE = 7, 0.02
UNMAPPED_RATE = 0.5
# The earlier delivery only needs what silver.sales reads.
SALES_PATH = {
    "bronze.master",
    "bronze.tmall_orders",
    "bronze.tmall_order_items",
    "bronze.jd_orders",
    "bronze.mall_orders",
    "bronze.pos_sales",
    "silver.master",
    "silver.sales",
}
SALES_PATH_DATASETS = {
    "products",
    "stores",
    "sku_mapping",
    "tmall_orders",
    "tmall_order_items",
    "jd_orders",
    "mall_orders",
    "pos_sales",
}
SILVER_JOB_OF = {
    "tmall_orders": "silver.sales",
    "tmall_order_items": "silver.sales",
    "jd_orders": "silver.sales",
    "mall_orders": "silver.sales",
    "pos_sales": "silver.sales",
    "crm_members": "silver.members",
    "inventory": "silver.inventory",
    "master": "silver.master",
    "campaigns": "silver.campaigns",
}
SILVER_KEYS: dict[str, tuple[str, ...]] = {
    "orders": ("order_key",),
    "order_lines": ("order_key", "line_id"),
    "members": ("member_id",),
    "inventory_daily": ("snapshot_date", "location_code", "sku_id"),
    "products": ("sku_id",),
    "stores": ("store_code",),
    "sku_map": ("platform", "platform_sku_code"),
    "campaigns": ("campaign_id",),
    "campaign_touches": ("campaign_id", "member_id"),
}
# SCD2 histories: a case names the current version of a key.
CURRENT_ONLY = {"products", "stores"}
# The items of the contract's "Dirt that every delivery may carry"; each needs a case.
CONTRACT_DIRT = {
    "exact duplicate rows",
    "the same file delivered twice",
    "late records",
    "orders that change state across days",
    "refunds and returns",
    "rows with the wrong number of fields",
    "undecodable bytes",
    "invalid JSON",
    "negative amounts",
    "zero amounts",
    "absurd amounts",
    "negative quantities",
    "zero quantities",
    "absurd quantities",
    "dates in the future",
    "unknown SKU",
    "unknown store",
}
TEN_MIB = 10 * 1024 * 1024


def _ten_mib_lines() -> bytes:
    """Two 10 MiB JD lines: a valid order whose venderRemark (a field later drops carry) is
    10 MiB long, and the same kind of line cut short before its end."""
    order = {
        "orderId": 990302000134,
        "pin": "jd_corpus134",
        "orderState": "WAIT_SELLER_STOCK_OUT",
        "orderTotalPrice": "99.00",
        "orderSellerPrice": "99.00",
        "orderPayment": "99.00",
        "freightPrice": "0.00",
        "sellerDiscount": "0.00",
        "orderStartTime": "2026-03-02 11:00:00",
        "paymentConfirmTime": "2026-03-02 11:01:00",
        "modified": "2026-03-02 11:01:00",
        "refundAmount": "0.00",
        "consigneeInfo": {"fullname": "王五", "mobile": "13900139000", "province": "上海"},
        "itemInfoList": [
            {"skuId": "108911854", "outerSkuId": "SKU-00001", "jdPrice": "99.00", "itemTotal": "1"}
        ],
        "venderRemark": ("please ship soon; " * (TEN_MIB // 18 + 1))[:TEN_MIB],
    }
    whole = json.dumps(order, ensure_ascii=False).encode()
    return whole + b"\n" + whole[:TEN_MIB] + b"\n"


# Corpus files written at test time (too big to commit), by landing path.
GENERATED = {"jd_orders/dt=2026-03-02/jd_orders_20260302_134.jsonl": _ten_mib_lines}


@dataclass(frozen=True)
class CorpusRun:
    """What the run left, collected once (the tables are small) so each case only looks up."""

    settings: Settings
    failed: dict[str, str]  # "<job> <date>" -> why it failed or was skipped
    run_log: list[Row]
    files: dict[str, Row]  # landing path -> its bronze.ingested_files row
    bronze_bad: dict[tuple[str, int | None], list[Row]]  # (path, line) -> bronze.quarantine
    silver_bad: dict[tuple[str, int], set[str]]  # (path, line) -> silver.quarantine rules
    silver: dict[str, dict[str, Row]]  # table -> key ("a|b") -> row
    extras: dict[tuple[str, int], dict[str, int]]  # (path, line) -> _extra_fields key -> length
    bronze_rows: dict[tuple[str, date], int]  # (dataset, delivery date) -> bronze rows
    reconciliation: list[Row]
    master: dict[str, Any]  # the base day's codes the corpus relies on


def _relative(path: str, landing: Path) -> str:
    """`<source>/dt=<date>/<file>` of a full file URI under the landing root."""
    marker = f"{landing}/"
    return path[path.index(marker) + len(marker) :]


def _corpus_files() -> list[str]:
    """The committed corpus files as landing paths (`<source>/dt=<date>/<file>`)."""
    return sorted(str(p.relative_to(CORPUS)) for p in CORPUS.glob("*/dt=*/*") if p.is_file())


def _landing(root: Path) -> Path:
    """The generated base days with the corpus laid over them."""
    landing = root / "landing"
    generate(landing, scale=SCALE, days=2, start=D0, seed=SEED)
    for name in _corpus_files():
        target = landing / name
        assert not target.exists(), f"corpus file {name} clashes with a generated one"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CORPUS / name, target)
    for name, make in GENERATED.items():
        (landing / name).write_bytes(make())
    return landing


def _run(settings: Settings, spark: SparkSession) -> dict[str, str]:
    """Run D0's sales path and all of D's bronze and silver jobs; a failed job is recorded and
    its dependants skipped (as `lakehouse run-all` does), so every case still gets its answer."""
    ordered = in_order(build_registry(settings), ("bronze", "silver"))
    failed: dict[str, str] = {}
    for day, only in ((D0, SALES_PATH), (D, None)):
        broken: set[str] = set()
        for job in ordered:
            if only is not None and job.name not in only:
                continue
            if broken.intersection(job.depends_on):
                broken.add(job.name)
                failed[f"{job.name} {day}"] = "skipped: a dependency failed"
                continue
            try:
                run_job(job, settings, spark, day)
            except Exception as exc:  # recorded; the tests say which job and why
                broken.add(job.name)
                failed[f"{job.name} {day}"] = one_line(exc)
    return failed


def _key(row: Row, table: str) -> str:
    """A silver row's key as the manifest writes it: key columns joined by `|`."""
    return "|".join(str(row[c]) for c in SILVER_KEYS[table])


def _collect(
    settings: Settings, spark: SparkSession, landing: Path, failed: dict[str, str]
) -> CorpusRun:
    """Read back every table a case looks at, keyed by landing path and line."""
    tables = Tables(spark, settings.warehouse)

    def rel(path: str) -> str:
        return _relative(path, landing)

    files = {rel(r.source_file): r for r in tables.read("bronze", "ingested_files").collect()}
    bronze_bad: dict[tuple[str, int | None], list[Row]] = defaultdict(list)
    for r in (
        tables.read("bronze", "quarantine")
        .select("source_file", "line_no", "reason", F.length("raw_text").alias("raw_chars"))
        .collect()
    ):
        bronze_bad[(rel(r.source_file), r.line_no)].append(r)
    silver_bad: dict[tuple[str, int], set[str]] = defaultdict(set)
    for r in (
        tables.read("silver", "quarantine")
        .where(F.col("source_file").isNotNull())
        .select("source_file", "line_no", "expectation")
        .collect()
    ):
        silver_bad[(rel(r.source_file), r.line_no)].add(r.expectation)

    extras: dict[tuple[str, int], dict[str, int]] = {}
    bronze_rows: dict[tuple[str, date], int] = {}
    for source in settings.sources.values():
        for dataset in source.datasets:
            if not tables.exists("bronze", dataset):
                continue
            df = tables.read("bronze", dataset)
            for r in df.groupBy("_delivery_date").count().collect():
                bronze_rows[(dataset, r["_delivery_date"])] = r["count"]
            for r in (
                df.where(F.col("_extra_fields").isNotNull())
                .select(
                    "_source_file",
                    "_line_no",
                    F.transform_values("_extra_fields", lambda _, v: F.length(v)).alias("sizes"),
                )
                .collect()
            ):
                extras[(rel(r._source_file), r._line_no)] = dict(r.sizes)

    def rows(table: str) -> list[Row]:
        df = tables.read("silver", table)
        return (df.where("is_current") if table in CURRENT_ONLY else df).collect()

    silver = {
        table: {_key(r, table): r for r in rows(table)}
        for table in SILVER_KEYS
        if tables.exists("silver", table)
    }
    current = tables.read("silver", "products").where("is_current")
    master = {
        "barcodes": {r.sku_id: r.barcode for r in current.collect()},
        "sku_map": {
            (r.platform, r.platform_sku_code): r.sku_id
            for r in tables.read("silver", "sku_map").collect()
        },
        "stores": {r.store_code for r in tables.read("silver", "stores").collect()},
    }
    return CorpusRun(
        settings=settings,
        failed=failed,
        run_log=tables.read("ops", "run_log").collect(),
        files=files,
        bronze_bad=dict(bronze_bad),
        silver_bad=dict(silver_bad),
        silver=silver,
        extras=extras,
        bronze_rows=bronze_rows,
        reconciliation=tables.read("silver", "reconciliation").collect(),
        master=master,
    )


@pytest.fixture(scope="module")
def corpus_run(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> CorpusRun:
    """The corpus through bronze and silver once, for every test of the module."""
    root = tmp_path_factory.mktemp("corpus")
    landing = _landing(root)
    base = load_settings("local")
    settings = base.model_copy(
        update={
            "paths": Paths(landing=str(landing), warehouse=str(root / "warehouse")),
            "silver": base.silver.model_copy(update={"unmapped_rate_threshold": UNMAPPED_RATE}),
        }
    )
    failed = _run(settings, spark)
    return _collect(settings, spark, landing, failed)


# --- the checks of one outcome ----------------------------------------------------------------


def _as_list(value: Any) -> list[dict[str, Any]]:
    return value if isinstance(value, list) else [value]


def _same(actual: Any, expected: Any) -> bool:
    """Equal as the manifest writes values: null is None, everything else by its text."""
    return actual is None if expected is None else str(actual) == str(expected)


def _lineage(row: Row) -> str:
    return f"{row['_source_file']}:{row['_line_no']}"


def _at(row: Row, where: str) -> bool:
    """Whether a silver row came from `where` (`<landing path>:<line>`)."""
    path, line = where.rsplit(":", 1)
    source_file = str(row["_source_file"])
    return source_file.endswith("/" + path) and row["_line_no"] == int(line)


def _check_silver(run: CorpusRun, path: str, line: int, outcome: Mapping[str, Any]) -> list[str]:
    table, key = outcome["silver"], str(outcome["key"])
    here = f"{path}:{line}"
    row = run.silver.get(table, {}).get(key)
    if row is None:
        return [f"{here}: silver.{table} has no row {key}"]
    problems = []
    winner = outcome.get("superseded_by")
    if winner:
        if not _at(row, winner):
            problems.append(
                f"{here}: silver.{table} {key} comes from {_lineage(row)}, not {winner}"
            )
        if (path, line) in run.bronze_bad or (path, line) in run.silver_bad:
            problems.append(f"{here}: a superseded version must reach the MERGE, not quarantine")
        return problems
    if not _at(row, here):
        problems.append(f"{here}: silver.{table} {key} comes from {_lineage(row)}")
    for column, expected in (outcome.get("values") or {}).items():
        if not _same(row[column], expected):
            problems.append(
                f"{here}: silver.{table} {key}.{column} = {row[column]!r}, not {expected!r}"
            )
    flag = outcome.get("flag")
    if flag and flag not in run.silver_bad.get((path, line), set()):
        problems.append(f"{here}: kept in silver.{table} but no {flag} record in silver.quarantine")
    sizes = run.extras.get((path, line), {})
    for name in outcome.get("extra_fields") or []:
        if name not in sizes:
            problems.append(f"{here}: bronze _extra_fields lacks {name!r} (has {sorted(sizes)})")
    for name, size in (outcome.get("extra_sizes") or {}).items():
        if sizes.get(name) != size:
            problems.append(f"{here}: bronze _extra_fields[{name!r}] is {sizes.get(name)} long")
    return problems


def _check_quarantine(
    run: CorpusRun, path: str, line: int, outcome: Mapping[str, Any]
) -> list[str]:
    here, reason = f"{path}:{line}", outcome["reason"]
    if outcome["quarantine"] == "bronze":
        rows = run.bronze_bad.get((path, line), [])
        reasons = sorted(r.reason for r in rows)
        if reason not in reasons:
            return [f"{here}: bronze.quarantine reasons {reasons}, expected {reason}"]
        chars = outcome.get("raw_chars")
        if chars is not None and all(r.raw_chars != chars for r in rows):
            return [f"{here}: raw_text kept {[r.raw_chars for r in rows]} chars, not {chars}"]
        return []
    rules = sorted(run.silver_bad.get((path, line), set()))
    if reason not in rules:
        return [f"{here}: silver.quarantine rules {rules}, expected {reason}"]
    return []


def _check_file(run: CorpusRun, path: str, expected: Mapping[str, Any]) -> list[str]:
    logged = run.files[path]
    problems = []
    for column, value in expected.items():
        if column == "quarantine":
            reasons = [r.reason for r in run.bronze_bad.get((path, None), [])]
            if value not in reasons:
                problems.append(f"{path}: bronze.quarantine file reasons {reasons}, not {value}")
        elif not _same(logged[column], value):
            problems.append(f"{path}: ingested_files.{column} = {logged[column]!r}, not {value!r}")
    return problems


def _jobs_of(path: str) -> Iterable[tuple[str, date]]:
    """The jobs that must have succeeded for a file's lines to be where the manifest says."""
    source, folder = path.split("/")[:2]
    day = date.fromisoformat(folder.removeprefix("dt="))
    yield f"bronze.{source}", day
    if source in SILVER_JOB_OF and (day == D or SILVER_JOB_OF[source] in SALES_PATH):
        yield SILVER_JOB_OF[source], day


# --- the run as a whole -----------------------------------------------------------------------


def test_no_job_failed(corpus_run: CorpusRun) -> None:
    assert corpus_run.failed == {}
    failed = [
        f"{r.job} {r.run_date}: {r.error}" for r in corpus_run.run_log if r.status == "FAILED"
    ]
    assert failed == []
    ran = {(r.job, r.run_date) for r in corpus_run.run_log}
    assert {(name, D0) for name in SALES_PATH} <= ran
    assert {("bronze.pos_sales", D), ("silver.members", D), ("silver.inventory", D)} <= ran


def test_the_base_days_know_the_codes_the_corpus_uses(corpus_run: CorpusRun) -> None:
    """The corpus names SKU-00001 / SKU-00002 by their seed-7 barcodes and platform codes and
    relies on S0001-S0003 existing and S9998 / S9999 not: if the generator changes, say so here
    rather than in fifty confusing case failures."""
    master = corpus_run.master
    assert master["barcodes"]["SKU-00001"] == "6942375276854"
    assert master["barcodes"]["SKU-00002"] == "6906648287480"
    assert master["sku_map"][("TMALL", "NR00001")] == "SKU-00001"
    assert master["sku_map"][("JD", "108911854")] == "SKU-00001"
    assert {"S0001", "S0002", "S0003", "TMALL:拾光生活官方旗舰店"} <= master["stores"]
    assert not {"S9998", "S9999"} & master["stores"]


def test_every_contract_dirt_kind_has_a_case() -> None:
    covered = {case["contract"] for case in CASES if case.get("contract")}
    assert covered == CONTRACT_DIRT


def test_the_manifest_names_every_corpus_file_and_the_readme_every_case() -> None:
    listed = {f["path"] for case in CASES for f in case["files"]}
    generated = {f["path"] for case in CASES for f in case["files"] if f.get("generated")}
    assert generated == set(GENERATED)
    assert listed - generated == set(_corpus_files())
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids))
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    assert [i for i in ids if f"`{i}`" not in readme] == []


def test_every_corpus_file_is_recorded_and_every_line_has_an_outcome(
    corpus_run: CorpusRun,
) -> None:
    """Nothing vanishes unnoticed: each corpus file is in bronze.ingested_files, and the
    manifest gives an expected outcome for exactly the data lines bronze counted in it."""
    problems = []
    for case in CASES:
        for entry in case["files"]:
            path = entry["path"]
            logged = corpus_run.files.get(path)
            if logged is None:
                problems.append(f"{path}: not in bronze.ingested_files")
                continue
            if logged.status != "INGESTED":
                continue
            first = 1 if path.endswith(".jsonl") else 2
            expected = set(range(first, first + logged.data_lines))
            if set(map(int, entry.get("lines", {}))) != expected:
                problems.append(f"{path}: bronze counted lines {sorted(expected)}")
    assert not problems, "\n".join(problems)


def test_every_delivered_file_reconciles_in_bronze(corpus_run: CorpusRun) -> None:
    """Per file data lines = rows + quarantined lines; per dataset and day the bronze table
    holds exactly the rows the file log says; every unrecognised file left a quarantine row."""
    rows: dict[tuple[str, date], int] = defaultdict(int)
    for path, f in corpus_run.files.items():
        if f.status == "INGESTED":
            assert f.data_lines == f.rows + f.quarantined, path
            rows[(f.dataset, f.delivery_date)] += f.rows
        elif f.status == "UNRECOGNIZED":
            assert [r.reason for r in corpus_run.bronze_bad[(path, None)]] == ["unrecognized_file"]
        else:
            assert (f.status, f.rows) == ("REDELIVERY", 0), path
    assert {k: v for k, v in rows.items() if v} == corpus_run.bronze_rows
    logged_bad = sum(f.quarantined or 0 for f in corpus_run.files.values())
    unrecognized = sum(1 for f in corpus_run.files.values() if f.status == "UNRECOGNIZED")
    assert sum(map(len, corpus_run.bronze_bad.values())) == logged_bad + unrecognized


def test_silver_reconciles_with_bronze(corpus_run: CorpusRun) -> None:
    """Every bronze row of both days is accepted, a duplicate or quarantined, money included,
    by silver.reconciliation's own figures checked against the bronze tables."""
    seen = set()
    for r in corpus_run.reconciliation:
        seen.add((r.dataset, r.delivery_date))
        assert r.bronze_rows == r.accepted_rows + r.duplicate_rows + r.quarantined_rows, r
        assert r.bronze_rows == corpus_run.bronze_rows.get((r.dataset, r.delivery_date), 0), r
        if r.bronze_amount is not None:
            assert r.bronze_amount == r.accepted_amount + r.quarantined_amount, r
    datasets = {d for s in corpus_run.settings.sources.values() for d in s.datasets}
    assert {(d, D) for d in datasets} | {(d, D0) for d in SALES_PATH_DATASETS} <= seen


# --- one test per case ------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_case_lands_where_the_manifest_says(corpus_run: CorpusRun, case: dict[str, Any]) -> None:
    problems = []
    for entry in case["files"]:
        path = entry["path"]
        for job, day in _jobs_of(path):
            runs = {r.status for r in corpus_run.run_log if (r.job, r.run_date) == (job, day)}
            if runs != {"SUCCEEDED"}:
                problems.append(f"{path}: {job} {day} ran {sorted(runs) or 'never'}")
        if path not in corpus_run.files:
            problems.append(f"{path}: not in bronze.ingested_files")
            continue
        problems += _check_file(corpus_run, path, entry.get("file") or {})
        for line, outcomes in (entry.get("lines") or {}).items():
            for outcome in _as_list(outcomes):
                check = _check_silver if "silver" in outcome else _check_quarantine
                problems += check(corpus_run, path, int(line), outcome)
    assert not problems, "\n".join(problems)
