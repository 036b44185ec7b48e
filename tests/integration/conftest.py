"""One generated landing zone run through bronze, silver and One ID, shared by every integration
module that checks a later layer against the generator's truth (the run costs minutes; building it
once per test session keeps the suite short)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from lakehouse import faults
from lakehouse.config import Paths, Settings, load_settings
from lakehouse.datagen import generate
from lakehouse.orchestrate import RunSummary, run_days
from lakehouse.registry import LAYER_ORDER, build_registry, in_order
from lakehouse.runtime import Job, JobResult, run_job
from lakehouse.tables import Tables
from tests.conftest import SMALL_DATA_CONF

ROOT = Path(__file__).resolve().parents[2]

START, DAYS = date(2026, 3, 1), 3


@dataclass
class GeneratedPipeline:
    settings: Settings
    landing: Path
    tables: Tables
    results: dict[tuple[str, date], JobResult]
    jobs: list[Job]
    days: list[date]


@pytest.fixture(scope="session")
def generated_pipeline(spark, tmp_path_factory) -> GeneratedPipeline:
    """Three generated days (scale 0.03, seed 11) after every bronze, silver and One ID job.

    Gold modules run their own jobs on top of this warehouse; tests may rerun a day of a job
    (reruns change nothing) but must not write anything else into it.
    """
    root = tmp_path_factory.mktemp("generated")
    landing = root / "landing"
    generate(landing, scale=0.03, days=DAYS, start=START, seed=11)
    base = load_settings("local")
    settings = base.model_copy(
        update={"paths": Paths(landing=str(landing), warehouse=str(root / "warehouse"))}
    )
    jobs = in_order(build_registry(settings), ("bronze", "silver", "oneid"))
    days = [START + timedelta(days=offset) for offset in range(DAYS)]
    results = {}
    for day in days:
        for job in jobs:
            results[(job.name, day)] = run_job(job, settings, spark, day)
    return GeneratedPipeline(
        settings, landing, Tables(spark, settings.warehouse), results, jobs, days
    )


GOLD_SALT = "integration-test-salt-0123456789"
MART_JOBS = (
    "gold.store_marts",
    "gold.product_marts",
    "gold.bundles",
    "gold.campaign_performance",
    "gold.inventory_position",
)
PEOPLE_JOBS = ("gold.member_portrait", "gold.member_tags")


@pytest.fixture(scope="session")
def generated_gold(generated_pipeline, spark) -> GeneratedPipeline:
    """The generated pipeline with every gold job run once, shared by the gold and report modules.

    The marts run the last two days: the first of them computes every earlier date (a first run
    backfills), the second is an incremental day with late data. Portraits and tags describe
    the state as of the last day. PII is salted with GOLD_SALT (modules that rerun the people
    jobs set the same salt).
    """
    p = generated_pipeline
    jobs = build_registry(p.settings)
    mp = pytest.MonkeyPatch()
    mp.setenv("LAKEHOUSE_PII_SALT", GOLD_SALT)
    try:
        for day in p.days[1:]:
            for name in MART_JOBS:
                p.results[(name, day)] = run_job(jobs[name], p.settings, spark, day)
        for name in PEOPLE_JOBS:
            p.results[(name, p.days[-1])] = run_job(jobs[name], p.settings, spark, p.days[-1])
    finally:
        mp.undo()
    return p


TINY_DAY = date(2026, 3, 1)
TINY_SALT = "tiny-day-test-salt-0123456789abcdef"
CHILD_DRIVER_JVM = "-XX:+UseParallelGC"


@dataclass
class DayWrites:
    """What one day's uninterrupted run wrote: the number of table writes of each job, what each
    write was (tables, or table paths relative to the warehouse), and a copy of the warehouse
    as that day left it."""

    writes_by_job: dict[str, int]
    targets_by_job: dict[str, list[str]]
    warehouse: Path


@dataclass
class TinyDay:
    """Tiny generated days, a copy of conf/, and what one uninterrupted local run of every job
    (bronze to gold) wrote on each day: the reference the crash-recovery test compares with.
    Day 1 creates every table; day 2 writes into existing ones (MERGEs, SCD2 versions, the
    marts' incremental branch)."""

    landing: Path
    conf: Path
    settings: Settings
    days: dict[date, DayWrites]

    @property
    def reference(self) -> Path:
        """The warehouse after the last day."""
        return list(self.days.values())[-1].warehouse


def tiny_landing(root: Path, days: int = 1) -> tuple[Path, Path]:
    """The tiny generated days' landing zone (from TINY_DAY on) and a copy of conf/
    (LAKEHOUSE_CONF, as the cluster bundle's would be), under root."""
    landing = root / "landing"
    generate(landing, scale=0.01, days=days, start=TINY_DAY, seed=5)
    # The tests' small-data Spark settings in both environments, and fewer shuffle partitions
    # than cluster.yml's 64 for a tiny landing on 2 cores (minutes of empty tasks). Local
    # children (the crash test's) are short-lived JVMs: the parallel collector costs them less
    # than G1 (a whole tiny day in a cold child, 180 s -> 164 s, two runs each); the test
    # session keeps G1, for which a 30-minute session is better (tests/conftest.py).
    conf = root / "conf"
    shutil.copytree(ROOT / "conf", conf)
    for name, extra in (
        ("local.yml", {**SMALL_DATA_CONF, "spark.driver.extraJavaOptions": CHILD_DRIVER_JVM}),
        ("cluster.yml", {**SMALL_DATA_CONF, "spark.sql.shuffle.partitions": "4"}),
    ):
        overlay = yaml.safe_load((conf / name).read_text(encoding="utf-8"))
        overlay["spark"]["conf"].update(extra)
        (conf / name).write_text(yaml.safe_dump(overlay, allow_unicode=True), encoding="utf-8")
    return landing, conf


def run_tiny_reference(
    spark,
    landing: Path,
    conf: Path,
    reference: Path,
    layers: tuple[str, ...] = LAYER_ORDER,
    days: int = 1,
) -> tuple[Settings, RunSummary, dict[date, DayWrites]]:
    """One uninterrupted local run of the tiny days' layers into reference, a day at a time: its
    settings, the last day's summary and what each day wrote (every day but the last keeps a
    copy of the warehouse beside reference, named reference-<day>)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LAKEHOUSE_CONF", str(conf))
    mp.setenv("LAKEHOUSE_PII_SALT", TINY_SALT)
    mp.setenv("LAKEHOUSE_EXPECTATIONS", str(ROOT / "expectations"))
    written: dict[date, DayWrites] = {}
    try:
        settings = load_settings("local", conf).model_copy(
            update={"paths": Paths(landing=str(landing), warehouse=str(reference))}
        )
        for i in range(days):
            day = TINY_DAY + timedelta(days=i)
            faults.writes_by_job.clear()
            faults.write_targets.clear()
            summary = run_days(settings, spark, [day], layers, resume=False)
            assert summary.ok, summary.describe()
            warehouse = reference
            if i < days - 1:
                warehouse = reference.with_name(f"{reference.name}-{day.isoformat()}")
                shutil.copytree(reference, warehouse)
            written[day] = DayWrites(
                dict(faults.writes_by_job),
                {
                    job: [relative_target(t, reference) for t in targets]
                    for job, targets in faults.write_targets.items()
                },
                warehouse,
            )
    finally:
        mp.undo()
    return settings, summary, written


def relative_target(target: str, warehouse: Path) -> str:
    """A write's target as faults.py names it, with the warehouse's own path left out: a table's
    name, or a path under the warehouse (the same in any copy of it)."""
    prefix = f"{warehouse}/"
    return target[len(prefix) :] if target.startswith(prefix) else target


@pytest.fixture(scope="session")
def tiny_day(spark, tmp_path_factory) -> TinyDay:
    root = tmp_path_factory.mktemp("tiny_day")
    landing, conf = tiny_landing(root, days=2)
    settings, _, written = run_tiny_reference(spark, landing, conf, root / "reference", days=2)
    return TinyDay(landing, conf, settings, written)
