"""Every bronze job over several generated days, reconciled with the generator's ground truth."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lakehouse.datagen import generate
from lakehouse.registry import build_registry
from lakehouse.runtime import run_job
from lakehouse.tables import Tables

pytestmark = pytest.mark.integration

START, DAYS = date(2026, 3, 1), 3
BRONZE_KINDS = {"wrong_field_count", "undecodable_bytes", "invalid_json"}


def _truth(landing: Path, name: str) -> list[dict[str, str]]:
    with (landing / "_truth" / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def landed(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("generated")
    landing = root / "landing"
    generate(landing, scale=0.03, days=DAYS, start=START, seed=11)
    mp = pytest.MonkeyPatch()
    mp.setenv("LAKEHOUSE_LANDING", str(landing))
    mp.setenv("LAKEHOUSE_WAREHOUSE", str(root / "warehouse"))
    from lakehouse.config import load_settings

    settings = load_settings("local")
    jobs = [j for j in build_registry(settings).values() if j.layer == "bronze"]
    results = {}
    for offset in range(DAYS):
        day = START + timedelta(days=offset)
        for job in jobs:
            results[(job.name, day)] = run_job(job, settings, spark, day)
    yield settings, landing, Tables(spark, settings.warehouse), results, jobs
    mp.undo()


def test_every_delivered_file_reconciles_with_the_truth(landed):
    _, landing, tables, _, _ = landed
    log = {
        (r.dataset, r.delivery_date.isoformat(), r.file_name): r
        for r in tables.read("bronze", "ingested_files").collect()
    }
    truth_files = _truth(landing, "files.csv")
    assert truth_files, "the generator wrote no files"
    for f in truth_files:
        entry = log[(f["dataset"], f["dt"], f["file_name"])]
        if f["redelivery_of_dt"]:
            assert entry.status == "REDELIVERY", f
            assert entry.redelivery_of.isoformat() == f["redelivery_of_dt"]
            assert entry.rows == 0
        else:
            assert entry.status == "INGESTED", f
            assert entry.data_lines == int(f["data_lines"]), f
            assert entry.rows + entry.quarantined == entry.data_lines
    assert len(log) == len(truth_files), "bronze logged a file the generator did not write"


def test_quarantine_holds_exactly_the_unreadable_lines(landed):
    _, landing, tables, _, _ = landed
    # A re-delivered copy's lines were accounted for once, with the first delivery.
    copies = {
        (f["dataset"], f["dt"], f["file_name"])
        for f in _truth(landing, "files.csv")
        if f["redelivery_of_dt"]
    }
    expected = {
        (b["dataset"], b["dt"], b["file_name"], int(b["line_no"]), b["kind"])
        for b in _truth(landing, "bad_records.csv")
        if b["layer"] == "bronze" and (b["dataset"], b["dt"], b["file_name"]) not in copies
    }
    assert {kind for *_, kind in expected} == BRONZE_KINDS
    found = {
        (r.dataset, r.delivery_date.isoformat(), r.file_name, r.line_no, r.reason)
        for r in tables.read("bronze", "quarantine").collect()
    }
    assert found == expected


def test_rows_landed_equal_lines_delivered_minus_quarantined(landed):
    settings, landing, tables, _, _ = landed
    lines: dict[str, int] = {}
    for f in _truth(landing, "files.csv"):
        if not f["redelivery_of_dt"]:
            lines[f["dataset"]] = lines.get(f["dataset"], 0) + int(f["data_lines"])
    copies = {
        (f["dataset"], f["dt"], f["file_name"])
        for f in _truth(landing, "files.csv")
        if f["redelivery_of_dt"]
    }
    bad: dict[str, int] = {}
    for b in _truth(landing, "bad_records.csv"):
        if b["layer"] == "bronze" and (b["dataset"], b["dt"], b["file_name"]) not in copies:
            bad[b["dataset"]] = bad.get(b["dataset"], 0) + 1
    for source in settings.sources.values():
        for dataset in source.datasets:
            landed_rows = tables.read("bronze", dataset).count()
            assert landed_rows == lines.get(dataset, 0) - bad.get(dataset, 0), dataset


def test_encodings_and_nesting_survive(landed):
    _, _, tables, _, _ = landed
    tmall = tables.read("bronze", "tmall_orders")
    statuses = {r.order_status for r in tmall.select("order_status").distinct().collect()}
    assert statuses <= {
        "等待买家付款",
        "买家已付款，等待卖家发货",
        "卖家已发货，等待买家确认",
        "交易成功",
        "交易关闭",
    }
    assert statuses, "no Tmall order landed"
    jd = tables.read("bronze", "jd_orders")
    assert jd.where(F.size("itemInfoList") > 0).count() > 0
    pos = tables.read("bronze", "pos_sales")
    assert pos.where(F.col("store_code").startswith("\ufeff")).count() == 0


def test_rerunning_a_day_adds_no_row(landed, spark):
    settings, _, tables, _, jobs = landed
    names = ["pos_sales", "jd_orders", "quarantine", "ingested_files"]
    before = {n: tables.read("bronze", n).count() for n in names}
    for job in jobs:
        if job.name in {"bronze.pos_sales", "bronze.jd_orders"}:
            run_job(job, settings, spark, START + timedelta(days=1))
    assert {n: tables.read("bronze", n).count() for n in names} == before
