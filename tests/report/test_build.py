"""What the report reads from the warehouse: one section at a time, on a few hand-made rows."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

import pytest

from lakehouse.quality.results import DQ_RESULTS, DQ_RESULTS_SCHEMA
from lakehouse.report.build import build_report, data_quality, default_report_path
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
    at = datetime(2026, 3, 31, 1)
    rows = [
        ("gold.member_portrait", day, "r", "local", at, at, 1.0, status, 0, 0, 0, None, None, None)
        for day, status in ((D, "SUCCEEDED"), (date(2026, 3, 31), "SUCCEEDED"),
                            (date(2026, 4, 1), "FAILED"))
    ]  # fmt: skip
    # Maintenance run for a later day changes no table's content: no warning of its own.
    rows.append(("ops.maintenance", date(2026, 4, 2), "m", "local", at, at, 1.0, "SUCCEEDED",
                 0, 0, 0, None, None, None))  # fmt: skip
    tables.append(small_frame(spark, rows, RUN_LOG_SCHEMA), *RUN_LOG)
    assert "run up to 2026-03-31" in build_report(tables, D).subtitle
    assert "run up to" not in build_report(tables, date(2026, 3, 31)).subtitle
