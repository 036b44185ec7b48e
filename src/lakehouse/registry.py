"""The job registry: every job the suite runs, by name, with its dependencies.

Bronze jobs come from conf/sources.yml (one per source folder), so adding a source is a YAML
change. Later layers register their jobs here too.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from lakehouse.bronze.job import ingest_source
from lakehouse.config import Settings
from lakehouse.maintenance import run_maintenance
from lakehouse.runtime import Job, JobError

# The spark-submit entry for a job by name, for a job without a script of its own.
ANY_JOB_SCRIPT = "run_job.py"


def spark_submit_script(jobs_dir: Path, job: str) -> tuple[Path, list[str]]:
    """The script `job` runs under spark-submit and its arguments before `--run-date`: its own
    `jobs/<layer>_<name>.py`, else `jobs/run_job.py <job>`.

    Why: a source added in conf/sources.yml is a bronze job with no script of its own, and a
    task pointing at one that does not exist would fail every run.
    """
    own = jobs_dir / f"{job.replace('.', '_')}.py"
    if own.is_file():
        return own, []
    return jobs_dir / ANY_JOB_SCRIPT, [job]


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
    jobs["silver.master"] = Job(
        name="silver.master",
        layer="silver",
        description="products and stores history (SCD2), SKU map",
        run=_silver_master,
        depends_on=("bronze.master", "bronze.tmall_orders"),
    )
    jobs["silver.sales"] = Job(
        name="silver.sales",
        layer="silver",
        description="orders and order lines of every platform, latest state wins",
        run=_silver_sales,
        depends_on=(
            "silver.master",
            "bronze.tmall_orders",
            "bronze.tmall_order_items",
            "bronze.jd_orders",
            "bronze.mall_orders",
            "bronze.pos_sales",
        ),
    )
    for name, builder, description, depends_on in (
        (
            "silver.members",
            "build_members",
            "CRM members, newest snapshot wins, those it no longer lists left the CRM",
            ("bronze.crm_members",),
        ),
        (
            "silver.campaigns",
            "build_campaigns",
            "campaigns and the day's campaign touches",
            ("bronze.campaigns",),
        ),
        (
            "silver.inventory",
            "build_inventory",
            "daily stock positions, flagged not zeroed",
            ("bronze.inventory", "silver.master"),
        ),
        (
            "silver.identities",
            "build_identities",
            "every identifier of members, orders and touches, for One ID",
            ("silver.members", "silver.sales", "silver.campaigns"),
        ),
    ):
        jobs[name] = Job(
            name=name,
            layer="silver",
            description=description,
            run=partial(_entity_job, builder),
            depends_on=depends_on,
        )
    jobs["oneid.link"] = Job(
        name="oneid.link",
        layer="oneid",
        description="link every identifier of a person into one stable one_id, guarded",
        run=_oneid_link,
        depends_on=("silver.identities", "silver.master"),
    )
    jobs["oneid.golden"] = Job(
        name="oneid.golden",
        layer="oneid",
        description="one golden member record per one_id, by the survivorship rules",
        run=_oneid_golden,
        depends_on=("oneid.link", "silver.members", "silver.sales", "silver.campaigns"),
    )
    for name, module, builder, description, depends_on in GOLD_JOBS:
        jobs[name] = Job(
            name=name,
            layer="gold",
            description=description,
            run=partial(_gold_job, module, builder),
            depends_on=depends_on,
        )
    # Not a daily job (its layer is not in LAYER_ORDER): run it on its own schedule.
    jobs["ops.maintenance"] = Job(
        name="ops.maintenance",
        layer="ops",
        description="OPTIMIZE / Z-ORDER, VACUUM and table properties of every table",
        run=run_maintenance,
    )
    return jobs


# Gold jobs: (name, module under lakehouse.gold, builder, description, dependencies).
GOLD_JOBS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    (
        "gold.member_portrait",
        "people.job",
        "build_member_portrait",
        "one portrait per one_id: demographics, membership, behaviour, RFM, lifecycle",
        ("oneid.golden", "silver.sales", "silver.members", "silver.campaigns", "silver.master"),
    ),
    (
        "gold.member_tags",
        "people.job",
        "build_member_tags",
        "the tag catalog of conf/tags.yml computed over the portraits",
        ("gold.member_portrait",),
    ),
    (
        "gold.store_marts",
        "marts.job",
        "build_store_marts",
        "store_daily and store_monthly, online shops as virtual stores",
        ("silver.sales", "silver.master", "silver.members", "oneid.link"),
    ),
    (
        "gold.product_marts",
        "marts.job",
        "build_product_marts",
        "product_daily and product rankings, sell-through, turnover, stockouts",
        ("silver.sales", "silver.master", "silver.inventory"),
    ),
    (
        "gold.bundles",
        "marts.job",
        "build_bundles",
        "association rules over baskets (FP-Growth), SKU and category level",
        ("silver.sales", "silver.master"),
    ),
    (
        "gold.campaign_performance",
        "marts.job",
        "build_campaign_performance",
        "campaign conversions, uplift over untouched members, redemptions and ROI",
        ("silver.campaigns", "silver.sales", "silver.master", "oneid.link"),
    ),
    (
        "gold.inventory_position",
        "marts.job",
        "build_inventory_position",
        "stock per location, SKU and day with value at cost and days of supply",
        ("silver.inventory", "silver.master", "silver.sales"),
    ),
)


def _gold_job(module: str, builder: str, ctx):
    from importlib import import_module

    return getattr(import_module(f"lakehouse.gold.{module}"), builder)(ctx)


def _oneid_link(ctx):
    from lakehouse.oneid.job import build_one_id

    return build_one_id(ctx)


def _oneid_golden(ctx):
    from lakehouse.oneid.job import build_golden

    return build_golden(ctx)


def _entity_job(builder: str, ctx):
    from lakehouse.silver import entity_jobs

    return getattr(entity_jobs, builder)(ctx)


def _silver_master(ctx):
    from lakehouse.silver.master_job import build_master

    return build_master(ctx)


def _silver_sales(ctx):
    from lakehouse.silver.sales_job import build_sales

    return build_sales(ctx)


LAYER_ORDER = ("bronze", "silver", "oneid", "gold")


def in_order(jobs: dict[str, Job], layers: tuple[str, ...] = LAYER_ORDER) -> list[Job]:
    """Jobs of `layers` so that every job comes after the jobs it depends on."""
    chosen = {n: j for n, j in jobs.items() if j.layer in layers}
    done: list[Job] = []
    seen: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in seen:
            return
        if name in path:
            raise JobError(f"the job registry has a cycle: {' -> '.join((*path, name))}")
        for dependency in chosen[name].depends_on:
            if dependency in chosen:
                visit(dependency, (*path, name))
        seen.add(name)
        done.append(chosen[name])

    for name in chosen:
        visit(name, ())
    return done


def get_job(settings: Settings, name: str) -> Job:
    jobs = build_registry(settings)
    if name not in jobs:
        raise JobError(f"unknown job {name!r}; `lakehouse jobs` lists them: {', '.join(jobs)}")
    return jobs[name]
