"""Benchmark lakehouse.oneid.components against GraphFrames' connectedComponents, one engine.

    make bench-graphframes BENCH_NODES=2000000         # builds the side environment, then runs
    .venv-graphframes/bin/python bench/oneid_graphframes.py --edges path/to/parquet

GraphFrames is published for Spark 3.5 (io.graphframes:graphframes-spark3_2.12) and not for the
Spark 4 the suite runs on, so this script runs in its own environment (`.venv-graphframes/`:
pyspark 3.5 and graphframes-py, see bench/graphframes/setup.sh). Both implementations run there,
in one local[2] session on the same edge table: GraphFrames' default algorithm, the same
alternating large-star / small-star as ours, once with local checkpoints (as ours uses when no
checkpoint dir is set) and once with its defaults (reliable checkpoints every 2 rounds).
`connected_components` is loaded from its source file, which needs only pyspark. Both label a
component with its smallest id, so the two partitions are compared vertex by vertex.

Its GraphX module (io.graphframes:graphframes-graphx-spark3_2.12) is not served to this machine;
it is Spark's GraphX under another package name, which the default algorithm never calls, so
setup.sh relocates Spark 3.5's own spark-graphx jar to that name (maven-shade-plugin) for the
classes to link.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

ROOT = Path(__file__).resolve().parents[1]
COMPONENTS = ROOT / "src" / "lakehouse" / "oneid" / "components.py"


def load_components():
    """Our module, from its file: importing the package would need the suite's Spark 4 stack."""
    spec = importlib.util.spec_from_file_location("lakehouse_oneid_components", COMPONENTS)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {COMPONENTS}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def session(args: argparse.Namespace) -> SparkSession:
    jar = Path(args.jar)
    if not jar.is_file():
        raise SystemExit(f"{jar} does not exist: run bench/graphframes/setup.sh first")
    return (
        SparkSession.builder.master("local[2]")
        .appName("bench-oneid-graphframes")
        .config("spark.jars", str(jar))
        .config("spark.driver.memory", args.driver_memory)
        .config("spark.sql.shuffle.partitions", str(args.shuffle_partitions))
        .config("spark.default.parallelism", str(args.shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )


def run_ours(components, edges: DataFrame, checkpoint_every: int) -> tuple[DataFrame, float, int]:
    start = time.perf_counter()
    result = components.connected_components(edges, checkpoint_every=checkpoint_every)
    result.assignments.count()  # already materialised: cheap, keeps the timing honest
    return result.assignments, time.perf_counter() - start, result.rounds


# GraphFrames' settings tried: (name, local checkpoints, broadcastThreshold). Its docs recommend
# -1 (no manual broadcast of big components, AQE handles the skew) over the 1,000,000 default.
VARIANTS = [
    ("local checkpoints", True, 1_000_000),
    ("local checkpoints, broadcastThreshold -1", True, -1),
    ("defaults (checkpoint dir)", False, 1_000_000),
]


def run_graphframes(
    edges: DataFrame, local_checkpoints: bool, broadcast_threshold: int
) -> tuple[DataFrame, float]:
    """GraphFrames from the same edge table; its vertices are the endpoints, as ours are."""
    from graphframes import GraphFrame

    start = time.perf_counter()
    vertices = edges.select(F.col("src").alias("id")).union(edges.select("dst")).distinct()
    graph = GraphFrame(vertices, edges)
    labels = graph.connectedComponents(
        algorithm="graphframes",
        use_local_checkpoints=local_checkpoints,
        broadcastThreshold=broadcast_threshold,
    ).persist()
    labels.count()
    return labels.select("id", "component"), time.perf_counter() - start


def checksums(labels: DataFrame) -> tuple[int, int, int]:
    """(vertices, components, hash-sum of (id, component))."""
    row = labels.agg(
        F.count("*"),
        F.countDistinct("component"),
        F.sum(F.xxhash64("id", "component").cast("decimal(38,0)")),
    ).first()
    return int(row[0]), int(row[1]), int(row[2] or 0)


def mismatches(a: DataFrame, b: DataFrame) -> int:
    """Vertices whose labels differ or that only one side has."""
    joined = a.alias("a").join(b.alias("b"), "id", "full_outer")
    return joined.where(~F.col("a.component").eqNullSafe(F.col("b.component"))).count()


def _indices(text: str) -> list[int]:
    try:
        indices = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        indices = []
    if not indices or any(not 0 <= i < len(VARIANTS) for i in indices):
        raise SystemExit(f"--variants takes indices 0..{len(VARIANTS) - 1} separated by commas")
    return indices


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edges", required=True, help="parquet table with src, dst (long)")
    parser.add_argument("--warmup-edges", help="a small parquet table run first by both, untimed")
    parser.add_argument("--jar", default=str(ROOT / "bench/graphframes/target/graphframes.jar"))
    parser.add_argument("--checkpoint-every", type=int, default=2)
    parser.add_argument("--shuffle-partitions", type=int, default=4)
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument(
        "--variants",
        default=",".join(str(i) for i in range(len(VARIANTS))),
        help="which GraphFrames settings to run, by index: "
        + "; ".join(f"{i} = {name}" for i, (name, _, _) in enumerate(VARIANTS)),
    )
    args = parser.parse_args(argv)

    components = load_components()
    spark = session(args)
    spark.sparkContext.setLogLevel("ERROR")
    workdir = Path(tempfile.mkdtemp(prefix="bench-graphframes-"))
    try:
        edges = spark.read.parquet(args.edges).select(
            F.col("src").cast("long"), F.col("dst").cast("long")
        )
        n_edges = edges.count()
        log(f"edges: {n_edges:,} from {args.edges} (Spark {spark.version})")
        if args.warmup_edges:  # JIT and first-query costs, paid by no timing
            warm = spark.read.parquet(args.warmup_edges).localCheckpoint()
            log(f"warm-up: ours {run_ours(components, warm, args.checkpoint_every)[1]:.1f}s")
            log(f"warm-up: GraphFrames {run_graphframes(warm, True, -1)[1]:.1f}s")

        ours, ours_s, rounds = run_ours(components, edges, args.checkpoint_every)
        log(f"ours: {ours_s:.1f}s, {rounds} rounds")
        ours_sums = checksums(ours)
        results = []
        # Reliable checkpoints last: a checkpoint dir would switch ours to them as well.
        for index in sorted(set(_indices(args.variants)), key=lambda i: not VARIANTS[i][1]):
            name, local, threshold = VARIANTS[index]
            if not local:
                spark.sparkContext.setCheckpointDir(str(workdir / "checkpoints"))
            labels, seconds = run_graphframes(edges, local, threshold)
            log(f"GraphFrames, {name}: {seconds:.1f}s")
            results.append((name, labels, seconds))

        vertices, n_components, _ = ours_sums
        print()
        print(f"source       parquet table {args.edges}")
        print(f"engine       Spark {spark.version}, local[2], driver {args.driver_memory}")
        print(f"load         {os.getloadavg()[0]:.1f} (1-minute average at the end)")
        print(f"nodes        {vertices:,}")
        print(f"edges        {n_edges:,} (rows, incl. self-loops and duplicates)")
        print(f"components   {n_components:,}")
        print()
        width = 74
        print(f"{'implementation':<{width}}{'seconds':>9}  identical to ours")
        print(f"{f'lakehouse connected_components ({rounds} rounds)':<{width}}{ours_s:>9.1f}  -")
        same_everywhere = True
        for name, labels, seconds in results:
            bad = mismatches(ours, labels)
            sums = checksums(labels)
            same = bad == 0 and sums == ours_sums
            same_everywhere &= same
            verdict = "yes" if same else f"NO ({bad} vertices differ)"
            print(
                f"{f'GraphFrames connectedComponents, {name}':<{width}}{seconds:>9.1f}  {verdict}"
            )
        return 0 if same_everywhere else 1
    finally:
        spark.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
