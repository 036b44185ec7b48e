"""Read what the report shows from the warehouse (small aggregates only) and render it.

A table that does not exist yet (gold not run, a fresh warehouse) gives its section a sentence
saying so, never an error: the report is also how a person sees what is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.report import html
from lakehouse.spark import local_path
from lakehouse.tables import Tables

TREND_DAYS = 30
VERDICT_COLUMNS = (
    "table", "checks", "rules", "passed", "failed", "warnings", "quarantining", "quarantine_hits",
)  # fmt: skip
# The daily jobs whose tables hold only their latest run's state (not one slice per day).
STATE_JOBS = ("gold.member_portrait", "gold.store_marts", "gold.campaign_performance")
AUDIENCE_CHECK = r"^audience-(.+)-[0-9a-f]{12}$"  # lakehouse.gold.people.audience's run ids


def _rows(df: DataFrame, limit: int | None = None) -> list[dict]:
    return [r.asDict() for r in (df.limit(limit) if limit else df).collect()]


def _present(df: DataFrame, wanted: Sequence[str]) -> list[str]:
    return [c for c in wanted if c in df.columns]


def _missing(tables: Tables, layer: str, name: str, job: str) -> str | None:
    if tables.exists(layer, name):
        return None
    return html.note(f"{layer}.{name} does not exist yet: run {job}.")


def sales_trend(tables: Tables, run_date: date) -> str:
    if missing := _missing(tables, "silver", "orders", "silver.sales"):
        return missing
    start = run_date - timedelta(days=TREND_DAYS - 1)
    rows = _rows(
        tables.read("silver", "orders")
        .where(F.col("business_date").between(F.lit(start), F.lit(run_date)))
        .groupBy("platform", "business_date")
        .agg(F.sum("net_sales").alias("net_sales"))
    )
    series: dict[str, list[tuple[date, float]]] = {}
    for r in sorted(rows, key=lambda r: (r["platform"] or "", r["business_date"])):
        series.setdefault(r["platform"] or "unknown", []).append(
            (r["business_date"], float(r["net_sales"] or 0))
        )
    totals = [
        {"channel": k, "net_sales": round(sum(v for _, v in points), 2), "days": len(points)}
        for k, points in series.items()
    ]
    return html.line_chart(series, label="net sales by channel and day") + html.table(
        totals, ["channel", "net_sales", "days"], ["channel", "net sales", "days"]
    )


def store_ranking(tables: Tables, run_date: date) -> str:
    if missing := _missing(tables, "gold", "store_monthly", "gold.store_marts"):
        return missing
    monthly = tables.read("gold", "store_monthly")
    month = run_date.replace(day=1)
    month_col = "month" if "month" in monthly.columns else None
    if month_col:
        monthly = monthly.where(F.col(month_col) == F.lit(month))
    columns = _present(
        monthly,
        [
            "store_code",
            "store_name",
            "store_type",
            "region",
            "net_sales",
            "margin_rate",
            "sales_per_sqm",
            "sales_per_staff",
            "repurchase_rate",
        ],
    )
    rows = _rows(monthly.orderBy(F.col("net_sales").desc_nulls_last()).select(*columns), 20)
    if not rows:
        return html.note(f"No store sales in {month:%Y-%m} yet.")
    bars = [(r.get("store_name") or r["store_code"], float(r["net_sales"] or 0)) for r in rows]
    return html.bar_chart(bars, label=f"net sales by store, {month:%Y-%m}", unit=" ¥") + html.table(
        rows, columns
    )


def members(tables: Tables, run_date: date) -> str:
    if missing := _missing(tables, "gold", "member_portrait", "gold.member_portrait"):
        return missing
    portrait = tables.read("gold", "member_portrait")
    parts = []
    for column, title in (
        ("rfm_segment", "RFM segment"),
        ("lifecycle_stage_cn", "Lifecycle stage"),
    ):
        if column not in portrait.columns:
            parts.append(html.note(f"gold.member_portrait has no column {column}."))
            continue
        rows = _rows(portrait.groupBy(column).count().orderBy(F.col("count").desc()))
        bars = [(r[column] or "(none)", float(r["count"])) for r in rows]
        parts.append(f"<h3>{title}</h3>" + html.bar_chart(bars, label=title, unit=" people"))
    return "".join(parts)


def bundles(tables: Tables, run_date: date) -> str:
    if missing := _missing(tables, "gold", "bundles", "gold.bundles"):
        return missing
    df = tables.read("gold", "bundles")
    if "as_of" in df.columns:  # one slice per run: the report's day's, never an earlier one
        newest = df.where(F.col("as_of") <= F.lit(run_date)).agg(F.max("as_of")).first()[0]
        df = df.where(F.col("as_of") == F.lit(run_date))
        if newest != run_date and not _succeeded(tables, "gold.bundles", run_date):
            earlier = f" (its newest rules are of {newest})" if newest else ""
            return html.note(f"gold.bundles has not run for {run_date}{earlier}.")
    columns = _present(
        df, ["level", "antecedent", "consequent", "support", "confidence", "lift", "baskets"]
    )
    order = F.col("lift").desc() if "lift" in df.columns else F.lit(1)
    rows = _rows(df.orderBy(order).select(*columns), 15)
    for r in rows:
        for key in ("antecedent", "consequent"):
            if isinstance(r.get(key), list):
                r[key] = " + ".join(map(str, r[key]))
    if not rows:
        return html.note(f"No rule passed the thresholds on {run_date}.")
    return html.table(rows, columns)


def campaigns(tables: Tables, run_date: date) -> str:
    if missing := _missing(tables, "gold", "campaign_performance", "gold.campaign_performance"):
        return missing
    df = tables.read("gold", "campaign_performance")
    columns = _present(
        df,
        [
            "campaign_id",
            "campaign_name",
            "people_touched",
            "converted_people",
            "conversion_rate",
            "control_purchase_rate",
            "uplift",
            "attributed_net_sales",
            "cost",
            "roi",
        ],
    )
    rows = _rows(df.orderBy(F.col("roi").desc_nulls_last()).select(*columns), 20)
    bars = [
        (r.get("campaign_name") or r["campaign_id"], float(r["roi"]))
        for r in rows
        if r.get("roi") is not None
    ]
    return html.bar_chart(bars, label="campaign ROI") + html.table(rows, columns)


def data_quality(tables: Tables, run_date: date) -> str:
    if missing := _missing(tables, "ops", "dq_results", "a gated job"):
        return missing
    # Each audience is checked under its own run: "gold.audiences (vip)" is one subject and
    # "gold.audiences (lapsed)" another, not a rerun of it.
    audience = F.regexp_extract("run_id", AUDIENCE_CHECK, 1)
    checks = (
        tables.read("ops", "dq_results")
        .where(F.col("run_date") == F.lit(run_date))
        .withColumn(
            "table",
            F.when(audience != "", F.format_string("%s (%s)", "table", audience)).otherwise(
                F.col("table")
            ),
        )
    )
    # A rerun (run-all resuming after a failure, run-layer twice) checks a table again: the day's
    # verdict is its latest check; earlier ones are counted, not added up.
    latest = checks.groupBy("table").agg(
        F.max_by("run_id", "checked_at").alias("run_id"),
        F.count_distinct("run_id").alias("checks"),
    )
    df = checks.join(latest, ["table", "run_id"])
    caught = ~F.col("success") & (F.col("policy") == "quarantine")
    per_table = _rows(
        df.groupBy("table", "checks")
        .agg(
            F.count("*").alias("rules"),
            F.count_if(F.col("success")).alias("passed"),
            F.count_if(~F.col("success") & (F.col("policy") == "fail")).alias("failed"),
            F.count_if(~F.col("success") & (F.col("policy") == "warn")).alias("warnings"),
            F.count_if(caught).alias("quarantining"),
            # Rows the quarantine rules caught, per rule (a row two rules catch counts twice):
            # not warn rules' rows, which stayed, nor a failed gate's, which nothing published.
            F.coalesce(F.sum(F.when(caught, F.col("failing_rows"))), F.lit(0)).alias(
                "quarantine_hits"
            ),
        )
        .orderBy("table")
    )
    problems = _rows(
        df.where(~F.col("success"))
        .select("table", "expectation", "policy", "failing_rows", "rule")
        .orderBy("table", "expectation"),
        50,
    )
    return (
        html.table(
            per_table,
            VERDICT_COLUMNS,
            css={"failed": lambda r: "bad" if r["failed"] else "good"},
        )
        + "<h3>Rules that did not pass</h3>"
        + html.table(
            problems,
            ["table", "expectation", "policy", "failing_rows", "rule"],
            css={"policy": lambda r: "bad" if r["policy"] == "fail" else None},
        )
    )


def run_log(tables: Tables, run_date: date) -> str:
    if missing := _missing(tables, "ops", "run_log", "any job"):
        return missing
    columns = [
        "job", "status", "start_time", "seconds", "rows_read", "rows_written", "rows_quarantined",
        "error",
    ]  # fmt: skip
    error = F.substring(F.coalesce("error", F.lit("")), 1, 200).alias("error")
    rows = _rows(
        tables.read("ops", "run_log")
        .where(F.col("run_date") == F.lit(run_date))
        .select(*columns[:-1], error)
        .orderBy("start_time")
    )
    return html.table(
        rows,
        columns,
        css={"status": lambda r: "bad" if r["status"] != "SUCCEEDED" else "good"},
    )


SECTIONS: tuple[tuple[str, Callable[[Tables, date], str]], ...] = (
    ("Sales trend by channel (net sales, ¥)", sales_trend),
    ("Store ranking: 坪效 and 人效", store_ranking),
    ("Members: RFM segments and lifecycle", members),
    ("Top bundles", bundles),
    ("Campaign ROI", campaigns),
    ("Data quality", data_quality),
    ("Run log", run_log),
)


def _succeeded(tables: Tables, job: str, run_date: date) -> bool:
    if not tables.exists("ops", "run_log"):
        return False
    log = tables.read("ops", "run_log")
    return not log.where(
        (F.col("job") == job) & (F.col("run_date") == F.lit(run_date))
        & (F.col("status") == "SUCCEEDED")
    ).isEmpty()  # fmt: skip


def state_days(tables: Tables) -> dict[str, date]:
    """job → the day of its latest successful run (by end time), for the gold jobs of the
    latest-state tables (STATE_JOBS).

    Why per job, and by end time: each replaces its whole table as of its run date, so the day a
    table shows is that of its last successful run, whatever bronze or silver have run since. A
    gate failure leaves one table a day behind the others, and a backfill
    (`run-all --run-date <earlier> --rerun`) rewinds them to an earlier day than the latest
    ever run.
    """
    if not tables.exists("ops", "run_log"):
        return {}
    rows = (
        tables.read("ops", "run_log")
        .where((F.col("status") == "SUCCEEDED") & F.col("job").isin(*STATE_JOBS))
        .groupBy("job")
        .agg(F.max_by("run_date", "end_time").alias("day"))
        .collect()
    )
    return {r["job"]: r["day"] for r in rows}


STATE_TABLES = {  # what each STATE_JOBS job's table is on the page
    "gold.member_portrait": "members",
    "gold.store_marts": "the month's store ranking",
    "gold.campaign_performance": "campaign ROI",
}


def build_report(tables: Tables, run_date: date, env: str = "local") -> html.Page:
    subtitle = f"warehouse {tables.warehouse} · env {env}"
    # Sales, bundles and data quality are read for the day; the portrait, the month's store
    # totals and campaign figures are tables of their latest run's state only.
    days = state_days(tables)
    for job in STATE_JOBS:
        day = days.get(job)
        if day is not None and day != run_date:
            when = "a later" if day > run_date else "an earlier"
            subtitle += (
                f" · {STATE_TABLES[job]}: {when} day's state, {day}'s ({job} last succeeded "
                f"for {day}), not {run_date}'s"
            )
    page = html.Page(title=f"lakehouse daily report {run_date}", subtitle=subtitle)
    for title, section in SECTIONS:
        page.sections.append(html.Section(title, section(tables, run_date)))
    return page


def default_report_path(warehouse: str, run_date: date) -> Path:
    """`<warehouse>/_reports/report-<date>.html` for a warehouse on this machine's disk.

    The page is written with Python's own file functions: a warehouse on hdfs:// or s3a:// has no
    such folder here (pathlib would make `hdfs:/lakehouse` under the working directory of it).
    """
    folder = local_path(warehouse)
    if folder is None:
        raise ValueError(
            f"the warehouse {warehouse} is not on this machine's disk, so the report has no "
            "default place: give --out <file.html>"
        )
    return folder / "_reports" / f"report-{run_date}.html"


def local_report_path(warehouse: str, run_date: date, out: str | Path | None) -> Path:
    """`out`, or the default place; ValueError for a URI (`s3a://b/r.html` would become the
    relative folder `s3a:`, and the page would stay on this machine under a remote name)."""
    if out is None or str(out) == "":
        return default_report_path(warehouse, run_date)
    local = local_path(str(out))
    if local is None:
        raise ValueError(
            f"--out {out}: the report is written to this machine's disk; give a local file "
            "and copy it where it should go"
        )
    return local


def write_report(
    tables: Tables, run_date: date, out: str | Path | None, env: str = "local"
) -> Path:
    """Write the page (default `<warehouse>/_reports/report-<date>.html`); return its path."""
    path = local_report_path(tables.warehouse, run_date, out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(build_report(tables, run_date, env).render(), encoding="utf-8")
    return path
