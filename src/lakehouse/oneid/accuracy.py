"""Pairwise precision and recall of One ID against a ground truth of who owns which identifier.

The universe is the truth's identifiers. Two of them form a true pair when one person owns both,
a predicted pair when the identity map gives both the same one_id; an identifier the map does not
hold (suppressed, never seen) is a singleton, so it costs recall, never precision. Counting pairs
per group (n choose 2) keeps this an aggregation, with no pair ever materialised.

An identifier the truth gives several owners (a family tablet's openid) counts once per owner:
its owners' copies fall in one cluster, so they make a predicted pair that no person owns. The
generator gives each identifier one owner; a truth that does not scores such values as misses.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


@dataclass(frozen=True)
class PairScores:
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    identifiers: int
    mapped: int

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0

    def __str__(self) -> str:
        return (
            f"precision {self.precision:.4f} ({self.correct_pairs}/{self.predicted_pairs} pairs), "
            f"recall {self.recall:.4f} ({self.correct_pairs}/{self.true_pairs} pairs), "
            f"{self.mapped}/{self.identifiers} true identifiers mapped"
        )


def _pairs(n):
    return F.sum(n * (n - 1) / 2).cast("long")


def pair_scores(identity_map: DataFrame, truth: DataFrame) -> PairScores:
    """`identity_map`: identifier_type, identifier_value, one_id. `truth`: person_id,
    identifier_type, value (normalised the way silver normalises)."""
    universe = (
        truth.select("person_id", "identifier_type", F.col("value").alias("identifier_value"))
        .distinct()
        .join(
            identity_map.select("identifier_type", "identifier_value", "one_id"),
            ["identifier_type", "identifier_value"],
            "left",
        )
        .withColumn(
            "cluster",
            F.coalesce(
                F.col("one_id"),
                F.concat_ws(":", F.lit("single"), "identifier_type", "identifier_value"),
            ),
        )
        .persist()
    )
    true_pairs = universe.groupBy("person_id").agg(F.count(F.lit(1)).alias("n"))
    predicted = universe.groupBy("cluster").agg(F.count(F.lit(1)).alias("n"))
    correct = universe.groupBy("cluster", "person_id").agg(F.count(F.lit(1)).alias("n"))
    totals = universe.agg(
        F.count(F.lit(1)).alias("identifiers"), F.count("one_id").alias("mapped")
    ).first()
    scores = PairScores(
        true_pairs=int(true_pairs.agg(_pairs(F.col("n"))).first()[0] or 0),
        predicted_pairs=int(predicted.agg(_pairs(F.col("n"))).first()[0] or 0),
        correct_pairs=int(correct.agg(_pairs(F.col("n"))).first()[0] or 0),
        identifiers=int(totals["identifiers"]),
        mapped=int(totals["mapped"]),
    )
    universe.unpersist()
    return scores
