"""Real bronze jobs on a hand-made delivery, with real Delta tables in a temporary folder."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lakehouse.cli import main
from lakehouse.registry import get_job
from lakehouse.runtime import JobError, run_job
from lakehouse.tables import Tables

pytestmark = pytest.mark.integration

D1, D2 = date(2026, 3, 1), date(2026, 3, 2)
HEADER = (
    "sku_id,barcode,sku_name,brand,category_l1,category_l2,category_l3,list_price,unit_cost,"
    "launch_date,status"
)
PRODUCT = "SKU-00001,6901234567892,T恤,BrandA,服装,女装,T恤,99.00,40.00,2025-01-01,ACTIVE"


def _write(root: Path, source: str, day: date, name: str, content: bytes) -> None:
    folder = root / source / f"dt={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(content)


def _master(
    root: Path, day: date, products: list[str], extra_files: dict[str, bytes] | None = None
):
    stamp = day.strftime("%Y%m%d")
    _write(
        root,
        "master",
        day,
        f"products_{stamp}.csv",
        ("\n".join([HEADER, *products]) + "\n").encode(),
    )
    _write(
        root,
        "master",
        day,
        f"sku_mapping_{stamp}.csv",
        b"platform,platform_sku_code,sku_id\nTMALL,sku-00001 ,SKU-00001\n",
    )
    _write(
        root,
        "master",
        day,
        f"stores_{stamp}.csv",
        b"store_code,store_name,store_type,province,city,region,floor_area_sqm,staff_count,"
        b"open_date,close_date,store_phone\n",
    )
    for name, content in (extra_files or {}).items():
        _write(root, "master", day, name, content)


@pytest.fixture()
def landing(tmp_path: Path) -> Path:
    root = tmp_path / "landing"
    _master(root, D1, [PRODUCT, PRODUCT, "SKU-00002,69012345"])  # duplicate + short row
    day1_products = (root / "master" / "dt=2026-03-01" / "products_20260301.csv").read_bytes()
    # Day 2: the day-1 products file re-delivered byte for byte, a new snapshot, a stray file.
    _master(root, D2, [PRODUCT], {"products_20260301.csv": day1_products, "notes.txt": b"hi\n"})
    return root


def _count(tables: Tables, table: str, day: date) -> int:
    return tables.read("bronze", table).where(F.col("_delivery_date") == F.lit(day)).count()


def test_master_lands_reconciles_and_reruns_change_nothing(spark, settings_for, landing):
    settings = settings_for(landing)
    tables = Tables(spark, settings.warehouse)
    job = get_job(settings, "bronze.master")

    first = run_job(job, settings, spark, D1)
    # products: 2 rows + 1 short line quarantined; sku_mapping: 1 row; stores: header only.
    assert (first.rows_read, first.rows_written, first.rows_quarantined) == (4, 3, 1)
    second = run_job(job, settings, spark, D2)
    # 1 product + 1 mapping row; the re-delivered file adds nothing; the stray file is quarantined.
    assert (second.rows_written, second.rows_quarantined) == (2, 1)
    assert second.details["redelivered"] == 1

    before = {
        t: tables.read("bronze", t).count() for t in ("products", "quarantine", "ingested_files")
    }
    run_job(job, settings, spark, D2)
    run_job(job, settings, spark, D1)
    after = {
        t: tables.read("bronze", t).count() for t in ("products", "quarantine", "ingested_files")
    }
    assert before == after
    assert _count(tables, "products", D1) == 2
    assert _count(tables, "products", D2) == 1

    files = {
        (r.delivery_date, r.file_name): r for r in tables.read("bronze", "ingested_files").collect()
    }
    redelivered = files[(D2, "products_20260301.csv")]
    assert (redelivered.status, redelivered.redelivery_of) == ("REDELIVERY", D1)
    assert files[(D2, "notes.txt")].status == "UNRECOGNIZED"
    for f in files.values():
        if f.status == "INGESTED":
            assert f.data_lines == f.rows + f.quarantined

    reasons = {
        (r.file_name, r.line_no, r.reason) for r in tables.read("bronze", "quarantine").collect()
    }
    assert reasons == {
        ("products_20260301.csv", 4, "wrong_field_count"),
        ("notes.txt", None, "unrecognized_file"),
    }
    row = tables.read("bronze", "products").where("_line_no = 2 AND _delivery_date = '2026-03-01'")
    lineage = row.select("_source_file", "_file_date", "_record_hash", "_run_id", "_ingest_time")
    assert all(v is not None for v in lineage.first())
    assert spark.sql("SELECT count(*) FROM bronze.products").first()[0] == 3

    log = tables.read("ops", "run_log").where("job = 'bronze.master'")
    assert log.count() == 4
    assert {r.status for r in log.collect()} == {"SUCCEEDED"}


def test_missing_landing_folder_is_a_clear_failure_and_is_logged(spark, settings_for, tmp_path):
    settings = settings_for(tmp_path / "nowhere")
    with pytest.raises(
        JobError, match=r"landing folder .*crm_members/dt=2026-03-01 does not exist"
    ):
        run_job(get_job(settings, "bronze.crm_members"), settings, spark, D1)
    log = Tables(spark, settings.warehouse).read("ops", "run_log").first()
    assert log.status == "FAILED"
    assert "does not exist" in log.error


def test_a_dataset_without_its_file_fails_the_job(spark, settings_for, tmp_path):
    root = tmp_path / "landing"
    _write(
        root,
        "campaigns",
        D1,
        "campaigns_20260301.csv",
        b"campaign_id,campaign_name,channel,start_date,end_date,cost_yuan,coupon_code\n",
    )
    settings = settings_for(root)
    with pytest.raises(JobError, match=r"no file for campaign_touches"):
        run_job(get_job(settings, "bronze.campaigns"), settings, spark, D1)


def test_cli_reports_bad_configuration_in_one_line(tmp_path, monkeypatch, capsys):
    conf = tmp_path / "conf"
    shutil.copytree(Path(__file__).parents[2] / "conf", conf)
    (conf / "local.yml").write_text("sparkk: {}\n")
    monkeypatch.setenv("LAKEHOUSE_CONF", str(conf))
    assert main(["jobs"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lakehouse: error: invalid configuration")
    assert "unknown key 'sparkk'" in err
    assert len(err.splitlines()) == 1


def test_cli_rejects_unknown_job_and_bad_date(capsys):
    assert main(["run", "bronze.nope", "--run-date", "2026-03-01"]) == 2  # a bad argument
    assert "unknown job 'bronze.nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "bronze.master", "--run-date", "2026-13-01"])
    assert exit_info.value.code == 2


def test_register_repoints_a_name_to_another_warehouse(spark, tmp_path):
    first, second = Tables(spark, str(tmp_path / "a")), Tables(spark, str(tmp_path / "b"))
    spark.range(2).write.format("delta").save(first.path("ops", "probe"))
    spark.range(5).write.format("delta").save(second.path("ops", "probe"))
    first.register("ops", "probe")
    assert spark.table("ops.probe").count() == 2
    second.register("ops", "probe")
    assert spark.table("ops.probe").count() == 5
    assert first.read("ops", "probe").count() == 2  # dropping the old name kept its files


def test_an_empty_file_is_a_delivery_with_no_lines(spark, settings_for, tmp_path):
    """A day with nothing new may deliver a 0-byte JSON Lines file (Spark's readers skip it)."""
    root = tmp_path / "landing"
    _write(root, "jd_orders", D1, "jd_orders_20260301.jsonl", b"")
    settings = settings_for(root)
    result = run_job(get_job(settings, "bronze.jd_orders"), settings, spark, D1)
    assert (result.rows_read, result.rows_written) == (0, 0)
    [entry] = Tables(spark, settings.warehouse).read("bronze", "ingested_files").collect()
    assert (entry.file_name, entry.status, entry.data_lines, entry.size_bytes) == (
        "jd_orders_20260301.jsonl",
        "INGESTED",
        0,
        0,
    )


def test_a_dataset_whose_only_file_is_a_redelivery_lands_nothing_new(spark, settings_for, tmp_path):
    """The contract lets a source deliver yesterday's file again (same name, same bytes); when
    that is a dataset's only file of the day, the dataset lands no row, and the job succeeds."""
    root = tmp_path / "landing"
    _master(root, D1, [PRODUCT])
    day1 = root / "master" / "dt=2026-03-01"
    _write(root, "master", D2, "stores_20260301.csv", (day1 / "stores_20260301.csv").read_bytes())
    for name in ("products", "sku_mapping"):
        content = (day1 / f"{name}_20260301.csv").read_bytes()
        _write(root, "master", D2, f"{name}_20260302.csv", content)
    crm = b"member_id,card_no,name,phone,email,gender,birthday,register_channel,"
    crm += b"register_store_code,register_time,level,points,unionid,marketing_opt_out\n"
    crm += "M1,C1,张三,13800138000,,M,,STORE,S0001,2026-03-01 10:00:00,普卡,0,,N\n".encode()
    _write(root, "crm_members", D1, "crm_members_20260301.csv", crm)
    _write(root, "crm_members", D2, "crm_members_20260301.csv", crm)  # nothing else that day
    settings = settings_for(root)
    tables = Tables(spark, settings.warehouse)

    for name in ("bronze.master", "bronze.crm_members"):
        run_job(get_job(settings, name), settings, spark, D1)
        second = run_job(get_job(settings, name), settings, spark, D2)
        assert second.details["redelivered"] == 1, name
    assert _count(tables, "stores", D2) == 0
    assert _count(tables, "products", D2) == 1
    assert _count(tables, "crm_members", D1) == 1
    assert _count(tables, "crm_members", D2) == 0
    files = tables.read("bronze", "ingested_files").where(F.col("delivery_date") == F.lit(D2))
    assert {(r.file_name, r.status) for r in files.collect()} == {
        ("stores_20260301.csv", "REDELIVERY"),
        ("products_20260302.csv", "INGESTED"),
        ("sku_mapping_20260302.csv", "INGESTED"),
        ("crm_members_20260301.csv", "REDELIVERY"),
    }
