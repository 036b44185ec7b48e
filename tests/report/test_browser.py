"""The report renders in headless Chromium with its charts and without console errors."""

from __future__ import annotations

from datetime import date

from lakehouse.report import html
from tests.report.browser import render


def test_a_page_with_charts_renders_without_console_errors(tmp_path):
    page = html.Page(
        "报表 report",
        "test",
        [
            html.Section("trend", html.line_chart({"TMALL": [(date(2026, 3, 1), 1.0)]})),
            html.Section("bars", html.bar_chart([("门店 A", 3.0), ("B", -1.0)])),
        ],
    )
    path = tmp_path / "page.html"
    path.write_text(page.render(), encoding="utf-8")
    seen = render(path, ("svg", "polyline.series", "rect.bar"))
    assert seen.title == "报表 report"
    assert seen.count == {"svg": 2, "polyline.series": 1, "rect.bar": 2}
    assert seen.console_errors == []
    assert "门店 A" in seen.text


def test_the_console_check_catches_an_error(tmp_path):
    path = tmp_path / "broken.html"
    path.write_text("<html><body><script>throw new Error('boom')</script></body></html>")
    seen = render(path, ())
    assert any("boom" in message for message in seen.console_errors)
