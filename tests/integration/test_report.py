"""`lakehouse report` on the generated pipeline: one page, rendered by headless Chromium with its
charts and no console errors."""

from __future__ import annotations

import pytest

from lakehouse.cli import main
from tests.report.browser import render

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def with_gold(generated_gold):
    return generated_gold


def test_the_report_renders_every_section_with_charts(with_gold, tmp_path, monkeypatch, capsys):
    p = with_gold
    monkeypatch.setenv("LAKEHOUSE_LANDING", str(p.landing))
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", p.settings.warehouse)
    out = tmp_path / "report.html"
    day = p.days[-1]
    assert main(["report", "--run-date", day.isoformat(), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out

    seen = render(out, ("section", "svg", "polyline.series", "rect.bar", "table"))
    assert seen.console_errors == []
    assert seen.title == f"lakehouse daily report {day}"
    assert seen.count["section"] == 7
    assert seen.count["polyline.series"] >= 3  # a line per sales channel
    assert seen.count["rect.bar"] >= 5  # stores, segments, stages, campaigns
    for heading in (
        "Sales trend by channel",
        "坪效",
        "RFM",
        "Top bundles",
        "Campaign ROI",
        "Data quality",
        "Run log",
    ):
        assert heading in seen.text
    assert "does not exist yet" not in seen.text  # every table the page reads is there
    assert "gold.member_portrait" in seen.text or "gold.store_marts" in seen.text


def test_a_fresh_warehouse_gives_a_page_that_says_what_is_missing(spark, tmp_path):
    from datetime import date

    from lakehouse.report import write_report
    from lakehouse.tables import Tables

    path = write_report(Tables(spark, str(tmp_path / "empty")), date(2026, 3, 1), None)
    assert path == tmp_path / "empty" / "_reports" / "report-2026-03-01.html"
    text = path.read_text(encoding="utf-8")
    assert "silver.orders does not exist yet: run silver.sales." in text
    assert render(path, ()).console_errors == []
