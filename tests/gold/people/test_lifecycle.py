"""Every boundary of the member depth model and of churn risk."""

from __future__ import annotations

from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakehouse.gold.people import lifecycle
from lakehouse.gold.people.settings import LifecycleSettings

CFG = LifecycleSettings()

# purchases (all history), purchases in the 365-day window, days since last, engaged
CASES = [
    ("loyal_at_bounds", 4, 4, 90, True, "loyal", False),
    ("recency_91", 4, 4, 91, True, "repeat", False),
    ("three_recent", 3, 3, 0, True, "repeat", False),
    ("old_purchases_outside_window", 9, 3, 5, True, "repeat", False),
    ("two", 2, 0, 400, True, "repeat", True),
    ("one", 1, 1, 0, True, "new", False),
    ("one_at_180", 1, 1, 180, True, "new", False),
    ("one_at_181", 1, 1, 181, True, "new", True),
    ("engaged_never_bought", 0, 0, None, True, "potential", False),
    ("known_only", 0, 0, None, False, "prospect", False),
    ("no_history_at_all", None, None, None, None, "prospect", False),
]


def test_stage_and_churn_boundaries(spark):
    df = spark.createDataFrame(
        [c[:5] for c in CASES],
        "case string, purchases int, recent int, days int, engaged boolean",
    )
    stage = lifecycle.stage(
        F.col("purchases"), F.col("recent"), F.col("days"), F.col("engaged"), CFG
    )
    actual = df.select(
        "case",
        stage.alias("stage"),
        lifecycle.label(stage, CFG).alias("label"),
        lifecycle.churn_risk(F.col("purchases"), F.col("days"), CFG).alias("churn"),
    )
    labels = CFG.labels
    expected = spark.createDataFrame(
        [(c[0], c[5], labels[c[5]], c[6]) for c in CASES],
        "case string, stage string, label string, churn boolean",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_thresholds_come_from_config(spark):
    cfg = LifecycleSettings(loyal_min_purchases=2, loyal_max_recency_days=10, churn_after_days=5)
    df = spark.createDataFrame([(2, 2, 10)], "p int, r int, d int")
    row = df.select(
        lifecycle.stage(F.col("p"), F.col("r"), F.col("d"), F.lit(True), cfg).alias("s"),
        lifecycle.churn_risk(F.col("p"), F.col("d"), cfg).alias("c"),
    ).first()
    assert (row.s, row.c) == ("loyal", True)
