"""Benchmark lakehouse.oneid.components against GraphX's ConnectedComponents on one edge table.

    .venv/bin/python bench/oneid.py --nodes 2000000
    .venv/bin/python bench/oneid.py --edges path/to/delta_or_parquet   # src, dst long columns

Without --edges a synthetic graph is generated in Spark, deterministic for a seed: components of
heavy-tailed sizes (random trees plus extra edges, a few self-loops and reversed duplicates), a
few long chains over random ids and a few big stars. It is written to a temporary parquet table
and both implementations start from that same table, so both timings include reading it and end
with every vertex's label materialised. GraphX is called through py4j (its jar ships with
pyspark); the two partitions are compared on the JVM side, nothing is collected to Python.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.config import load_settings
from lakehouse.oneid.components import connected_components
from lakehouse.spark import build_session

GRAPHFRAMES_ELSEWHERE = (
    "GraphFrames is published for Spark 3.5 only, not for this Spark: it is compared in its own "
    "environment by bench/oneid_graphframes.py (make bench-graphframes)."
)


def session(args: argparse.Namespace) -> SparkSession:
    settings = load_settings("local")
    conf = {
        **settings.spark.conf,
        "spark.driver.memory": args.driver_memory,
        "spark.sql.shuffle.partitions": str(args.shuffle_partitions),
        "spark.default.parallelism": str(args.shuffle_partitions),
        # Read by GraphX's Pregel; it only checkpoints once a checkpoint dir is set (after our
        # run, so that connected_components keeps its default local checkpoints).
        "spark.graphx.pregel.checkpointInterval": str(args.graphx_checkpoint_interval),
    }
    spark_settings = settings.spark.model_copy(update={"master": "local[2]", "conf": conf})
    return build_session(settings.model_copy(update={"spark": spark_settings}), "bench-oneid")


# --- synthetic graph ---------------------------------------------------------------------------


def _uniform(seed: int, *parts: Column | int | str) -> Column:
    """A deterministic uniform double in (0, 1] from a hash of its arguments."""
    cols = [p if isinstance(p, Column) else F.lit(p) for p in parts]
    bits = F.xxhash64(F.lit(seed), *cols).bitwiseAND(F.lit((1 << 53) - 1))
    return (bits + 1).cast("double") / float(1 << 53)


def _vertex(seed: int, kind: str, group: Column, index: Column) -> Column:
    """A random-looking 64-bit id, as the One ID graph's hashed identifiers are."""
    return F.xxhash64(F.lit(seed), F.lit(kind), group, index)


def generate(spark: SparkSession, args: argparse.Namespace) -> DataFrame:
    seed = args.seed
    chain_nodes = args.chains * args.chain_length
    star_size = args.star_size if args.star_size is not None else max(args.nodes // 50, 10)
    star_nodes = args.stars * (star_size + 1)
    bulk = args.nodes - chain_nodes - star_nodes
    if bulk < 0:
        raise SystemExit("--nodes is smaller than the chains and stars it must hold")

    # Component sizes ~ 1 + floor(Pareto(alpha)), capped: every node has an edge, as every
    # identifier in a link table does. Enough components for `bulk` nodes (mean size is above
    # 3), then cut at exactly `bulk` nodes by a running total.
    pareto = F.floor(F.pow(_uniform(seed, "size", F.col("id")), -1.0 / args.alpha)).cast("long")
    size = F.least(F.lit(args.max_component), pareto + 1)
    comps = spark.range(bulk // 3 + 16, numPartitions=1).select(
        F.col("id").alias("comp"), size.alias("size")
    )
    comps = (
        comps.withColumn("upto", F.sum("size").over(_running()))
        .where(F.col("upto") - F.col("size") < bulk)
        .select(
            "comp", F.least("size", F.lit(bulk) - (F.col("upto") - F.col("size"))).alias("size")
        )
        .repartition(args.shuffle_partitions)
    )
    nodes = comps.select("comp", F.explode(F.sequence(F.lit(0), F.col("size") - 1)).alias("r"))
    comp, r = F.col("comp"), F.col("r").cast("long")
    me = _vertex(seed, "bulk", comp, r)

    def other(tag: str) -> Column:
        return _vertex(seed, "bulk", comp, F.floor(_uniform(seed, tag, comp, r) * r).cast("long"))

    tree = F.when(r >= 1, F.struct(me.alias("src"), other("parent").alias("dst")))
    extra = F.when(
        (r >= 2) & (_uniform(seed, "extra?", comp, r) <= args.extra_edges),
        F.struct(other("extra").alias("src"), me.alias("dst")),
    )
    reverse = F.when(
        (r >= 1) & (_uniform(seed, "dup?", comp, r) <= 0.02),
        F.struct(other("parent").alias("src"), me.alias("dst")),
    )
    loop = F.when(
        _uniform(seed, "loop?", comp, r) <= 0.01, F.struct(me.alias("src"), me.alias("dst"))
    )
    candidates = F.filter(F.array(tree, extra, reverse, loop), lambda e: e.isNotNull())
    bulk_edges = nodes.select(F.inline(candidates))

    chain_rows = spark.range(chain_nodes).select(
        (F.col("id") / args.chain_length).cast("long").alias("g"),
        (F.col("id") % args.chain_length).alias("i"),
    )
    chains = chain_rows.where(F.col("i") >= 1).select(
        _vertex(seed, "chain", F.col("g"), F.col("i") - 1).alias("src"),
        _vertex(seed, "chain", F.col("g"), F.col("i")).alias("dst"),
    )
    star_rows = spark.range(args.stars * star_size).select(
        (F.col("id") / star_size).cast("long").alias("g"), (F.col("id") % star_size).alias("i")
    )
    stars = star_rows.select(
        _vertex(seed, "star", F.col("g"), F.lit(-1)).alias("src"),
        _vertex(seed, "star", F.col("g"), F.col("i")).alias("dst"),
    )
    return bulk_edges.unionByName(chains).unionByName(stars)


def _running():
    from pyspark.sql import Window

    return Window.orderBy("comp").rowsBetween(Window.unboundedPreceding, Window.currentRow)


# --- the two implementations -------------------------------------------------------------------


def run_ours(edges: DataFrame, checkpoint_every: int) -> tuple[DataFrame, float, int]:
    start = time.perf_counter()
    result = connected_components(edges, checkpoint_every=checkpoint_every)
    result.assignments.count()  # already materialised: cheap, keeps the timing honest
    return result.assignments, time.perf_counter() - start, result.rounds


def run_graphx(spark: SparkSession, edges: DataFrame) -> tuple[DataFrame, float, object]:
    """GraphX's Pregel label propagation, started from the same DataFrame; its vertices come
    back as a DataFrame built on the JVM (id, component)."""
    jvm = spark._jvm
    encoders = jvm.org.apache.spark.sql.Encoders
    pair = encoders.tuple(encoders.LONG(), encoders.LONG())
    int_tag = getattr(getattr(jvm.scala.reflect, "ClassTag$"), "MODULE$").Int()
    memory_only = jvm.org.apache.spark.storage.StorageLevel.MEMORY_ONLY()
    start = time.perf_counter()
    tuples = getattr(edges._jdf, "as")(pair).rdd()
    graph = jvm.org.apache.spark.graphx.Graph.fromEdgeTuples(
        tuples, 1, jvm.scala.Option.empty(), memory_only, memory_only, int_tag
    )
    cc = jvm.org.apache.spark.graphx.lib.ConnectedComponents.run(graph, int_tag, int_tag)
    cc.vertices().count()
    seconds = time.perf_counter() - start
    graph.unpersist(False)
    from pyspark.sql.classic.dataframe import DataFrame as ClassicDataFrame

    jdf = spark._jsparkSession.createDataset(cc.vertices(), pair)
    return ClassicDataFrame(jdf, spark).toDF("id", "component"), seconds, cc


# --- comparison ----------------------------------------------------------------------------------


def checksums(labels: DataFrame) -> tuple[int, int, int, int]:
    """(vertices, components, sum of component sizes squared, hash-sum of (id, component))."""
    row = labels.agg(
        F.count("*"), F.sum(F.xxhash64("id", "component").cast("decimal(38,0)"))
    ).first()
    sizes = labels.groupBy("component").count()
    comp = sizes.agg(F.count("*"), F.sum(F.col("count").cast("decimal(38,0)") ** 2)).first()
    return int(row[0]), int(comp[0]), int(comp[1] or 0), int(row[1] or 0)


def mismatches(a: DataFrame, b: DataFrame) -> int:
    """Vertices whose labels differ or that only one side has (both label with the min id)."""
    joined = a.alias("a").join(b.alias("b"), "id", "full_outer")
    return joined.where(~F.col("a.component").eqNullSafe(F.col("b.component"))).count()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=200_000, help="synthetic graph size")
    parser.add_argument("--edges", help="read this Delta/parquet table (src, dst) instead")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--alpha", type=float, default=1.5, help="component size tail")
    parser.add_argument("--max-component", type=int, default=50_000)
    parser.add_argument("--extra-edges", type=float, default=0.3, help="share with a 2nd edge")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--chain-length", type=int, default=200)
    parser.add_argument("--stars", type=int, default=3)
    parser.add_argument("--star-size", type=int, help="leaves per star (default nodes/50)")
    parser.add_argument("--checkpoint-every", type=int, default=2)
    parser.add_argument("--shuffle-partitions", type=int, default=4)
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--graphx-checkpoint-interval", type=int, default=25)
    parser.add_argument("--skip-graphx", action="store_true")
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument(
        "--write-edges",
        metavar="PATH",
        help="only write the edge table (synthetic, or --edges as src, dst) to PATH as parquet, "
        "for bench/oneid_graphframes.py",
    )
    parser.add_argument(
        "--src", default="src", help="--edges' source column (oneid.links: hub_node)"
    )
    parser.add_argument(
        "--dst", default="dst", help="--edges' target column (oneid.links: other_node)"
    )
    args = parser.parse_args(argv)

    spark = session(args)
    workdir = Path(tempfile.mkdtemp(prefix="bench-oneid-"))
    try:
        if args.edges:
            fmt = "delta" if (Path(args.edges) / "_delta_log").is_dir() else "parquet"
            edges = (
                spark.read.format(fmt)
                .load(args.edges)
                .select(
                    F.col(args.src).cast("long").alias("src"),
                    F.col(args.dst).cast("long").alias("dst"),
                )
            )
            source = f"{fmt} table {args.edges}"
            if args.write_edges:
                edges.repartition(args.shuffle_partitions).write.mode("overwrite").parquet(
                    args.write_edges
                )
                edges = edges.sparkSession.read.parquet(args.write_edges)
        else:
            t = time.perf_counter()
            path = args.write_edges or str(workdir / "edges")
            # Random row order, as a real link table has; a few files so both cores read.
            generated = generate(spark, args)
            generated.orderBy(F.xxhash64("src", "dst")).repartition(
                args.shuffle_partitions
            ).write.mode("overwrite").parquet(path)
            edges = spark.read.parquet(path)
            source = f"generated (seed {args.seed}) in {time.perf_counter() - t:.1f}s"
        n_edges = edges.count()
        log(f"edges ready: {n_edges:,} from {source}")
        if args.write_edges:
            print(f"wrote {n_edges:,} edges to {args.write_edges}")
            return 0

        if not args.no_warmup:  # JIT and first-query costs, paid by neither timing
            # Small, and short chains: Pregel would otherwise spend a superstep per chain link.
            small = {"nodes": 20_000, "chain_length": min(args.chain_length, 20), "star_size": 400}
            warm = generate(spark, argparse.Namespace(**{**vars(args), **small}))
            warm = warm.localCheckpoint()
            log(f"warm-up graph: {warm.count():,} edges")
            log(f"warm-up: ours {run_ours(warm, args.checkpoint_every)[1]:.1f}s")

        ours, ours_s, rounds = run_ours(edges, args.checkpoint_every)
        log(f"ours: {ours_s:.1f}s, {rounds} rounds")
        ours_sums = checksums(ours)

        graphx_s: float | None = None
        identical = "n/a (GraphX skipped)"
        if not args.skip_graphx:
            # Without checkpoints Pregel's lineage grows with every superstep (minutes even on the
            # warm-up graph); set only now, as it would switch ours to reliable checkpoints.
            spark.sparkContext.setCheckpointDir(str(workdir / "graphx-checkpoints"))
            if not args.no_warmup:
                log(f"warm-up: GraphX {run_graphx(spark, warm)[1]:.1f}s")
            gx, graphx_s, _ = run_graphx(spark, edges)
            log(f"GraphX: {graphx_s:.1f}s")
            gx_sums = checksums(gx)
            bad = mismatches(ours, gx)
            same = gx_sums == ours_sums and bad == 0
            identical = "yes" if same else f"NO ({bad} vertices differ; {gx_sums} vs {ours_sums})"

        vertices, components, squares, _ = ours_sums
        print()
        print(f"source       {source}")
        print(f"machine      local[2], driver {args.driver_memory}, load {os.getloadavg()[0]:.1f}")
        print(f"nodes        {vertices:,}")
        print(f"edges        {n_edges:,} (rows, incl. self-loops and duplicates)")
        print(f"components   {components:,} (sum of sizes squared {squares:,})")
        print()
        print(f"{'implementation':<38}{'seconds':>9}  rounds")
        print(f"{'lakehouse connected_components':<38}{ours_s:>9.1f}  {rounds}")
        gx_cell = f"{graphx_s:>9.1f}" if graphx_s is not None else f"{'skipped':>9}"
        print(f"{'GraphX lib.ConnectedComponents':<38}{gx_cell}  (Pregel, ~diameter supersteps)")
        print()
        print(f"partitions identical: {identical}")
        print(GRAPHFRAMES_ELSEWHERE)
        return 0 if identical in ("yes", "n/a (GraphX skipped)") else 1
    finally:
        spark.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
