"""Where one job's quality gates spend their time: the job run with gates on and off in turn.

    .venv/bin/python bench/gate_phases.py --job silver.sales --scale 0.1 --rounds 3

One generated day; every job before `--job` (bronze and silver) runs once into a prepared
warehouse, then `--job` runs on a fresh copy of it per run, in one warm session, gates on and
then off (`bench/pipeline.py`'s pass-through) each round. Prints one JSON line per run: its
seconds, its Spark jobs (the job's group in `statusTracker`) and, per phase, Python-side
seconds and Spark jobs (gate internals, table writes, the ops.dq_results commit, data docs).
The first round pays the JVM's warm-up: read the later ones.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench.pipeline as pipeline
from lakehouse import runtime
from lakehouse.config import Paths, load_settings
from lakehouse.datagen import generate
from lakehouse.quality import gate, results
from lakehouse.registry import build_registry, in_order
from lakehouse.runtime import run_job
from lakehouse.spark import build_session
from lakehouse.tables import Tables

PHASES = {
    (gate, "_row_level_results"): "gate: judging row-level rules",
    (gate, "validate_with_gx"): "gate: GX, table-level rules",
    (results, "_flush"): "ops.dq_results commit",
    (results, "_build_docs"): "data docs",
    **{(Tables, m): f"Tables.{m}" for m in ("append", "upsert", "replace_where")},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", default="silver.sales")
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="write every run's figures here too")
    args = parser.parse_args(argv)
    os.environ.setdefault("LAKEHOUSE_PII_SALT", "bench-salt-0123456789abcdef")
    root = Path(tempfile.mkdtemp(prefix="lakehouse-gates-"))
    landing, prepared = root / "landing", root / "prepared"
    day = date(2026, 3, 1)
    generate(landing, scale=args.scale, days=1, start=day, seed=42)
    base = load_settings("local")

    def settings_for(warehouse: Path):
        paths = Paths(landing=str(landing), warehouse=str(warehouse))
        return base.model_copy(update={"paths": paths})

    spark = build_session(settings_for(prepared), "bench-gate-phases")
    jobs = in_order(build_registry(settings_for(prepared)))
    names = [j.name for j in jobs]
    if args.job not in names:
        parser.error(f"no job {args.job!r}; the registry has {', '.join(names)}")
    target = jobs[names.index(args.job)]
    for job in jobs[: names.index(args.job)]:
        if job.name.split(".")[0] in ("bronze", "silver"):
            run_job(job, settings_for(prepared), spark, day)

    group = {"id": None}
    real_new_run_id = runtime.new_run_id

    def new_run_id() -> str:
        group["id"] = real_new_run_id()
        return group["id"]

    runtime.new_run_id = new_run_id

    def spark_jobs() -> int:
        tracker = spark.sparkContext.statusTracker()
        return len(tracker.getJobIdsForGroup(group["id"])) if group["id"] else 0

    seconds: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)

    def timed(real: Callable, label: str) -> Callable:
        def wrapper(*a, **k):
            started, before = time.monotonic(), spark_jobs()
            try:
                return real(*a, **k)
            finally:
                seconds[label] += time.monotonic() - started
                counts[label] += spark_jobs() - before

        return wrapper

    for (owner, name), label in PHASES.items():
        setattr(owner, name, timed(getattr(owner, name), label))
    # The jobs' own references to run_gate / record_results, to put back after a gates-off run.
    hooks = ("run_gate", "record_results")
    originals = {
        module: {a: getattr(module, a) for a in hooks if hasattr(module, a)}
        for module in list(sys.modules.values())
        if getattr(module, "__name__", "").startswith("lakehouse")
    }
    figures = []
    for round_ in range(args.rounds):
        for gates in (True, False):
            if not gates:
                pipeline.gates_off()
            warehouse = root / f"run-{round_}-{'on' if gates else 'off'}"
            shutil.copytree(prepared, warehouse)
            for db in spark.catalog.listDatabases():  # registered at the prepared paths
                for table in spark.catalog.listTables(db.name):
                    spark.sql(f"DROP TABLE IF EXISTS {db.name}.{table.name}")
            seconds.clear()
            counts.clear()
            started = time.monotonic()
            run_job(target, settings_for(warehouse), spark, day)
            row = {
                "job": args.job,
                "round": round_,
                "gates": gates,
                "seconds": round(time.monotonic() - started, 2),
                "spark_jobs": spark_jobs(),
                **{k: f"{v:.2f} s / {counts[k]} jobs" for k, v in sorted(seconds.items())},
            }
            print(json.dumps(row, ensure_ascii=False), flush=True)
            figures.append(row)
            for module, attrs in originals.items():
                for name, value in attrs.items():
                    setattr(module, name, value)
    spark.stop()
    shutil.rmtree(root, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
