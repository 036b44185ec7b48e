"""Connected components of the One ID graph, distributed, on DataFrames only.

The alternating large-star / small-star algorithm of Kiveris et al. 2014 ("Connected Components
in MapReduce and Beyond"): O(log n) rounds whatever the graph's diameter, where label propagation
(GraphX's Pregel) needs about as many supersteps as the diameter. A round is two shuffles, each
into a window (no joins, no Python UDFs); its action stores the new edges, and one aggregation over
the stored edges says whether anything changed. (Observed metrics would save that pass, but
pyspark offers no timed wait for them and their listeners outlive the query.)

Edges are kept oriented: large-star leaves them pointing from the larger to the smaller id,
small-star from the smaller to the larger. The fixed point is a forest of stars centred on each
component's smallest id, which is GraphFrames' `connectedComponents` labelling. Most One ID
components are small and are finished stars after a round or two; they are recognised (see
`_small_star`) and set aside, so later rounds only shuffle the components still changing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import ByteType, IntegerType, LongType, ShortType

_INTEGRAL = (LongType, IntegerType, ShortType, ByteType)


@dataclass(frozen=True)
class Components:
    """`assignments`: id long, component long (the smallest id of the component), one row per
    vertex, materialised; `rounds`: large+small-star rounds run, the last one being the round
    that changed nothing and so proved convergence."""

    assignments: DataFrame
    rounds: int


def connected_components(
    edges: DataFrame,
    vertices: DataFrame | None = None,
    *,
    src: str = "src",
    dst: str = "dst",
    max_rounds: int = 64,
    checkpoint_every: int = 2,
) -> Components:
    """Label every vertex with the smallest vertex id of its connected component.

    Vertices are the endpoints of `edges` plus the `id` column of `vertices` (isolated vertices
    only exist there). Edges are undirected; self-loops, duplicates and reversed copies are fine.
    A null endpoint raises ValueError: dropping it would silently split a person in two.
    Not converging within `max_rounds` raises RuntimeError rather than return a partial answer.

    `edges` is read twice (null check, first round); `vertices` twice (null check, labelling):
    pass materialised frames.
    """
    if max_rounds < 1:
        raise ValueError(f"max_rounds must be at least 1, got {max_rounds}")
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be at least 1, got {checkpoint_every}")
    edge_list = edges.select(_id_column(edges, src, "edges"), _id_column(edges, dst, "edges"))
    edge_list = edge_list.toDF("src", "dst")
    ids = None if vertices is None else vertices.select(_id_column(vertices, "id", "vertices"))

    spark = edges.sparkSession
    # A reliable checkpoint when the cluster has a checkpoint dir (survives lost executors; its
    # files go only with spark.cleaner.referenceTracking.cleanCheckpoints); otherwise a local one
    # (executor memory/disk), which needs no configuration.
    reliable = spark.sparkContext.getCheckpointDir() is not None
    anchor: DataFrame | None = None  # the last checkpoint: later cached rounds recompute from it
    cached: DataFrame | None = None  # the last round kept with persist()
    _reject_nulls(edge_list, ["src", "dst"], "edges")
    if ids is not None:
        _reject_nulls(ids, ["id"], "vertices")
    work = edge_list.withColumn("stable", F.lit(False))
    finished: list[DataFrame] = []  # done components, each stored once, off the working set
    try:
        for round_no in range(1, max_rounds + 1):
            edges_out = _small_star(_large_star(work))
            if round_no % checkpoint_every == 0:
                edges_out = _checkpoint(edges_out, reliable)
                _release(cached)
                _release(anchor)
                anchor, cached = edges_out, None
            else:
                edges_out = edges_out.persist()
                edges_out.write.format("noop").mode("overwrite").save()  # fills the cache
                _release(cached)
                cached = edges_out
            metrics = edges_out.agg(*_round_metrics()).first().asDict()
            if not metrics["changed"]:
                forest = edges_out.select("src", "dst")
                for piece in finished:
                    forest = forest.unionAll(piece)
                return Components(assignments=_labels(forest, ids, reliable), rounds=round_no)
            if metrics["done"]:
                finished.append(_checkpoint(edges_out.where("done").select("src", "dst"), reliable))
            work = edges_out.where(~F.col("done")).select("src", "dst", "stable")
        raise RuntimeError(
            f"connected_components did not converge within max_rounds={max_rounds}: the last "
            "round still changed the graph; raise max_rounds (rounds grow with log of the "
            "largest component's size)"
        )
    finally:
        for df in (cached, anchor, *finished):
            _release(df)


def _id_column(df: DataFrame, name: str, what: str) -> Column:
    if name not in df.columns:
        raise ValueError(f"{what} has no column {name!r} (columns: {', '.join(df.columns)})")
    dtype = df.schema[name].dataType
    if not isinstance(dtype, _INTEGRAL):
        raise TypeError(f"{what}.{name} must be an integral vertex id (long), not {dtype}")
    return F.col(name).cast("long").alias(name)


def _count_nulls(*names: str) -> Column:
    is_null = F.lit(False)
    for name in names:
        is_null = is_null | F.col(name).isNull()
    return F.count_if(is_null).alias("nulls")


def _round_metrics() -> list[Column]:
    """What a round's action also reports: did any edge move; how many edges are done."""
    return [
        F.coalesce(F.max(F.col("changed").cast("int")), F.lit(0)).alias("changed"),
        F.count_if(F.col("done")).alias("done"),
    ]


def _reject_nulls(df: DataFrame, names: list[str], what: str) -> None:
    count = df.select(_count_nulls(*names)).first()["nulls"]
    if count:
        raise ValueError(
            f"{what} has {count} row(s) with a null {' or '.join(names)}: a null vertex id "
            "cannot be linked; drop or fix those rows before computing components"
        )


def _large_star(edges: DataFrame) -> DataFrame:
    """Each vertex u hangs its larger neighbours on m(u), the smallest of u and its neighbours.

    In: (src, dst, stable), any orientation, duplicates and self-loops allowed. Out: (src, dst,
    changed, done) with src > dst, or src = dst for a vertex whose only edges are self-loops
    (kept so the vertex is not lost). `changed`: the edge moved (u had a smaller neighbour).
    `done`: u is the centre of a finished star (see `_small_star`), so is its whole component.
    """
    both_ways = edges.select(F.col("src").alias("u"), F.col("dst").alias("v"), "stable").unionAll(
        edges.select(F.col("dst").alias("u"), F.col("src").alias("v"), "stable")
    )
    around = Window.partitionBy("u")
    u, v, low, high = F.col("u"), F.col("v"), F.col("low"), F.col("high")
    loop_only = (low == u) & (high == u)
    finished_centre = (low > u) & F.col("all_stable")
    return (
        both_ways.select(
            "u",
            "v",
            F.min("v").over(around).alias("low"),
            F.max("v").over(around).alias("high"),
            F.min("stable").over(around).alias("all_stable"),
        )
        .where((v > u) | loop_only)
        .select(
            v.alias("src"),
            F.least(u, low).alias("dst"),
            (low < u).alias("changed"),
            (finished_centre | loop_only).alias("done"),
        )
    )


def _small_star(edges: DataFrame) -> DataFrame:
    """Each vertex u hangs itself and its smaller neighbours on the smallest of those neighbours.

    In: large-star output. Out: (src, dst, changed, stable, done) with src < dst (src = dst for
    self-loop-only vertices). Duplicates are dropped here (the window's sort puts them side by
    side), keeping the copy that `changed` if any, so the round's change flag is exact.

    `stable`: u's group changed nothing: u's only smaller neighbour was c, and c had none
    smaller. If next round c still has no smaller neighbour and all its edges are stable, c's
    component is a finished star: a leaf with another neighbour would have hung it on c (giving
    c a moved edge or a smaller neighbour), and a neighbour of c with another smaller neighbour
    would have had a changing group. The next large-star then marks it `done`, and later rounds
    leave it out.
    """
    ordered = Window.partitionBy("src").orderBy("dst", F.col("changed").desc())
    group = ordered.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    low = F.col("_low")
    return (
        edges.select(
            "*",
            (~F.lag("dst").over(ordered).eqNullSafe(F.col("dst"))).alias("_first"),
            F.min("dst").over(group).alias("_low"),
            (
                (F.max("dst").over(group) != F.min("dst").over(group))
                | F.max("changed").over(group)
            ).alias("_group_changed"),
        )
        .where("_first")
        .select(
            low.alias("src"),
            F.when(F.col("dst") == low, F.col("src")).otherwise(F.col("dst")).alias("dst"),
            (F.col("changed") | (F.col("dst") != low)).alias("changed"),
            (~F.col("_group_changed")).alias("stable"),
            "done",
        )
    )


def _labels(stars: DataFrame, ids: DataFrame | None, reliable: bool) -> DataFrame:
    """Read the labels off the final star forest: each leaf (and self-loop-only vertex) is the
    dst of exactly one edge, whose src is its centre; centres label themselves. Only the centres
    are shuffled (to deduplicate them), unless a vertex table must be merged in. Materialised,
    so the rounds' data can be freed and the caller reuses the result cheaply."""
    leaves = stars.select(F.col("dst").alias("id"), F.col("src").alias("component"))
    centres = stars.where(F.col("src") < F.col("dst")).select(F.col("src").alias("id")).distinct()
    labels = leaves.unionAll(centres.select("id", F.col("id").alias("component")))
    if ids is None:
        return _checkpoint(labels, reliable)
    rows = labels.unionAll(ids.select("id", F.lit(None).cast("long").alias("component")))
    component = F.coalesce(F.min("component"), F.col("id")).alias("component")
    return _checkpoint(rows.groupBy("id").agg(component), reliable)


def _checkpoint(df: DataFrame, reliable: bool) -> DataFrame:
    """Compute `df` and cut its lineage (plans would otherwise grow with every round)."""
    return df.checkpoint(eager=True) if reliable else df.localCheckpoint(eager=True)


def _release(df: DataFrame | None) -> None:
    """Free a round's data once a later round no longer needs it.

    A persisted frame is unpersisted. A local checkpoint has no public way to be freed: its
    blocks belong to the RDD behind the plan, which is unpersisted through the JVM; should that
    ever fail, Spark's ContextCleaner frees them once the frame is garbage collected.
    """
    if df is None:
        return
    if df.storageLevel.useMemory or df.storageLevel.useDisk:
        df.unpersist(blocking=False)
        return
    with contextlib.suppress(Exception):  # best effort only: see the docstring
        plan = df._jdf.queryExecution().analyzed()
        if plan.nodeName() == "LogicalRDD":
            plan.rdd().unpersist(False)
