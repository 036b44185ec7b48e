"""RFM: scores by exact quantile cut points, and the 8-class segment by the buyers' means.

Why cut points and not `ntile`: ntile deals rows round-robin into bins, so two members with the
same frequency can get different scores depending on the sort. Here a score is a function of the
value alone:

- the buyers' values are sorted (duplicates kept, N values); cut point k (k = 1 .. bins-1) is the
  nearest-rank quantile, the value at position ceil(k·N / bins) (1-based);
- raw score = 1 + the number of cut points strictly below the value, so every value equal to a
  cut point falls in the lower bin and equal values always share a bin;
- F and M: score = raw score (more is better); R (days since the last purchase): score =
  bins + 1 − raw score (fewer days is better).

All buyers equal: every cut point is that value, F = M = 1 and R = bins. One buyer: the same.
The cut points are computed over the distinct values with their counts (one small window), and
collected, so the job can record them.

Segment (the classic 8 classes): M high = strictly above the buyers' mean → 重要, else 一般;
recent = R (days) strictly below the mean of R; F high = strictly above the mean of F.
recent & F high → 价值客户, not recent & F high → 保持客户, recent & F low → 发展客户,
not recent & F low → 挽留客户. Means are compared exactly (value × N against the sum), never
through a rounded average.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

SEGMENT_VALUE = {True: "重要", False: "一般"}
# (recent, frequency high) → class
SEGMENT_CLASS = {
    (True, True): "价值客户",
    (False, True): "保持客户",
    (True, False): "发展客户",
    (False, False): "挽留客户",
}
RFM_COLUMNS = [
    "rfm_recency_days",
    "rfm_frequency",
    "rfm_monetary",
    "r_score",
    "f_score",
    "m_score",
    "rfm_segment",
]


@dataclass(frozen=True)
class RfmModel:
    """What the scores were computed from: recorded in the job's details."""

    buyers: int
    cut_points: dict[str, list] = field(default_factory=dict)
    sums: dict[str, Decimal | int] = field(default_factory=dict)

    def as_details(self) -> dict:
        return {
            "buyers": self.buyers,
            "cut_points": {k: [str(v) for v in vs] for k, vs in self.cut_points.items()},
            "means": {
                k: str(Decimal(v) / self.buyers) if self.buyers else None
                for k, v in self.sums.items()
            },
        }


METRICS = {
    "recency_days": "rfm_recency_days",
    "frequency": "rfm_frequency",
    "monetary": "rfm_monetary",
}
_VALUE = "decimal(28,2)"


def model_of(metrics: DataFrame, bins: int) -> RfmModel:
    """Buyers, cut points and sums of R, F and M in one Spark job.

    The values of each metric are counted per distinct value; a running count per metric gives
    each value's last position, and cut point k is the smallest value whose running count
    reaches ceil(k·N / bins). The sums (for the means) are sum(value × count).
    """
    tall = metrics.select(
        F.explode(
            F.array(
                *[
                    F.struct(F.lit(name).alias("metric"), F.col(col).cast(_VALUE).alias("v"))
                    for name, col in METRICS.items()
                ]
            )
        ).alias("m")
    ).select("m.metric", "m.v")
    counts = tall.where(F.col("v").isNotNull()).groupBy("metric", "v").count()
    ordered = (
        Window.partitionBy("metric")
        .orderBy("v")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    cum = counts.select(
        "metric",
        "v",
        "count",
        F.sum("count").over(ordered).alias("cum"),
        F.sum("count").over(Window.partitionBy("metric")).alias("n"),
    )
    picks = [
        F.min(
            F.when(F.col("cum") >= F.expr(f"({k} * n + {bins - 1}) div {bins}"), F.col("v"))
        ).alias(f"c{k}")
        for k in range(1, bins)
    ]
    rows = {
        r["metric"]: r
        for r in cum.groupBy("metric")
        .agg(
            F.max("n").alias("n"),
            F.sum(F.col("v") * F.col("count")).alias("total"),
            *picks,
        )
        .collect()
    }
    if not rows:
        return RfmModel(0)
    whole = {"recency_days", "frequency"}
    cuts = {
        name: [int(r[f"c{k}"]) if name in whole else r[f"c{k}"] for k in range(1, bins)]
        for name, r in rows.items()
    }
    sums = {
        name: (int(r["total"]) if name in whole else Decimal(r["total"]))
        for name, r in rows.items()
    }
    return RfmModel(int(rows["frequency"]["n"]), cuts, sums)


def cut_points(df: DataFrame, column: str, bins: int) -> list:
    """The bins-1 nearest-rank quantile cut points of one RFM column; [] when empty."""
    name = {v: k for k, v in METRICS.items()}[column]
    return model_of(df, bins).cut_points.get(name, [])


def score(value: Column, cuts: list, bins: int, lower_is_better: bool = False) -> Column:
    """1..bins: 1 + the cut points strictly below `value` (reversed when lower is better)."""
    raw = F.lit(1)
    for cut in cuts:
        raw = raw + F.when(value > F.lit(cut), 1).otherwise(0)
    result = F.lit(bins + 1) - raw if lower_is_better else raw
    return result.cast("int")


def rfm_scores(metrics: DataFrame, bins: int) -> tuple[DataFrame, RfmModel]:
    """Scores and segments of buyers.

    `metrics`: one_id, rfm_recency_days (int), rfm_frequency (int, >= 1), rfm_monetary
    (decimal), one row per buyer. Returns one_id + RFM_COLUMNS, and the model.
    """
    model = model_of(metrics, bins)
    n, cuts, sums = model.buyers, model.cut_points, model.sums
    if n == 0:
        empty = metrics.select(
            "one_id",
            "rfm_recency_days",
            "rfm_frequency",
            "rfm_monetary",
            *[F.lit(None).cast("int").alias(c) for c in ("r_score", "f_score", "m_score")],
            F.lit(None).cast("string").alias("rfm_segment"),
        )
        return empty, model
    scored = metrics.select(
        "one_id",
        "rfm_recency_days",
        "rfm_frequency",
        "rfm_monetary",
        score(F.col("rfm_recency_days"), cuts["recency_days"], bins, lower_is_better=True).alias(
            "r_score"
        ),
        score(F.col("rfm_frequency"), cuts["frequency"], bins).alias("f_score"),
        score(F.col("rfm_monetary"), cuts["monetary"], bins).alias("m_score"),
        segment(
            F.col("rfm_recency_days"), F.col("rfm_frequency"), F.col("rfm_monetary"), n, sums
        ).alias("rfm_segment"),
    )
    return scored, model


def segment(recency: Column, frequency: Column, monetary: Column, n: int, sums: dict) -> Column:
    """The 8-class segment; value × n compared with the sum is value compared with the mean."""
    n_lit = F.lit(n).cast("long")
    value_high = (monetary * n_lit) > F.lit(Decimal(sums["monetary"]))
    recent = (recency.cast("long") * n_lit) < F.lit(sums["recency_days"])
    frequent = (frequency.cast("long") * n_lit) > F.lit(sums["frequency"])
    prefix = F.when(value_high, SEGMENT_VALUE[True]).otherwise(SEGMENT_VALUE[False])
    suffix = (
        F.when(recent & frequent, SEGMENT_CLASS[(True, True)])
        .when(~recent & frequent, SEGMENT_CLASS[(False, True)])
        .when(recent & ~frequent, SEGMENT_CLASS[(True, False)])
        .otherwise(SEGMENT_CLASS[(False, False)])
    )
    return F.concat(prefix, suffix)
