"""What the report reads from the warehouse: one section at a time, on a few hand-made rows."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

import pytest

from lakehouse.quality.results import DQ_RESULTS, DQ_RESULTS_SCHEMA
from lakehouse.report.build import build_report, bundles, data_quality, default_report_path
from lakehouse.runtime import RUN_LOG, RUN_LOG_SCHEMA
from lakehouse.spark import small_frame
from lakehouse.tables import Tables

D = date(2026, 3, 5)


def _check(run_id: str, table: str, rule: str, success: bool, at: datetime, day: date = D):
    return (
        run_id, day, table, rule, "expect_column_values_to_not_be_null", "order_key", "fail",
        success, None, 0 if success else 3, 10, 0.0 if success else 30.0, None,
        0 if success else 3, f"{rule} rule", None, at,
    )  # fmt: skip


def _row(section: str, first_cell: str) -> list[str]:
    for row in re.findall(r"<tr>(.*?)</tr>", section):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
        if cells and cells[0] == first_cell:
            return cells[1:]
    raise AssertionError(f"no row {first_cell}")


def test_a_rerun_replaces_the_tables_verdict_instead_of_adding_to_it(spark, tmp_path):
    """Before: a gate that failed and passed on its rerun showed twice the rules, failed=1 and
    the stale failure."""
    tables = Tables(spark, str(tmp_path / "warehouse"))
    rows = [
        _check("r1", "gold.store_daily", "a", False, datetime(2026, 3, 6, 1)),
        _check("r1", "gold.store_daily", "b", True, datetime(2026, 3, 6, 1)),
        _check("r2", "gold.store_daily", "a", True, datetime(2026, 3, 6, 2)),
        _check("r2", "gold.store_daily", "b", True, datetime(2026, 3, 6, 2)),
        _check("r1", "silver.orders", "a", False, datetime(2026, 3, 6, 1)),
        _check("r9", "silver.orders", "a", True, datetime(2026, 3, 5, 1), date(2026, 3, 4)),
    ]
    tables.append(small_frame(spark, rows, DQ_RESULTS_SCHEMA), *DQ_RESULTS)

    page = data_quality(tables, D)

    verdicts, problems = page.split("Rules that did not pass")
    # checks, rules, passed, failed
    assert _row(verdicts, "gold.store_daily")[:4] == ["2", "2", "2", "0"]
    assert _row(verdicts, "silver.orders")[:4] == ["1", "1", "0", "1"]  # not the 4th's check
    assert "silver.orders" in problems and "gold.store_daily" not in problems


def test_the_default_page_goes_under_a_local_warehouse_and_nowhere_for_a_remote_one():
    page = Path("/data/wh/_reports/report-2026-03-05.html")
    assert default_report_path("file:///data/wh", D) == page
    assert default_report_path("/data/wh", D) == page
    with pytest.raises(ValueError, match=r"give --out"):
        default_report_path("s3a://bucket/wh", D)


def test_a_page_of_an_earlier_day_says_which_sections_show_a_later_state(spark, tmp_path):
    """Before: the report of the 3rd, written after the 31st had run, showed the portrait and
    the month's store totals of the 31st without a word."""
    tables = Tables(spark, str(tmp_path / "warehouse"))
    rows = [
        _log("gold.member_portrait", D, at=datetime(2026, 3, 6, 1)),
        _log("gold.member_portrait", date(2026, 3, 31), at=datetime(2026, 3, 31, 1)),
        _log("gold.member_portrait", date(2026, 4, 1), "FAILED", at=datetime(2026, 4, 1, 1)),
        # Maintenance run for a later day changes no table's content: no warning of its own.
        _log("ops.maintenance", date(2026, 4, 2), at=datetime(2026, 4, 2, 1)),
    ]
    tables.append(small_frame(spark, rows, RUN_LOG_SCHEMA), *RUN_LOG)
    subtitle = build_report(tables, D).subtitle
    assert "members: a later day's state, 2026-03-31's" in subtitle
    assert "2026-04-0" not in subtitle
    assert "members:" not in build_report(tables, date(2026, 3, 31)).subtitle


def _log(job: str, day: date, status: str = "SUCCEEDED", at: datetime = datetime(2026, 4, 2, 1)):
    return (job, day, "r", "local", at, at, 1.0, status, 0, 0, 0, None, None, None)


def test_each_audience_has_its_own_verdict_and_quarantine_hits_count_only_caught_rows(
    spark, tmp_path
):
    """Before: three audiences made on one day were 'checks = 3' of one table and only the last
    one's verdict showed, hiding an earlier audience's failed rule; rows_caught added the rows
    of warn rules (which stayed) to those the quarantine rules caught."""
    tables = Tables(spark, str(tmp_path / "warehouse"))
    warn = _check("r1", "silver.orders", "c", True, datetime(2026, 3, 6, 1))
    warn = (*warn[:6], "warn", *warn[7:13], 5, *warn[14:])
    caught = _check("r1", "silver.orders", "a", False, datetime(2026, 3, 6, 1))
    caught = (*caught[:6], "quarantine", *caught[7:])
    rows = [
        _check("audience-vip-0123456789ab", "gold.audiences", "a", False, datetime(2026, 3, 6, 1)),
        _check("audience-新客-abcdefabcdef", "gold.audiences", "a", True, datetime(2026, 3, 6, 2)),
        _check("audience-新客-aaaaaaaaaaaa", "gold.audiences", "a", True, datetime(2026, 3, 6, 3)),
        warn,
        caught,
    ]
    tables.append(small_frame(spark, rows, DQ_RESULTS_SCHEMA), *DQ_RESULTS)

    verdicts, problems = data_quality(tables, D).split("Rules that did not pass")

    # checks, rules, passed, failed
    assert _row(verdicts, "gold.audiences (vip)")[:4] == ["1", "1", "0", "1"]
    assert _row(verdicts, "gold.audiences (新客)")[:4] == ["2", "1", "1", "0"]  # a rerun
    assert "gold.audiences (vip)" in problems
    # rules, passed, failed, warnings, quarantining, quarantine_hits
    assert _row(verdicts, "silver.orders")[1:] == ["2", "1", "0", "0", "1", "3"]


def test_bundles_show_the_days_rules_or_say_why_there_are_none(spark, tmp_path):
    """Before: a day whose gold.bundles slice was empty, or which gold.bundles never ran for,
    showed the day before's rules as the day's."""
    tables = Tables(spark, str(tmp_path / "warehouse"))
    earlier = date(2026, 3, 4)
    rules = spark.createDataFrame(
        [("sku", ["A"], ["B"], 0.5, 0.8, 2.0, 10, earlier)],
        "level string, antecedent array<string>, consequent array<string>, support double, "
        "confidence double, lift double, baskets long, as_of date",
    )
    tables.append(rules, "gold", "bundles")

    assert "A" in bundles(tables, earlier) and "<table>" in bundles(tables, earlier)
    page = bundles(tables, D)
    assert "<table>" not in page
    assert f"gold.bundles has not run for {D} (its newest rules are of {earlier})" in page

    tables.append(small_frame(spark, [_log("gold.bundles", D)], RUN_LOG_SCHEMA), *RUN_LOG)
    assert f"No rule passed the thresholds on {D}" in bundles(tables, D)


def test_the_subtitle_follows_the_gold_state_tables_not_bronze_or_silver(spark, tmp_path):
    """Before: bronze run for a later day made the page say members showed that day's state,
    while gold had failed; and a page of a day gold never reached said nothing."""
    tables = Tables(spark, str(tmp_path / "warehouse"))
    rows = [
        _log("gold.member_portrait", date(2026, 3, 4)),
        _log("gold.member_portrait", D, "FAILED"),
        _log("bronze.pos_sales", date(2026, 3, 6)),
        _log("silver.sales", D),
    ]
    tables.append(small_frame(spark, rows, RUN_LOG_SCHEMA), *RUN_LOG)

    subtitle = build_report(tables, D).subtitle
    assert "2026-03-06" not in subtitle
    assert (
        "members: an earlier day's state, 2026-03-04's (gold.member_portrait last succeeded "
        f"for 2026-03-04), not {D}'s" in subtitle
    )
    assert "members:" not in build_report(tables, date(2026, 3, 4)).subtitle


def test_the_subtitle_names_each_gold_state_table_by_its_own_last_successful_run(spark, tmp_path):
    """Before: one latest run date over the three jobs. The portrait's failed gate on D, beside
    store marts that succeeded, went unsaid; after a backfill rewound the tables to an earlier
    day, the latest page said nothing and the backfilled day's page claimed a later state."""
    tables = Tables(spark, str(tmp_path / "warehouse"))
    early, late = datetime(2026, 4, 2, 1), datetime(2026, 4, 3, 1)
    rows = [
        _log("gold.member_portrait", date(2026, 3, 4), at=early),
        _log("gold.member_portrait", D, "FAILED", at=early),
        _log("gold.store_marts", D, at=early),
        # a backfill of 03-03 after D: campaign ROI is as of 03-03 now
        _log("gold.campaign_performance", D, at=early),
        _log("gold.campaign_performance", date(2026, 3, 3), at=late),
    ]
    tables.append(small_frame(spark, rows, RUN_LOG_SCHEMA), *RUN_LOG)

    subtitle = build_report(tables, D).subtitle
    assert "members: an earlier day's state, 2026-03-04's" in subtitle
    assert "campaign ROI: an earlier day's state, 2026-03-03's" in subtitle
    assert "store ranking" not in subtitle

    backfilled = build_report(tables, date(2026, 3, 3)).subtitle
    assert "campaign ROI" not in backfilled
    assert "members: a later day's state, 2026-03-04's" in backfilled
    assert f"the month's store ranking: a later day's state, {D}'s" in backfilled
