"""`lakehouse`: generate landing data, list and run jobs, fetch jars, run the demo.

Exit codes: 0 success, 1 a job failed, 2 bad arguments or configuration. A failure prints one
line saying why (set LAKEHOUSE_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import shutil
import sys
import threading
import time
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

from lakehouse.config import ConfigError, Settings, load_settings


class UsageError(ValueError):
    """Arguments that cannot be used."""


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in YYYY-MM-DD form") from None


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lakehouse", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser(
        "generate", help="write a synthetic landing zone that follows the contract"
    )
    gen.add_argument("--out", required=True, help="folder to write (must be empty or absent)")
    gen.add_argument("--scale", type=_positive_float, default=1.0)
    gen.add_argument("--days", type=_positive_int, default=90)
    gen.add_argument("--start", type=_date, default=date(2026, 3, 1))
    gen.add_argument("--seed", type=int, default=42)

    run = sub.add_parser("run", help="run one job for one logical date")
    run.add_argument("job", help="job name, see `lakehouse jobs`")
    _add_run_args(run)

    run_all = sub.add_parser(
        "run-all",
        help="run every daily job (bronze to gold) for a day or a range of days, resuming",
    )
    when = run_all.add_mutually_exclusive_group(required=True)
    when.add_argument("--run-date", type=_date, help="one logical date YYYY-MM-DD")
    when.add_argument("--from", dest="start", type=_date, help="first day of a backfill")
    run_all.add_argument("--to", dest="end", type=_date, help="last day of a backfill")
    run_all.add_argument(
        "--layers", default=None, help="comma-separated layers to run (default: all)"
    )
    run_all.add_argument(
        "--rerun",
        action="store_true",
        help="run every job again, also those whose last run for the day succeeded",
    )
    run_all.add_argument("--env", default=None)

    layer = sub.add_parser("run-layer", help="run every job of a layer, day by day")
    layer.add_argument("layer", choices=["bronze", "silver", "oneid", "gold", "all"])
    layer.add_argument("--from", dest="start", type=_date, required=True)
    layer.add_argument("--to", dest="end", type=_date, required=True)
    layer.add_argument("--env", default=None)

    oneid = sub.add_parser("oneid", help="One ID tools")
    oneid_sub = oneid.add_subparsers(dest="oneid_command", required=True)
    explain = oneid_sub.add_parser(
        "explain", help="show the chain of records that links two identifiers, or why not"
    )
    explain.add_argument("first", help="identifier as type:value, e.g. phone:13800138000")
    explain.add_argument("second", help="identifier as type:value, e.g. email:a@b.cn")
    explain.add_argument("--env", default=None)

    from lakehouse.gold.people import audience_cli

    audience_cli.add_parser(sub)

    _add_erase_parser(sub)

    jobs = sub.add_parser("jobs", help="list the job registry")
    jobs.add_argument("--env", default=None)

    fetch = sub.add_parser("fetch-jars", help="resolve Delta's jars once into the jar cache")
    fetch.add_argument("--env", default=None)

    sub.add_parser("packages", help="print the --packages coordinates for spark-submit")

    report = sub.add_parser(
        "report", help="write one self-contained HTML page of a day: sales, members, quality"
    )
    report.add_argument("--run-date", type=_date, required=True, help="logical date YYYY-MM-DD")
    report.add_argument("--out", default=None, help="HTML file (default under the warehouse)")
    report.add_argument("--env", default=None)

    summary = sub.add_parser("summary", help="print what landed in bronze and what was quarantined")
    summary.add_argument("--env", default=None)

    demo = sub.add_parser(
        "demo",
        help="generate a small landing zone, run every layer, create audiences, write a report",
    )
    demo.add_argument("--dir", default="data/demo", help="demo folder (replaced)")
    demo.add_argument("--scale", type=_positive_float, default=0.05)
    demo.add_argument("--days", type=_positive_int, default=3)
    demo.add_argument("--start", type=_date, default=date(2026, 3, 1))
    demo.add_argument("--seed", type=int, default=42)
    return parser


def _add_erase_parser(sub: argparse._SubParsersAction) -> None:
    erase = sub.add_parser(
        "erase",
        help="erase one person from every layer, bronze included, and prove no file holds them",
    )
    who = erase.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--identifier",
        action="append",
        metavar="TYPE:VALUE",
        help="an identifier of the person, e.g. phone:13800138000 (repeatable)",
    )
    who.add_argument("--one-id", help="the person's one_id, e.g. OID00000000075BCD15")
    erase.add_argument(
        "--reason", default=None, help="kept in ops.erasure_log: a ticket number, no personal data"
    )
    erase.add_argument(
        "--dry-run", action="store_true", help="print what would be erased; change nothing"
    )
    erase.add_argument("--env", default=None)


def _erase(args: argparse.Namespace, settings: Settings) -> int:
    """`lakehouse erase`: 0 erased (or nothing left after an earlier erasure), 1 unknown person
    or traces left, 2 a malformed request or no PII salt (unless --dry-run)."""
    from lakehouse.privacy import ErasureError, erase, parse_target

    try:
        target = parse_target(args.identifier or [], args.one_id, settings.oneid.by_priority())
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not args.dry_run:
        # Checked before the session: the log's hashes need the salt, and without it the
        # erasure would stop only after Spark started and the person was looked up.
        _require_pii_salt(settings)
    spark = _session(settings, command="erase")
    try:
        result = erase(spark, settings, target, reason=args.reason, dry_run=args.dry_run)
    except ErasureError as exc:
        print(f"lakehouse: error: {exc}", file=sys.stderr)
        return 1
    print(result.describe())
    return result.exit_code


def _add_run_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-date", type=_date, required=True, help="logical date YYYY-MM-DD")
    parser.add_argument(
        "--env", default=None, help="conf overlay (default: LAKEHOUSE_ENV or local)"
    )


# Commands that run jobs, hence gates: Great Expectations takes ~6 s of one core to import, and
# every job process (spark-submit, an Airflow task) pays it at its first gate. Imported on a
# thread while the JVM starts instead. (`demo` starts its own session in _demo, gated too.)
GATED_COMMANDS = frozenset({"run", "run-all", "run-layer", "audience"})


# Commands with no spark-submit script: on an edge node they may take the master pyspark's own
# launcher finds (spark-defaults.conf, PYSPARK_SUBMIT_ARGS) with --env cluster.
CLI_ONLY_COMMANDS = frozenset({"report", "erase", "audience", "summary", "oneid"})


def _session(settings: Settings, gated: bool = False, command: str | None = None):
    from lakehouse.spark import build_session

    launcher_ok = command in CLI_ONLY_COMMANDS
    if not gated:
        return build_session(settings, launcher_master_ok=launcher_ok)
    # The session's first Python-to-Java conversion imports pandas (pyspark.sql.types imports
    # pyspark.testing.utils); imported first, the session start imports nothing the thread
    # imports too, so the two never wait on each other's import locks (a deadlock if in a cycle).
    importlib.import_module("pyspark.testing.utils")
    gates = threading.Thread(target=_import_gates, name="import-gates")
    gates.start()
    try:
        return build_session(settings, launcher_master_ok=launcher_ok)
    finally:
        gates.join()


def _fetch_jars(settings: Settings) -> int:
    """Resolve Delta's jars into the environment's jar cache, whatever its master and
    `delta_jars` say: with `--env cluster` (`provided`, no master) the session resolved
    nothing, yet the command said the jars were ready and left no manifest for `--jars`."""
    from lakehouse.spark import cached_jars, delta_package

    spark_settings = settings.spark.model_copy(update={"master": "local[1]", "delta_jars": "cache"})
    resolving = settings.model_copy(update={"spark": spark_settings})
    _session(resolving).range(1).collect()
    jars = cached_jars(resolving)
    if not jars:
        print(
            f"lakehouse: error: {delta_package()} was not resolved into {settings.spark.jar_cache}",
            file=sys.stderr,
        )
        return 1
    print(
        f"Delta jars ready: {delta_package()} ({len(jars)} jars listed for --jars under "
        f"{settings.spark.jar_cache})"
    )
    return 0


def _import_gates() -> None:
    # A failed import is not cached: the first gate imports it again and raises it there.
    with contextlib.suppress(Exception):
        importlib.import_module("lakehouse.quality.results")


def _run_one(settings: Settings, spark, name: str, run_date: date) -> bool:
    from lakehouse.registry import get_job
    from lakehouse.runtime import run_job

    job = get_job(settings, name)
    started = time.monotonic()
    try:
        result = run_job(job, settings, spark, run_date)
    except Exception as exc:
        from lakehouse.orchestrate import traceback_when_debugging

        traceback_when_debugging(exc)
        print(f"{name:<28} {run_date}  FAILED  {_one_line(exc)}", file=sys.stderr)
        return False
    print(
        f"{name:<28} {run_date}  ok  read {result.rows_read:>8}  written {result.rows_written:>8}"
        f"  quarantined {result.rows_quarantined:>6}  {time.monotonic() - started:6.1f}s"
    )
    return True


def _days(start: date, end: date) -> list[date]:
    if end < start:
        raise UsageError(f"--to {end} is before --from {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _print_summary(settings: Settings, spark) -> None:
    from lakehouse.bronze.summary import delivery_summary, format_table, quarantine_reasons
    from lakehouse.tables import Tables

    tables = Tables(spark, settings.warehouse)
    if not tables.exists("bronze", "ingested_files"):
        print("nothing has landed in bronze yet")
        return
    summary = [
        r.asDict() for r in delivery_summary(tables.read("bronze", "ingested_files")).collect()
    ]
    cols = ["dataset", "files", "redelivered", "unrecognized", "data_lines", "rows", "quarantined"]
    print("\nBronze: what landed (data lines = rows + quarantined, per file)")
    print(format_table(summary, cols))
    reasons = [
        r.asDict() for r in quarantine_reasons(tables.read("bronze", "quarantine")).collect()
    ]
    print("\nBronze quarantine by reason")
    print(format_table(reasons, ["dataset", "reason", "lines"]) if reasons else "(none)")
    if tables.exists("silver", "reconciliation"):
        _print_silver(tables)
    if tables.exists("oneid", "identity_map"):
        _print_oneid(tables)
    if tables.exists("gold", "member_portrait"):
        _print_gold(tables)
    print(f"\nTables under {settings.warehouse}")


def _print_gold(tables) -> None:
    from pyspark.sql import functions as F

    from lakehouse.bronze.summary import format_table

    portrait = tables.read("gold", "member_portrait")
    stages = [
        r.asDict()
        for r in portrait.groupBy(F.col("lifecycle_stage_cn").alias("stage"))
        .count()
        .orderBy(F.col("count").desc())
        .collect()
    ]
    print(f"\nGold: {portrait.count()} member portraits; lifecycle stages")
    print(format_table(stages, ["stage", "count"]))
    if tables.exists("gold", "store_monthly"):
        top = [
            r.asDict()
            for r in tables.read("gold", "store_monthly")
            .orderBy(F.col("net_sales").desc())
            .select("month", "store_code", "net_sales", "margin_rate", "sales_per_sqm")
            .limit(5)
            .collect()
        ]
        print("\nTop stores by net sales (gold.store_monthly)")
        print(
            format_table(top, ["month", "store_code", "net_sales", "margin_rate", "sales_per_sqm"])
        )


def _print_oneid(tables) -> None:
    from pyspark.sql import functions as F

    from lakehouse.bronze.summary import format_table

    identity_map = tables.read("oneid", "identity_map")
    people = identity_map.select("one_id").distinct().count()
    print(f"\nOne ID: {identity_map.count()} identifiers of {people} people")
    sizes = tables.read("oneid", "component_sizes")
    last = sizes.agg(F.max("run_date")).first()[0]
    rows = [
        r.asDict()
        for r in sizes.where(F.col("run_date") == F.lit(last))
        .orderBy("smallest")
        .select("size_bucket", "components", "identifiers", "largest")
        .collect()
    ]
    print(f"Component sizes after {last}")
    print(format_table(rows, ["size_bucket", "components", "identifiers", "largest"]))
    if tables.exists("oneid", "suppressed_identifiers"):
        reasons = [
            r.asDict()
            for r in tables.read("oneid", "suppressed_identifiers")
            .groupBy("identifier_type", "reason")
            .agg(F.count(F.lit(1)).alias("values"))
            .orderBy("identifier_type", "reason")
            .collect()
        ]
        print("Values that link nothing (shared, store phones, placeholders)")
        print(
            format_table(reasons, ["identifier_type", "reason", "values"]) if reasons else "(none)"
        )
    if tables.exists("oneid", "one_id_history"):
        events = [
            r.asDict()
            for r in tables.read("oneid", "one_id_history")
            .groupBy("event")
            .agg(F.count(F.lit(1)).alias("changes"))
            .orderBy("event")
            .collect()
        ]
        print("one_id history (merges, splits)")
        print(format_table(events, ["event", "changes"]) if events else "(none)")


def _print_silver(tables) -> None:
    from pyspark.sql import functions as F

    from lakehouse.bronze.summary import format_table

    names = [
        "orders",
        "order_lines",
        "members",
        "identities",
        "inventory_daily",
        "products",
        "stores",
        "sku_map",
        "campaigns",
        "campaign_touches",
    ]
    sizes = [
        {"table": f"silver.{n}", "rows": tables.read("silver", n).count()}
        for n in names
        if tables.exists("silver", n)
    ]
    print("\nSilver tables")
    print(format_table(sizes, ["table", "rows"]))
    rec = (
        tables.read("silver", "reconciliation")
        .groupBy("dataset")
        .agg(
            *[
                F.sum(c).alias(c)
                for c in ("bronze_rows", "accepted_rows", "duplicate_rows", "quarantined_rows")
            ]
        )
        .orderBy("dataset")
    )
    print("\nSilver sales reconciliation (bronze = accepted + duplicates + quarantined)")
    print(
        format_table(
            [r.asDict() for r in rec.collect()],
            ["dataset", "bronze_rows", "accepted_rows", "duplicate_rows", "quarantined_rows"],
        )
    )
    reasons = (
        tables.read("silver", "quarantine")
        .groupBy("table", "expectation")
        .agg(F.count(F.lit(1)).alias("rows"))
        .orderBy("table", "expectation")
    )
    print("\nSilver quarantine by rule")
    print(format_table([r.asDict() for r in reasons.collect()], ["table", "expectation", "rows"]))


DEMO_PARTS = ("landing", "warehouse")


def _demo(args: argparse.Namespace) -> int:
    from lakehouse.datagen import generate

    root = Path(args.dir).resolve()
    if root.exists():
        # Only what an earlier demo left is removed: `--dir data` or `--dir ~` must not wipe a
        # real landing zone and warehouse or a home folder.
        others = sorted(p.name for p in root.iterdir() if p.name not in DEMO_PARTS)
        if not root.is_dir() or others:
            raise UsageError(
                f"--dir {root} holds more than a demo's {' and '.join(DEMO_PARTS)}/ "
                f"({', '.join(others[:5]) or 'it is a file'}): not removing it; "
                "give a new or empty folder"
            )
        shutil.rmtree(root)
    landing, warehouse = root / "landing", root / "warehouse"
    os.environ["LAKEHOUSE_LANDING"] = str(landing)
    os.environ["LAKEHOUSE_WAREHOUSE"] = str(warehouse)
    if not os.environ.get("LAKEHOUSE_PII_SALT"):
        # Gold hashes phones and emails with a salt from the environment, never from the repo;
        # a demo on generated people may invent one (a real run must set its own, kept secret).
        import secrets

        os.environ["LAKEHOUSE_PII_SALT"] = secrets.token_hex(16)
        print("LAKEHOUSE_PII_SALT is not set: the demo uses a random salt for this run.")
    settings = load_settings("local")
    started = time.monotonic()
    print(f"Generating landing data: scale {args.scale}, {args.days} days from {args.start} ...")
    generate(landing, scale=args.scale, days=args.days, start=args.start, seed=args.seed)
    print(f"  written to {landing} in {time.monotonic() - started:.1f}s")
    spark = _session(settings, gated=True)
    last = args.start + timedelta(days=args.days - 1)
    ok = _run_layer(settings, spark, _days(args.start, last))
    _print_summary(settings, spark)
    from lakehouse.tables import Tables

    tables = Tables(spark, settings.warehouse)
    if tables.exists("gold", "member_portrait"):
        _demo_audiences(settings, spark, tables)
    from lakehouse.report import write_report

    report = write_report(tables, last, None, settings.env)
    print(f"\nReport of {last}: {report}")
    print(f"Demo finished in {time.monotonic() - started:.1f}s")
    return 0 if ok else 1


DEMO_AUDIENCES = (
    ("repeat_buyers", "lifecycle_stage_cn IN ('复购', '忠诚')"),
    ("important_customers", "rfm_segment LIKE '重要%'"),
    ("members_never_bought", "is_member AND purchase_orders = 0"),
)


def _demo_audiences(settings: Settings, spark, tables) -> None:
    """A few audiences selected by tags, as marketing would (opted-out members never appear)."""
    from lakehouse.gold.people.audience import AudienceError, create

    print("\nAudiences (lakehouse audience create --name NAME --where EXPR)")
    for name, where in DEMO_AUDIENCES:
        try:
            made = create(spark, tables, settings, name, where)
        except AudienceError as exc:  # a gold job failed above: say why, keep the report
            print(f"  {name:<22} not created: {exc}")
            continue
        print(
            f"  {name:<22} {made.members:>6} members  ({made.opted_out_removed} opted out "
            f"removed)  where {where}"
        )


def _run_layer(
    settings: Settings,
    spark,
    days: list[date],
    layers: tuple[str, ...] | None = None,
    *,
    resume: bool = False,
) -> bool:
    """Run the layers' jobs day by day in dependency order and print a summary; a failed job
    skips its dependants (see lakehouse.orchestrate)."""
    from lakehouse.orchestrate import print_progress, run_days
    from lakehouse.registry import LAYER_ORDER

    summary = run_days(
        settings, spark, days, layers or LAYER_ORDER, resume=resume, report=print_progress
    )
    print(summary.describe(), file=sys.stdout if summary.ok else sys.stderr)
    return summary.ok


def _run_all_plan(args: argparse.Namespace) -> tuple[list[date], tuple[str, ...]]:
    """The days and layers `run-all` was asked for: checked before a session starts."""
    from lakehouse.registry import LAYER_ORDER

    if args.run_date is not None:
        if args.end is not None:
            raise UsageError("--to goes with --from, not with --run-date")
        days = [args.run_date]
    else:
        if args.end is None:
            raise UsageError("--from needs --to (the last day of the backfill)")
        days = _days(args.start, args.end)
    layers = LAYER_ORDER
    if args.layers is not None:
        layers = tuple(x.strip() for x in args.layers.split(",") if x.strip())
        if not layers:
            # An empty value (say, an unset Airflow template) must not mean every layer.
            raise UsageError(f"--layers names no layer; one or more of {', '.join(LAYER_ORDER)}")
        unknown = [x for x in layers if x not in LAYER_ORDER]
        if unknown:
            raise UsageError(
                f"unknown layer(s) {', '.join(unknown)}; one of {', '.join(LAYER_ORDER)}"
            )
    return days, layers


def _run_all(args: argparse.Namespace, settings: Settings, spark) -> int:
    days, layers = _run_all_plan(args)
    return 0 if _run_layer(settings, spark, days, layers, resume=not args.rerun) else 1


SALTED_JOB = "gold.member_portrait"


def _require_pii_salt(settings: Settings) -> None:
    """ConfigError (exit 2) unless the PII salt is set."""
    from lakehouse.gold.people.pii import salt
    from lakehouse.runtime import JobError

    try:
        salt(settings.gold.people)
    except JobError as exc:
        raise ConfigError(str(exc)) from None


def _check_before_session(args: argparse.Namespace, settings: Settings) -> None:
    """Mistakes in the command line or conf/quality.yml, reported (exit 2) before a JVM starts
    or, under spark-submit, before the cluster is asked for anything."""
    from lakehouse.runtime import JobError

    needs_salt = False
    if args.command == "run":
        from lakehouse.registry import get_job

        try:
            get_job(settings, args.job)
        except JobError as exc:
            raise UsageError(str(exc)) from None
        needs_salt = args.job == SALTED_JOB
    if args.command == "run-all":
        needs_salt = "gold" in _run_all_plan(args)[1]
    if args.command == "run-layer":
        _days(args.start, args.end)
        needs_salt = args.layer in ("gold", "all")
    if args.command == "audience" and args.audience_command == "export":
        channel = settings.gold.people.export_channels.get(args.channel.upper())
        needs_salt = channel is not None and channel.hash == "salted_sha256"
    if needs_salt:
        # Checked now, not after hours of bronze to One ID (the portrait's hashes need it).
        _require_pii_salt(settings)
    if args.command == "report":
        from lakehouse.report.build import local_report_path

        try:
            local_report_path(settings.warehouse, args.run_date, args.out)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if args.command in GATED_COMMANDS:
        from lakehouse.quality.policy import load_quality_settings

        load_quality_settings()


def _one_line(exc: BaseException) -> str:
    from lakehouse.orchestrate import one_line

    return one_line(exc)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except (ConfigError, UsageError) as exc:
        print(f"lakehouse: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if os.environ.get("LAKEHOUSE_DEBUG"):
            raise
        print(f"lakehouse: error: {_one_line(exc)}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "generate":
        from lakehouse.datagen import GenerateArgumentError, generate

        try:
            summary = generate(
                args.out, scale=args.scale, days=args.days, start=args.start, seed=args.seed
            )
        except GenerateArgumentError as exc:  # a folder that is not empty, a bad scale
            raise UsageError(str(exc)) from None
        files = sum(v.get("files", 0) for v in summary.values())
        lines = sum(v.get("data_lines", 0) for v in summary.values())
        print(f"wrote {files} files, {lines} data lines under {args.out}")
        return 0
    if args.command == "packages":
        from lakehouse.spark import delta_package

        print(delta_package())
        return 0
    if args.command == "demo":
        return _demo(args)
    # Listing the jobs and fetching Delta's jars read and write no table: an edge node that has
    # not set LAKEHOUSE_LANDING / LAKEHOUSE_WAREHOUSE yet can run them with --env cluster.
    settings = load_settings(
        getattr(args, "env", None), paths_needed=args.command not in ("jobs", "fetch-jars")
    )
    if args.command == "jobs":
        from lakehouse.registry import build_registry

        for job in build_registry(settings).values():
            after = f"  (after {', '.join(job.depends_on)})" if job.depends_on else ""
            print(f"{job.name:<28} {job.description}{after}")
        return 0
    if args.command == "fetch-jars":
        return _fetch_jars(settings)
    if args.command == "erase":
        return _erase(args, settings)
    _check_before_session(args, settings)
    spark = _session(settings, gated=args.command in GATED_COMMANDS, command=args.command)
    if args.command == "summary":
        _print_summary(settings, spark)
        return 0
    if args.command == "oneid":
        from lakehouse.oneid.explain import explain
        from lakehouse.tables import Tables

        try:
            text = explain(
                spark, Tables(spark, settings.warehouse), settings.oneid, args.first, args.second
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        print(text)
        return 0
    if args.command == "audience":
        from lakehouse.gold.people import audience_cli

        return audience_cli.dispatch(args, settings, spark)
    if args.command == "run":
        return 0 if _run_one(settings, spark, args.job, args.run_date) else 1
    if args.command == "run-all":
        return _run_all(args, settings, spark)
    if args.command == "report":
        from lakehouse.report import write_report
        from lakehouse.tables import Tables

        tables = Tables(spark, settings.warehouse)
        path = write_report(tables, args.run_date, args.out, settings.env)
        print(f"report written to {path}")
        return 0
    if args.command == "run-layer":
        layers = None if args.layer == "all" else (args.layer,)
        return 0 if _run_layer(settings, spark, _days(args.start, args.end), layers) else 1
    raise UsageError(f"unknown command {args.command}")


def run_job_main(job: str, argv: Sequence[str]) -> int:
    """Entry for the spark-submit scripts under jobs/: `<script> --run-date D [--env E]`."""
    parser = argparse.ArgumentParser(prog=job)
    _add_run_args(parser)
    args = parser.parse_args(argv)
    return main(
        [
            "run",
            job,
            "--run-date",
            args.run_date.isoformat(),
            *(["--env", args.env] if args.env is not None else []),
        ]
    )


def run_all_main(argv: Sequence[str]) -> int:
    """Entry for jobs/run_all.py: every daily job for a day (or --from/--to) in one session."""
    return main(["run-all", *argv])


if __name__ == "__main__":
    sys.exit(main())
