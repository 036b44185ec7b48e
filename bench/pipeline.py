"""End-to-end benchmark: a generated landing zone through every job of every day, timed.

    .venv/bin/python bench/pipeline.py --scale 1 --days 1
    .venv/bin/python bench/pipeline.py --scale 0.1 --days 1 --no-gates     # the gate cost
    .venv/bin/python bench/pipeline.py --scale 0.1 --days 7                 # incremental vs full

Prints, per job and in total: wall seconds, rows read and written, rows per second; the peak
resident memory of the driver (the Spark JVM's high-water mark, and Python's); and, in the
same session on the same files, the I/O floor: every landing file read as lines and written as
a Delta table with no transformation at all. The pipeline's time is reported as a multiple of
that floor. With several days, the last day (the daily incremental run on top of the history)
is reported against the whole run from an empty warehouse (what a rebuild of those days costs:
the suite rebuilds by running the days in order). `--no-gates` replaces the quality gates with
a pass-through (every row publishes, nothing is recorded) to measure what the gates cost.
`--json FILE` also writes every figure as JSON (bench/RESULTS.md is made from those).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from lakehouse.config import Paths, load_settings
from lakehouse.datagen import generate
from lakehouse.orchestrate import SUCCEEDED, Outcome, print_progress, run_days
from lakehouse.registry import build_registry
from lakehouse.spark import build_session


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 3, 1))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--dir", help="working folder (default: a temporary one, deleted)")
    parser.add_argument("--no-gates", action="store_true", help="quality gates pass everything")
    parser.add_argument("--no-io-floor", action="store_true", help="skip the I/O floor run")
    parser.add_argument("--shuffle-partitions", type=int, default=None)
    parser.add_argument("--driver-memory", default=None, help="e.g. 8g (default: conf/local.yml)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.scale <= 0 or args.days < 1:
        parser.error("--scale must be > 0 and --days >= 1")
    return args


def gates_off() -> None:
    """Swap every quality gate for a pass-through: `good` is the input, nothing is quarantined,
    no rule is checked and nothing is recorded. For measuring the gates' cost only."""
    from lakehouse.quality import gate, results

    build_registry(load_settings("local"))  # import every job module before patching them
    real_gate, real_record = gate.run_gate, results.record_results

    def run_gate(df, suite_name, *, key_columns, run_id, run_date, policies=None, **_):
        name = suite_name if isinstance(suite_name, str) else suite_name.name
        empty = df.sparkSession.createDataFrame([], gate.QUARANTINE_SCHEMA)
        return gate.GateOutcome(
            table=name,
            run_id=run_id,
            run_date=run_date,
            good=df,
            quarantined=empty,
            results=[],
            checked_at=datetime.now(UTC).replace(tzinfo=None),
            settings=gate._settings(policies),
        )

    def record_results(tables, outcome, **_):
        return None

    for module in list(sys.modules.values()):
        if not getattr(module, "__name__", "").startswith("lakehouse"):
            continue
        if getattr(module, "run_gate", None) is real_gate:
            module.run_gate = run_gate
        if getattr(module, "record_results", None) is real_record:
            module.record_results = record_results


def _kib(path: str, field: str) -> int | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def jvm_peak_mib(spark) -> float | None:
    """The driver JVM's peak resident set (VmHWM): pyspark's gateway process execs into java."""
    proc = getattr(spark.sparkContext._gateway, "proc", None)
    pids = [proc.pid] if proc is not None else []
    for pid in list(pids):  # a launcher that did not exec: look at its children too
        children = Path(f"/proc/{pid}/task/{pid}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
    peaks = [_kib(f"/proc/{pid}/status", "VmHWM") for pid in pids]
    peaks = [p for p in peaks if p]
    return round(max(peaks) / 1024, 1) if peaks else None


def io_floor(spark, landing: Path, out: Path) -> dict:
    """Every landing file read as lines and written as Delta, one table per source folder."""
    files = [
        p
        for p in landing.rglob("*")
        if p.is_file()
        and not any(part.startswith(("_", ".")) for part in p.relative_to(landing).parts)
    ]  # the generator's ground truth (_truth/) is not a delivery
    folders = sorted({p.parent for p in files})
    started = time.monotonic()
    lines = 0
    for i, folder in enumerate(folders):
        frame = spark.read.text([str(f) for f in files if f.parent == folder])
        frame.write.format("delta").mode("overwrite").save(str(out / f"t{i}"))
        lines += spark.read.format("delta").load(str(out / f"t{i}")).count()
    return {
        "seconds": round(time.monotonic() - started, 1),
        "tables": len(folders),
        "lines": lines,
        "bytes": sum(p.stat().st_size for p in files),
    }


def summarise(outcomes: list[Outcome]) -> dict:
    jobs: dict[str, dict] = defaultdict(lambda: {"seconds": 0.0, "rows_read": 0, "written": 0})
    for o in outcomes:
        if o.status != SUCCEEDED:
            continue
        j = jobs[o.job]
        j["seconds"] += o.seconds
        j["rows_read"] += o.rows_read
        j["written"] += o.rows_written + o.rows_quarantined
    for j in jobs.values():
        j["seconds"] = round(j["seconds"], 1)
        j["rows_per_s"] = round(j["rows_read"] / j["seconds"]) if j["seconds"] else None
    return dict(jobs)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="lakehouse-bench-"))
    if root.exists():
        shutil.rmtree(root)
    landing, warehouse = root / "landing", root / "warehouse"
    os.environ.setdefault("LAKEHOUSE_PII_SALT", "bench-salt-0123456789abcdef")
    started = time.monotonic()
    generated = generate(
        landing, scale=args.scale, days=args.days, start=args.start, seed=args.seed
    )
    generate_s = round(time.monotonic() - started, 1)
    data_lines = sum(v.get("data_lines", 0) for v in generated.values() if isinstance(v, dict))

    base = load_settings("local")
    conf = dict(base.spark.conf)
    if args.shuffle_partitions:
        conf["spark.sql.shuffle.partitions"] = str(args.shuffle_partitions)
    if args.driver_memory:
        conf["spark.driver.memory"] = args.driver_memory
    settings = base.model_copy(
        update={
            "paths": Paths(landing=str(landing), warehouse=str(warehouse)),
            "spark": base.spark.model_copy(update={"conf": conf}),
        }
    )
    spark = build_session(settings, "bench-pipeline")
    if args.no_gates:
        gates_off()
    days = [args.start + timedelta(days=i) for i in range(args.days)]
    clock = time.monotonic()
    day_seconds: dict[date, float] = {}

    def report(outcome: Outcome) -> None:
        print_progress(outcome)
        day_seconds[outcome.run_date] = day_seconds.get(outcome.run_date, 0.0) + outcome.seconds

    summary = run_days(settings, spark, days, report=report)
    pipeline_s = round(time.monotonic() - clock, 1)
    jobs = summarise(summary.outcomes)
    floor = None if args.no_io_floor else io_floor(spark, landing, root / "io_floor")
    figures = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, {platform.python_version()}, load "
        + " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "scale": args.scale,
        "days": args.days,
        "gates": not args.no_gates,
        "landing_lines": data_lines,
        "generate_s": generate_s,
        "pipeline_s": pipeline_s,
        "job_s": round(sum(j["seconds"] for j in jobs.values()), 1),
        "ok": summary.ok,
        "jobs": jobs,
        "day_s": {d.isoformat(): round(s, 1) for d, s in day_seconds.items()},
        "io_floor": floor,
        "driver_jvm_peak_mib": jvm_peak_mib(spark),
        "driver_python_peak_mib": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        ),
    }
    spark.stop()
    print_figures(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    if not args.dir:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if summary.ok else 1


def print_figures(f: dict) -> None:
    print(
        f"\n== scale {f['scale']}, {f['days']} day(s), gates {'on' if f['gates'] else 'OFF'}"
        f" — {f['machine']}"
    )
    print(f"{'job':<28}{'seconds':>9}{'rows read':>12}{'rows/s':>9}")
    for name, j in f["jobs"].items():
        print(f"{name:<28}{j['seconds']:>9.1f}{j['rows_read']:>12}{j['rows_per_s'] or 0:>9}")
    print(f"{'total (job time)':<28}{f['job_s']:>9.1f}")
    print(
        f"pipeline wall: {f['pipeline_s']} s for {f['landing_lines']} landing lines "
        f"({f['landing_lines'] / f['pipeline_s']:.0f} lines/s); generation {f['generate_s']} s"
    )
    if f["io_floor"]:
        floor = f["io_floor"]
        print(
            f"I/O floor: {floor['seconds']} s ({floor['lines']} lines, {floor['bytes']} bytes, "
            f"{floor['tables']} tables) — pipeline = {f['pipeline_s'] / floor['seconds']:.1f}x"
        )
    if len(f["day_s"]) > 1:
        last = list(f["day_s"].values())[-1]
        print(
            f"last day (incremental): {last} s = {100 * last / f['job_s']:.1f} % of all "
            f"{f['days']} days from empty ({f['job_s']} s)"
        )
    print(
        f"driver peak RSS: JVM {f['driver_jvm_peak_mib']} MiB, Python "
        f"{f['driver_python_peak_mib']} MiB; all jobs ok: {f['ok']}"
    )


if __name__ == "__main__":
    sys.exit(main())
