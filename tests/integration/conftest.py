"""One generated landing zone run through bronze, silver and One ID, shared by every integration
module that checks a later layer against the generator's truth (the run costs minutes; building it
once per test session keeps the suite short)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

from lakehouse.config import Paths, Settings, load_settings
from lakehouse.datagen import generate
from lakehouse.registry import build_registry, in_order
from lakehouse.runtime import Job, JobResult, run_job
from lakehouse.tables import Tables

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
