"""The member depth model (lifecycle stage) and churn risk, as column expressions.

Stages, checked top down (conf/gold.yml `gold.people.lifecycle`):

- loyal 忠诚: at least `loyal_min_purchases` purchases in the `loyal_window_days` ending on the
  run date AND the last purchase at most `loyal_max_recency_days` days before it (exactly 90
  days is still loyal);
- repeat 复购: two or more purchases (all history up to the run date);
- new 普通: exactly one purchase;
- potential 潜力: no purchase, but engaged: created an order (unpaid, cancelled) or received a
  campaign touch;
- prospect 无消费: known (has identifiers), never purchased, never engaged.

Churn risk: a buyer whose last purchase is MORE than `churn_after_days` days old (exactly 180
days is not yet a risk). Never a risk without a purchase.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from lakehouse.gold.people.settings import LifecycleSettings

STAGES = ("prospect", "potential", "new", "repeat", "loyal")


def stage(
    purchases: Column,
    purchases_in_window: Column,
    days_since_last: Column,
    engaged: Column,
    cfg: LifecycleSettings,
) -> Column:
    """The stage code (STAGES)."""
    n = F.coalesce(purchases, F.lit(0))
    recent = F.coalesce(purchases_in_window, F.lit(0))
    return (
        F.when(
            (recent >= cfg.loyal_min_purchases) & (days_since_last <= cfg.loyal_max_recency_days),
            "loyal",
        )
        .when(n >= 2, "repeat")
        .when(n == 1, "new")
        .when(F.coalesce(engaged, F.lit(False)), "potential")
        .otherwise("prospect")
    )


def label(stage_code: Column, cfg: LifecycleSettings) -> Column:
    pairs = [F.lit(x) for kv in cfg.labels.items() for x in kv]
    return F.create_map(*pairs)[stage_code]


def churn_risk(purchases: Column, days_since_last: Column, cfg: LifecycleSettings) -> Column:
    return (F.coalesce(purchases, F.lit(0)) >= 1) & F.coalesce(
        days_since_last > cfg.churn_after_days, F.lit(False)
    )
