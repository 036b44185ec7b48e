"""The report's HTML primitives: escaped text, charts as inline SVG, clear notes for no data."""

from __future__ import annotations

import re
from datetime import date

from lakehouse.report import html


def test_table_escapes_data_and_right_aligns_numbers():
    rows = [{"store": "<script>alert(1)</script>", "net_sales": 1234.5, "orders": 3}]
    out = html.table(rows, ["store", "net_sales", "orders"])
    assert "<script>" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert '<td class="num">1,234.50</td>' in out
    assert '<td class="num">3</td>' in out


def test_table_css_marks_cells_and_empty_table_says_so():
    rows = [{"status": "FAILED"}, {"status": "SUCCEEDED"}]
    out = html.table(
        rows, ["status"], css={"status": lambda r: "bad" if r["status"] != "SUCCEEDED" else None}
    )
    assert out.count('class="bad"') == 1
    assert "No rows." in html.table([], ["status"])


def test_line_chart_has_one_polyline_per_series_and_a_point_per_day():
    series = {
        "TMALL": [(date(2026, 3, 1), 10.0), (date(2026, 3, 2), 20.0)],
        "POS": [(date(2026, 3, 2), 5.0)],
    }
    out = html.line_chart(series)
    assert out.count("<polyline") == 2
    assert out.count("<circle") == 3
    assert "TMALL" in out and "POS" in out
    assert "No data" in html.line_chart({})


def test_bar_chart_draws_negative_values_to_the_left_of_zero():
    out = html.bar_chart([("gain", 2.0), ("loss", -1.0)])
    assert out.count('class="bar"') == 2
    assert html.PALETTE[3] in out  # the negative bar's colour
    assert "No data" in html.bar_chart([])


def test_bar_chart_cuts_a_long_label_before_escaping_it():
    out = html.bar_chart([("x" * 30 + "<b>", 1.0)])
    # Cut after escaping, the label ended in a broken entity ("&l").
    assert "x" * 30 + "&lt;b</text>" in out


def test_page_is_self_contained():
    page = html.Page("t", "s", [html.Section("one", html.bar_chart([("a", 1.0)]))])
    text = page.render()
    assert text.startswith("<!DOCTYPE html>")
    assert "<script" not in text and "http://" not in text.replace("http://www.w3.org/2000/svg", "")


def test_line_chart_keeps_a_negative_day_inside_the_plot():
    """Before: the y axis started at 0, so a day of returns above sales was drawn below the
    chart (cy=340 in a 260-high picture) and an all-negative series thousands of pixels off."""
    for series in (
        {"POS": [(date(2026, 3, 1), 100.0), (date(2026, 3, 2), -50.0)]},
        {"POS": [(date(2026, 3, 1), -10.0), (date(2026, 3, 2), -50.0)]},
    ):
        out = html.line_chart(series, height=260)
        ys = [float(v) for v in re.findall(r'cy="([-0-9.]+)"', out)]
        assert len(ys) == 2 and all(0 <= v <= 260 for v in ys), ys
        assert ys[1] > ys[0]  # the lower value lower on the page
        assert "-50" in out  # the axis labels reach it
