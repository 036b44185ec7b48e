"""Campaigns and campaign touches on hand-built bronze rows."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from chispa import assert_df_equality

from lakehouse.quality import run_gate
from lakehouse.silver.campaigns import CAMPAIGN_COLUMNS, TOUCH_COLUMNS, campaign_touches, campaigns

D1, D2 = date(2026, 3, 1), date(2026, 3, 2)
LINEAGE_DDL = "_delivery_date date, _source_file string, _line_no int, _record_hash string"


def _bronze(spark, fields, rows_by_day):
    data = [
        (*row, day, f"file:/landing/campaigns/dt={day}/f.csv", i + 2, f"{day}:{i}")
        for day, rows in rows_by_day.items()
        for i, row in enumerate(rows)
    ]
    return spark.createDataFrame(
        data, ", ".join(f"{c} string" for c in fields) + ", " + LINEAGE_DDL
    )


# The delivered columns: the campaign's own, without the snapshot date and lineage.
FIELDS = CAMPAIGN_COLUMNS[: CAMPAIGN_COLUMNS.index("snapshot_date")]


def test_campaigns_latest_snapshot_wins(spark):
    bronze = _bronze(
        spark,
        FIELDS,
        {
            D1: [
                (
                    "CMP-0001",
                    "2月开春上新",
                    "sms",
                    "2026-02-27",
                    "2026-03-06",
                    "43,200.00",
                    "C-2602-A",
                ),
                ("cmp-0002 ", "3月会员日", " WeChat", "2026-03-01", "2026-03-04", "5400.00", " "),
            ],
            D2: [  # budget revised, end date moved; CMP-0002 no longer listed
                ("CMP-0001", "2月开春上新", "SMS", "2026-02-27", "2026-03-08", "45000", "C-2602-A"),
            ],
        },
    )
    got = campaigns(bronze)
    assert got.columns == CAMPAIGN_COLUMNS
    expected = spark.createDataFrame(
        [
            (
                "CMP-0001",
                "2月开春上新",
                "SMS",
                date(2026, 2, 27),
                date(2026, 3, 8),
                Decimal("45000.00"),
                "C-2602-A",
                D2,
            ),
            (
                "CMP-0002",
                "3月会员日",
                "WECHAT",
                date(2026, 3, 1),
                date(2026, 3, 4),
                Decimal("5400.00"),
                None,
                D1,
            ),
        ],
        "campaign_id string, campaign_name string, channel string, start_date date, "
        "end_date date, cost_yuan decimal(18,2), coupon_code string, snapshot_date date",
    )
    assert_df_equality(
        got.select(*expected.columns), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_campaign_touches_times_identifiers_and_duplicates(spark):
    fields = ["campaign_id", "touch_time", "member_id", "phone", "unionid"]
    bronze = _bronze(
        spark,
        fields,
        {
            D1: [
                ("CMP-0001", "2026-03-01 09:10:28", "m00016676", "17778081563", ""),
                ("CMP-0001", "2026-03-01 09:10:28", "M00016676", "+86 177-7808-1563", None),
                ("cmp-0002", "2026-03-02 07:59:59", "", "", " oU7xABC "),  # 23:59:59 UTC 03-01
                ("CMP-0002", "2026-03-02 08:00:00", None, "138****5678", None),
                ("CMP-0002", "not a time", None, "138****5678", None),
            ]
        },
    )
    got = campaign_touches(bronze)
    assert got.columns == TOUCH_COLUMNS
    expected = spark.createDataFrame(
        [
            (
                "CMP-0001",
                datetime(2026, 3, 1, 1, 10, 28, tzinfo=UTC),
                D1,
                "M00016676",
                "17778081563",
                "177****1563",
                None,
                3,
            ),
            (
                "CMP-0002",
                datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC),
                D2,
                None,
                None,
                None,
                "oU7xABC",
                4,
            ),
            (
                "CMP-0002",
                datetime(2026, 3, 2, 0, 0, tzinfo=UTC),
                D2,
                None,
                None,
                "138****5678",
                None,
                5,
            ),
            ("CMP-0002", None, None, None, None, "138****5678", None, 6),
        ],
        "campaign_id string, touch_time timestamp, touch_date date, member_id string, "
        "phone string, phone_display string, unionid string, _line_no int",
    )
    assert_df_equality(
        got.select(*expected.columns), expected, ignore_row_order=True, ignore_nullable=True
    )
    assert got.select("touch_key").distinct().count() == 4


def test_a_campaign_date_or_cost_written_but_unreadable_is_quarantined(spark):
    """Before, read as missing and published: an unreadable end date shrank the attribution
    window to the start date's, an unreadable cost left ROI blank without a word. Blank
    dates and cost still say "none"."""
    rows = [
        ("CMP-1", "a", "SMS", "2026-03-01", "2026-03-04", "100.00", ""),
        ("CMP-2", "b", "SMS", "", "", "", ""),
        ("CMP-3", "c", "SMS", "2026-02-30", "2026-03-04", "100.00", ""),
        ("CMP-4", "d", "SMS", "2026-03-01", "3月底", "100.00", ""),
        ("CMP-5", "e", "SMS", "2026-03-01", "2026-03-04", "N/A", ""),
    ]
    got = campaigns(_bronze(spark, FIELDS, {D1: rows}), with_checks=True)
    with run_gate(
        got, "silver.campaigns", key_columns=["campaign_id"], run_id="r", run_date=D1
    ) as gate:
        good = sorted(r.campaign_id for r in gate.good.collect())
        bad = sorted((r.record_key, r.expectation) for r in gate.quarantined.collect())
    assert good == ["CMP-1", "CMP-2"]
    assert bad == [
        ("CMP-3", "start_date_readable"),
        ("CMP-4", "end_date_readable"),
        ("CMP-5", "cost_readable"),
    ]
