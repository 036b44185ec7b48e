"""Gold marts on the generated warehouse (the shared `generated_gold` run: a first run that
backfills, then an incremental day): every mart non-empty and gated, store / channel / month
totals equal silver to the cent, a rerun of the last day changes nothing."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from lakehouse.registry import build_registry
from lakehouse.runtime import run_job

pytestmark = pytest.mark.integration

MARTS = {
    "gold.store_marts": ["store_daily", "store_monthly"],
    "gold.product_marts": ["product_daily", "product_rankings"],
    "gold.bundles": ["bundles"],
    "gold.campaign_performance": ["campaign_performance"],
    "gold.inventory_position": ["inventory_position"],
}


@pytest.fixture(scope="module")
def marts(generated_gold):
    return generated_gold


def _silver_orders(p):
    return p.tables.read("silver", "orders")


def _collect(df, keys, value):
    return {tuple(r[k] for k in keys): r[value] for r in df.collect()}


def test_every_mart_is_non_empty(marts):
    for tables in MARTS.values():
        for table in tables:
            assert marts.tables.read("gold", table).count() > 0, table


def test_store_channel_and_month_totals_equal_silver_to_the_cent(marts):
    t = marts.tables
    orders = _silver_orders(marts)
    silver_store = _collect(
        orders.groupBy("business_date", "store_code").agg(F.sum("net_sales").alias("v")),
        ["business_date", "store_code"],
        "v",
    )
    gold_store = _collect(
        t.read("gold", "store_daily").where("net_sales != 0 OR paid_orders > 0"),
        ["business_date", "store_code"],
        "net_sales",
    )
    silver_store = {k: v for k, v in silver_store.items() if v != 0 or k in gold_store}
    assert gold_store == silver_store

    silver_channel = _collect(
        orders.groupBy("business_date", "platform").agg(F.sum("net_sales").alias("v")),
        ["business_date", "platform"],
        "v",
    )
    gold_channel = _collect(
        t.read("gold", "product_daily")
        .groupBy("business_date", "platform")
        .agg(F.sum("net_sales").alias("v")),
        ["business_date", "platform"],
        "v",
    )
    assert gold_channel == silver_channel

    month = F.trunc("business_date", "month")
    silver_month = _collect(
        orders.groupBy(month.alias("month"), "store_code").agg(F.sum("net_sales").alias("v")),
        ["month", "store_code"],
        "v",
    )
    gold_month = _collect(t.read("gold", "store_monthly"), ["month", "store_code"], "net_sales")
    assert {k: v for k, v in gold_month.items() if k in silver_month} == silver_month
    assert all(v == 0 for k, v in gold_month.items() if k not in silver_month)


def test_inventory_position_keeps_every_silver_row(marts):
    silver = marts.tables.read("silver", "inventory_daily")
    gold = marts.tables.read("gold", "inventory_position")
    assert gold.count() == silver.count()
    assert gold.where("negative_on_hand").count() == silver.where("on_hand_qty < 0").count()


def _snapshots(p, tables: list[str]) -> dict:
    return {table: p.tables.read("gold", table).localCheckpoint() for table in tables}


def _assert_unchanged(p, snapshots: dict) -> None:
    for table, old in snapshots.items():
        after = p.tables.read("gold", table)
        assert after.exceptAll(old).count() == 0, table
        assert old.exceptAll(after).count() == 0, table


def test_rerun_of_the_last_day_changes_nothing(spark, marts):
    """gold.inventory_position here; gold.store_marts and gold.product_marts are rerun on the
    last day after their failing gate (test_a_failing_second_gate_leaves_both_tables_as_they_were),
    and must give the same tables back there."""
    p = marts
    jobs = build_registry(p.settings)
    snapshots = _snapshots(p, MARTS["gold.inventory_position"])
    run_job(jobs["gold.inventory_position"], p.settings, spark, p.days[-1])
    _assert_unchanged(p, snapshots)


def test_rerun_of_an_earlier_day_gives_the_month_as_of_that_day(spark, marts):
    """A backfill reruns an earlier day after later ones ran. Before, store_monthly summed the
    month's store_daily rows of the later days too, against silver as of the rerun day: the
    gate failed and nothing was published. The last day is rerun after, as the order of days
    says, and gives the tables back."""
    p = marts
    jobs = build_registry(p.settings)
    earlier, last = p.days[-2], p.days[-1]
    # Both tables as the first run left them (the failing-gate test's rerun starts from these).
    snapshots = _snapshots(p, MARTS["gold.store_marts"])
    try:
        run_job(jobs["gold.store_marts"], p.settings, spark, earlier)
        month = F.trunc("business_date", "month")
        this_month = F.trunc(F.lit(earlier), "month")
        silver_month = _collect(
            _silver_orders(p)
            .where((F.col("business_date") <= F.lit(earlier)) & (month == this_month))
            .groupBy("store_code")
            .agg(F.sum("net_sales").alias("v")),
            ["store_code"],
            "v",
        )
        gold_month = _collect(
            p.tables.read("gold", "store_monthly").where(F.col("month") == this_month),
            ["store_code"],
            "net_sales",
        )
        assert silver_month
        assert {k: v for k, v in gold_month.items() if k in silver_month} == silver_month
        assert all(v == 0 for k, v in gold_month.items() if k not in silver_month)
    finally:
        run_job(jobs["gold.store_marts"], p.settings, spark, last)
    _assert_unchanged(p, snapshots)


@pytest.mark.parametrize(
    ("job", "model", "second"),
    [
        ("gold.store_marts", "store_monthly", ["store_daily", "store_monthly"]),
        ("gold.product_marts", "product_rankings", ["product_daily", "product_rankings"]),
    ],
)
def test_a_failing_second_gate_leaves_both_tables_as_they_were(
    spark, marts, monkeypatch, job, model, second
):
    """Before: the daily table was replaced, then the month's (or the rankings') gate failed:
    the job failed with today's daily rows published beside yesterday's month."""
    from lakehouse.gold.marts import job as marts_job
    from lakehouse.quality.gate import GateFailed

    p = marts
    models = {"store_monthly": marts_job.store_model, "product_rankings": marts_job.product_model}
    real = getattr(models[model], model)

    def broken(*args, **kwargs):  # a row the gate's rules refuse (a null month)
        df = real(*args, **kwargs)
        return df.unionByName(df.limit(1).withColumn("month", F.lit(None).cast("date")))

    monkeypatch.setattr(models[model], model, broken)
    versions = {table: p.tables.version("gold", table) for table in second}
    snapshots = _snapshots(p, MARTS[job])
    jobs = build_registry(p.settings)
    with pytest.raises(GateFailed):
        run_job(jobs[job], p.settings, spark, p.days[-1])
    assert {table: p.tables.version("gold", table) for table in second} == versions
    monkeypatch.undo()  # the run log's last word on the day is a success again, as for a rerun
    # The rerun of the last day changes nothing (the job's "rerun changes nothing" check).
    run_job(jobs[job], p.settings, spark, p.days[-1])
    _assert_unchanged(p, snapshots)
