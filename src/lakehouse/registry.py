"""The job registry: every job the suite runs, by name, with its dependencies.

Bronze jobs come from conf/sources.yml (one per source folder), so adding a source is a YAML
change. Later layers register their jobs here too.
"""

from __future__ import annotations

from functools import partial

from lakehouse.bronze.job import ingest_source
from lakehouse.config import Settings
from lakehouse.runtime import Job, JobError


def build_registry(settings: Settings) -> dict[str, Job]:
    jobs: dict[str, Job] = {}
    for source, spec in settings.sources.items():
        name = f"bronze.{source}"
        tables = ", ".join(f"bronze.{d}" for d in spec.datasets)
        jobs[name] = Job(
            name=name,
            layer="bronze",
            description=f"land {source} deliveries in {tables}",
            run=partial(ingest_source, source=source),
        )
    return jobs


def get_job(settings: Settings, name: str) -> Job:
    jobs = build_registry(settings)
    if name not in jobs:
        raise JobError(f"unknown job {name!r}; `lakehouse jobs` lists them: {', '.join(jobs)}")
    return jobs[name]
