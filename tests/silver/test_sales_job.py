"""The sales suites' run-time limits: what counts as a time too late or too early to believe."""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from lakehouse.config import ConfigError, load_settings
from lakehouse.quality import run_gate
from lakehouse.silver.sales_job import earliest_time, future_limit, sales_parameters

RUN_DATE = dt.date(2026, 3, 2)
ORDERS_DDL = (
    "order_key string, platform string, status string, created_at timestamp, "
    "updated_at timestamp, paid_at timestamp, paid_amount decimal(18,2), "
    "gross_amount decimal(18,2), refunded_amount decimal(18,2), total_units int"
)


def _order(key: str, created: str, paid: str | None) -> tuple:
    created_at = dt.datetime.fromisoformat(created)
    paid_at = dt.datetime.fromisoformat(paid) if paid else None
    ten, zero = Decimal("10.00"), Decimal("0.00")
    return (key, "MALL", "PAID", created_at, created_at, paid_at, ten, ten, zero, 1)


def test_limits_are_timestamps_in_utc():
    # The run date's end in Shanghai (16:00 UTC) plus 24 hours of tolerance.
    assert future_limit(RUN_DATE, 24) == "2026-03-03 16:00:00"
    assert earliest_time(dt.date(2000, 1, 1)) == "2000-01-01 00:00:00"


def test_sales_parameters_come_from_conf():
    limits = load_settings("local").silver.limits
    parameters = sales_parameters(RUN_DATE, limits)
    assert parameters["earliest_time"] == earliest_time(limits.earliest_business_date)
    assert parameters["future_limit"] == future_limit(RUN_DATE, limits.future_tolerance_hours)
    assert parameters["min_return_quantity"] == -limits.max_line_quantity


def test_an_order_at_the_epoch_or_paid_at_the_epoch_is_quarantined_with_its_reason(spark):
    orders = spark.createDataFrame(
        [
            _order("ok", "2026-03-02 10:00:00", "2026-03-02 10:05:00"),
            _order("old_but_real", "2000-01-01 00:00:00", None),
            _order("epoch", "1970-01-01 00:00:00", "2026-03-02 10:05:00"),
            _order("epoch_paid", "2026-03-02 10:00:00", "1970-01-01 08:00:00"),
            _order("future", "2099-12-31 00:00:00", None),
        ],
        ORDERS_DDL,
    )
    parameters = sales_parameters(RUN_DATE, load_settings("local").silver.limits)
    with run_gate(
        orders,
        "silver.orders",
        key_columns=["order_key"],
        run_id="r",
        run_date=RUN_DATE,
        parameters=parameters,
    ) as outcome:
        assert sorted(r.order_key for r in outcome.good.collect()) == ["ok", "old_but_real"]
        reasons = sorted((r.record_key, r.expectation) for r in outcome.quarantined.collect())
    assert reasons == [
        ("epoch", "created_not_before_earliest_date"),
        ("epoch_paid", "paid_not_before_earliest_date"),
        ("future", "created_not_in_future"),
    ]


def test_earliest_business_date_must_be_a_date(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(Path(__file__).resolve().parents[2] / "conf", conf)
    (conf / "local.yml").write_text("silver:\n  limits:\n    earliest_business_date: long ago\n")
    with pytest.raises(ConfigError, match=r"silver.limits.earliest_business_date"):
        load_settings("local", conf)
