"""One ID accuracy against the generator's ground truth, end to end.

Generates a landing zone (or reuses one), runs bronze, silver and One ID day by day, and prints
pairwise precision and recall over identifier pairs, plus the guards' work and the time per layer.

    .venv/bin/python bench/oneid_accuracy.py --dir data/bench-oneid --scale 1 --days 7
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="data/bench-oneid")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 3, 1))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--driver-memory", default="6g")
    args = parser.parse_args()

    root = Path(args.dir).resolve()
    landing, warehouse = root / "landing", root / "warehouse"
    os.environ["LAKEHOUSE_LANDING"] = str(landing)
    os.environ["LAKEHOUSE_WAREHOUSE"] = str(warehouse)

    from lakehouse.config import load_settings
    from lakehouse.datagen import generate
    from lakehouse.oneid.accuracy import pair_scores
    from lakehouse.registry import build_registry, in_order
    from lakehouse.runtime import run_job
    from lakehouse.spark import build_session
    from lakehouse.tables import Tables

    if not (landing / "_truth").is_dir():
        started = time.monotonic()
        generate(landing, scale=args.scale, days=args.days, start=args.start, seed=args.seed)
        took = time.monotonic() - started
        print(f"generated scale {args.scale} x {args.days} days in {took:.0f}s")
    settings = load_settings("local")
    conf = {**settings.spark.conf, "spark.driver.memory": args.driver_memory}
    spark = build_session(
        settings.model_copy(update={"spark": settings.spark.model_copy(update={"conf": conf})})
    )
    tables = Tables(spark, settings.warehouse)
    jobs = in_order(build_registry(settings))
    per_layer: dict[str, float] = defaultdict(float)
    for offset in range(args.days):
        day = args.start + timedelta(days=offset)
        for job in jobs:
            started = time.monotonic()
            result = run_job(job, settings, spark, day)
            seconds = time.monotonic() - started
            per_layer[job.layer] += seconds
            if job.layer == "oneid":
                print(f"{day} {job.name:<14} {seconds:6.1f}s {result.details}", flush=True)
        print(f"{day} done; seconds so far per layer: {dict(per_layer)}", flush=True)

    with (landing / "_truth" / "identifiers.csv").open(encoding="utf-8", newline="") as fh:
        truth_rows = [
            (r["person_id"], r["identifier_type"], r["value"]) for r in csv.DictReader(fh)
        ]
    truth = spark.createDataFrame(
        truth_rows, "person_id string, identifier_type string, value string"
    )
    scores = pair_scores(tables.read("oneid", "identity_map"), truth)
    suppressed = (
        tables.read("oneid", "suppressed_identifiers")
        .groupBy("identifier_type", "reason")
        .count()
        .orderBy("identifier_type", "reason")
        .collect()
    )
    print(f"\nscale {args.scale}, {args.days} days, seed {args.seed}")
    print(f"One ID against the truth: {scores}")
    print("suppressed: " + ", ".join(f"{r[0]}/{r[1]}={r[2]}" for r in suppressed))
    print("seconds per layer: " + ", ".join(f"{k} {v:.0f}" for k, v in per_layer.items()))


if __name__ == "__main__":
    main()
