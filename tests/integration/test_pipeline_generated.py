"""Bronze, silver and One ID jobs over several generated days, checked against the generator's
truth.

The generated pipeline of tests/integration/conftest.py (every bronze, silver and One ID job, day
by day), shared with the gold modules.
"""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lakehouse.oneid.accuracy import pair_scores
from lakehouse.runtime import run_job
from lakehouse.tables import Tables
from tests.integration.conftest import DAYS, START

pytestmark = pytest.mark.integration


BRONZE_KINDS = {"wrong_field_count", "undecodable_bytes", "invalid_json"}


def _truth(landing: Path, name: str) -> list[dict[str, str]]:
    with (landing / "_truth" / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def landed(generated_pipeline):
    p = generated_pipeline
    return p.settings, p.landing, p.tables, p.results, p.jobs


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


SALES = {"tmall_orders", "tmall_order_items", "jd_orders", "mall_orders", "pos_sales"}
SILVER_DATASETS = {
    *SALES,
    "crm_members",
    "inventory",
    "products",
    "stores",
    "sku_mapping",
    "campaigns",
    "campaign_touches",
}


def _silver_quarantine_lines(tables: Tables) -> set[tuple[str, int]]:
    rows = (
        tables.read("silver", "quarantine")
        .where(F.col("source_file").isNotNull())
        .select("source_file", "line_no")
        .collect()
    )
    return {(r.source_file.rsplit("/", 1)[-1], r.line_no) for r in rows}


def test_silver_reconciles_with_bronze_every_day(landed):
    _, _, tables, _, _ = landed
    rec = tables.read("silver", "reconciliation").collect()
    days = {START + timedelta(days=i) for i in range(DAYS)}
    assert {(r.dataset, r.delivery_date) for r in rec} == {
        (d, day) for d in SILVER_DATASETS for day in days
    }
    for r in rec:
        assert r.bronze_rows == r.accepted_rows + r.duplicate_rows + r.quarantined_rows, r
        bronze_rows = (
            tables.read("bronze", r.dataset)
            .where(F.col("_delivery_date") == F.lit(r.delivery_date))
            .count()
        )
        assert r.bronze_rows == bronze_rows
        if r.dataset in SALES:
            assert r.bronze_amount == r.accepted_amount + r.quarantined_amount, r
        else:
            assert (r.bronze_amount, r.accepted_amount, r.quarantined_amount) == (None,) * 3
    verdicts = tables.read("ops", "dq_results").where("table = 'silver.reconciliation'")
    assert {r.expectation for r in verdicts.collect()} == {"rows_reconcile", "amount_reconciles"}
    assert verdicts.where("NOT success").count() == 0


DATASETS_OF_JOB = {
    "silver.sales": SALES,
    "silver.members": {"crm_members"},
    "silver.inventory": {"inventory"},
    "silver.master": {"products", "stores", "sku_mapping"},
    "silver.campaigns": {"campaigns", "campaign_touches"},
}


def test_a_silver_job_logs_as_quarantined_the_rows_its_reconciliation_does(landed):
    """The run log's count is what an operator reads first: rows not published that day
    (duplicates, superseded, gate-quarantined), never a published row carrying a flag."""
    _, _, tables, results, _ = landed
    rec = tables.read("silver", "reconciliation").collect()
    held = {}
    for r in rec:
        held[(r.dataset, r.delivery_date)] = r.duplicate_rows + r.quarantined_rows
    logged, expected = {}, {}
    for (name, day), result in results.items():
        if name in DATASETS_OF_JOB:
            logged[(name, day)] = result.rows_quarantined
            expected[(name, day)] = sum(held[(d, day)] for d in DATASETS_OF_JOB[name])
    assert len(logged) == len(DATASETS_OF_JOB) * DAYS
    assert logged == expected
    assert any(v for (name, _), v in expected.items() if name == "silver.campaigns")


def test_a_member_twice_in_one_snapshot_is_counted_as_superseded(landed):
    """The generator repeats a CRM member in a snapshot (one line with a future time): one of
    the two lines is superseded, and counted as a duplicate with its own quarantine record."""
    _, _, tables, _, _ = landed
    members = tables.read("silver", "quarantine").where("table = 'silver.members'")
    assert members.where("expectation = 'superseded_in_delivery'").count() >= 1
    rec = tables.read("silver", "reconciliation").where("dataset = 'crm_members'").collect()
    for r in rec:
        day = members.where(F.col("run_date") == F.lit(r.delivery_date))
        duplicates = day.where(
            "expectation IN ('superseded_in_delivery', 'exact_duplicate')"
        ).count()
        assert r.duplicate_rows == duplicates, r


def test_every_silver_level_bad_record_of_the_truth_is_quarantined(landed):
    _, landing, tables, _, _ = landed
    copies = {
        (f["dataset"], f["dt"], f["file_name"])
        for f in _truth(landing, "files.csv")
        if f["redelivery_of_dt"]
    }
    expected = {
        (b["file_name"], int(b["line_no"])): b["kind"]
        for b in _truth(landing, "bad_records.csv")
        if b["layer"] == "silver"
        and b["dataset"] in SILVER_DATASETS
        and (b["dataset"], b["dt"], b["file_name"]) not in copies
    }
    assert expected, "the generator injected no silver-level dirt"
    found = _silver_quarantine_lines(tables)
    missing = {k: v for k, v in expected.items() if k not in found}
    assert not missing, f"bad records that reached silver unquarantined: {missing}"


def test_silver_quarantines_no_clean_line_but_for_a_later_one(landed):
    """The other direction: a line the truth calls clean is quarantined only as a copy (exact
    duplicate) or as superseded by a later line of its key, never by a rule."""
    _, landing, tables, _, _ = landed
    bad = {
        (b["file_name"], int(b["line_no"]))
        for b in _truth(landing, "bad_records.csv")
        if b["layer"] in ("bronze", "silver")
    }
    rows = (
        tables.read("silver", "quarantine")
        .where(F.col("source_file").isNotNull())
        .select("table", "source_file", "line_no", "expectation")
        .collect()
    )
    held = {
        (r.table, r.source_file.rsplit("/", 1)[-1], r.line_no, r.expectation)
        for r in rows
        if (r.source_file.rsplit("/", 1)[-1], r.line_no) not in bad
    }
    by_rule = {h for h in held if h[3] not in ("exact_duplicate", "superseded_in_delivery")}
    assert not by_rule, f"clean lines quarantined by a rule: {sorted(by_rule)[:20]}"


# The platforms' order states as the contract names them (written out, not read from
# conf/silver.yml, so a wrong mapping there fails here). CLOSED: REFUNDED when it was paid.
ORDER_STATES = {
    ("TMALL", "等待买家付款"): "CREATED",
    ("TMALL", "买家已付款，等待卖家发货"): "PAID",
    ("TMALL", "卖家已发货，等待买家确认"): "SHIPPED",
    ("TMALL", "交易成功"): "COMPLETED",
    ("TMALL", "交易关闭"): "CLOSED",
    ("JD", "WAIT_SELLER_STOCK_OUT"): "PAID",
    ("JD", "WAIT_GOODS_RECEIVE_CONFIRM"): "SHIPPED",
    ("JD", "FINISHED_L"): "COMPLETED",
    ("JD", "TRADE_CANCELED"): "CLOSED",
    ("JD", "LOCKED"): "PAID",
    ("MALL", "CREATED"): "CREATED",
    ("MALL", "PAID"): "PAID",
    ("MALL", "SHIPPED"): "SHIPPED",
    ("MALL", "COMPLETED"): "COMPLETED",
    ("MALL", "CANCELLED"): "CLOSED",
    ("MALL", "REFUNDED"): "REFUNDED",
}


def test_final_online_order_states_and_money_match_the_truth(landed):
    """Every online order of the truth is in silver in its last state, with its money. Before:
    orders missing from silver, or in an older state, were skipped, and the expected state was
    read from conf's own status map."""
    _, landing, tables, _, _ = landed
    orders = {r.order_key: r for r in tables.read("silver", "orders").collect()}
    truth = [
        t
        for t in _truth(landing, "orders.csv")
        if t["channel"] in ("TMALL", "JD", "MALL")
        and t["order_date"] <= str(START + timedelta(days=DAYS - 1))
    ]
    assert len(truth) > 10
    missing, wrong = [], []
    for t in truth:
        key = f"{t['channel']}:{t['order_id']}"
        got = orders.get(key)
        if got is None:
            missing.append((key, t["status"]))
            continue
        expected = ORDER_STATES[(t["channel"], t["status"])]
        if expected == "CLOSED":
            expected = "REFUNDED" if t["paid_amount"] != "0.00" else "CANCELLED"
        seen = (got.status, str(got.paid_amount), str(got.refunded_amount))
        if seen != (expected, t["paid_amount"], t["refund_amount"]):
            wrong.append((key, seen, (expected, t["paid_amount"], t["refund_amount"])))
    assert not missing, f"truth orders not in silver.orders: {missing}"
    assert not wrong, f"(key, silver, truth): {wrong}"


def test_silver_holds_no_online_order_but_the_truths_and_its_dirts(landed):
    """The other direction of the truth test: an online order in silver is one the truth
    knows, or one of the lines the generator injected as dirt (an order of an unknown SKU is
    kept, with its flag). Before nothing checked that silver invents no order."""
    _, landing, tables, _, _ = landed
    known = {
        f"{t['channel']}:{t['order_id']}"
        for t in _truth(landing, "orders.csv")
        if t["channel"] in ("TMALL", "JD", "MALL")
    }
    dirt = {(b["file_name"], int(b["line_no"])) for b in _truth(landing, "bad_records.csv")}
    online = (
        tables.read("silver", "orders")
        .where(F.col("platform").isin("TMALL", "JD", "MALL"))
        .select("order_key", "_source_file", "_line_no")
        .collect()
    )
    assert len(online) > 10
    invented = [
        (r.order_key, r._source_file.rsplit("/", 1)[-1], r._line_no)
        for r in online
        if r.order_key not in known and (r._source_file.rsplit("/", 1)[-1], r._line_no) not in dirt
    ]
    assert not invented, f"silver orders neither in the truth nor injected: {invented[:20]}"


def _rows(tables: Tables, name: str) -> list[str]:
    return sorted(repr(tuple(r)) for r in tables.read("silver", name).collect())


# What the silver jobs write, but their run-stamped logs (SILVER_LOGS).
SILVER_ROWS = [
    "orders",
    "order_lines",
    "products",
    "stores",
    "sku_map",
    "members",
    "identities",
    "campaigns",
    "campaign_touches",
    "inventory_daily",
]


# Run-stamped logs: counted, where the generated days made them.
SILVER_LOGS = [
    "quarantine",
    "reconciliation",
    "held_line_releases",
    "retracted_pos_lines",
    "retracted_stock_positions",
    "retracted_campaign_touches",
]


def test_rerunning_silver_for_a_day_changes_nothing(landed, spark):
    """Every silver job reruns day 2 after day 3 ran: each table it writes keeps its rows (its
    logs their number)."""
    settings, _, tables, _, jobs = landed
    counted = [n for n in SILVER_LOGS if tables.exists("silver", n)]
    assert {"quarantine", "reconciliation"} <= set(counted)
    before = {n: _rows(tables, n) for n in SILVER_ROWS}
    counts = {n: tables.read("silver", n).count() for n in counted}
    for job in jobs:
        if job.layer == "silver":
            run_job(job, settings, spark, START + timedelta(days=1))
    assert {n: tables.read("silver", n).count() for n in counted} == counts
    assert [n for n in SILVER_LOGS if tables.exists("silver", n)] == counted
    after = {n: _rows(tables, n) for n in SILVER_ROWS}
    assert {n for n in SILVER_ROWS if after[n] != before[n]} == set()


def test_one_id_links_people_as_the_truth_says(landed, spark):
    _, landing, tables, _, _ = landed
    truth = spark.createDataFrame(
        [
            (t["person_id"], t["identifier_type"], t["value"])
            for t in _truth(landing, "identifiers.csv")
        ],
        "person_id string, identifier_type string, value string",
    )
    scores = pair_scores(tables.read("oneid", "identity_map"), truth)
    print(f"One ID against the truth: {scores}")
    assert scores.true_pairs > 50, scores
    assert scores.precision >= 0.995, str(scores)
    assert scores.recall >= 0.98, str(scores)


def test_one_id_links_every_kind_of_identifier(landed):
    """Per identifier type, the share of its true pairs (with its owner's other identifiers)
    that One ID links. Before only the overall recall was checked, which a channel whose ids
    never link at all (JD pins: 0.992 overall) still passed."""
    _, landing, tables, _, _ = landed
    one_id = {
        (r.identifier_type, r.identifier_value): r.one_id
        for r in tables.read("oneid", "identity_map").collect()
    }
    owned: dict[str, list[tuple[str, str]]] = {}
    for t in _truth(landing, "identifiers.csv"):
        owned.setdefault(t["person_id"], []).append((t["identifier_type"], t["value"]))
    pairs: dict[str, list[int]] = {}
    for ids in owned.values():
        for kind, value in ids:
            mine = one_id.get((kind, value))
            for other in ids:
                if other != (kind, value):
                    linked = mine is not None and one_id.get(other) == mine
                    counts = pairs.setdefault(kind, [0, 0])
                    counts[0] += 1
                    counts[1] += linked
    recall = {kind: round(hit / total, 4) for kind, (total, hit) in pairs.items()}
    print(f"One ID recall per identifier type: {recall}")
    assert {"phone", "member_id", "tmall_nick", "jd_pin", "openid"} <= set(recall), recall
    # The truth pairs a Tmall nick with all its owner's ids, but a nick links only through an
    # order carrying the buyer's phone, and a fifth of Tmall orders show it masked or not at all:
    # a buyer with only such orders is a pair no evidence supports (measured: 0.943, the other
    # types 0.999 or 1.0). A channel that never links (its type near 0) fails either way.
    floors = {"tmall_nick": 0.9}
    low = {k: r for k, r in recall.items() if r < floors.get(k, 0.99)}
    assert not low, recall


def test_store_phones_of_the_truth_link_nothing(landed):
    _, landing, tables, _, _ = landed
    store_phones = {
        t["value"]
        for t in _truth(landing, "shared_identifiers.csv")
        if t["reason"] == "store_phone"
    }
    seen = {
        r.identifier_value
        for r in tables.read("silver", "identities")
        .where(F.col("identifier_type") == "phone")
        .select("identifier_value")
        .distinct()
        .collect()
    }
    assert store_phones & seen, "no store phone was keyed in: the check would prove nothing"
    suppressed = {
        r.identifier_value: r.reason
        for r in tables.read("oneid", "suppressed_identifiers").collect()
    }
    for phone in store_phones & seen:
        assert suppressed.get(phone) == "store_phone", phone
    mapped = {r.identifier_value for r in tables.read("oneid", "identity_map").collect()}
    assert not store_phones & mapped


def test_every_one_id_has_one_golden_record(landed):
    _, _, tables, _, _ = landed
    ids = tables.read("oneid", "identity_map").select("one_id").distinct()
    golden = tables.read("oneid", "golden_members")
    assert golden.count() == golden.select("one_id").distinct().count()
    assert ids.join(golden, "one_id", "left_anti").count() == 0
    assert golden.join(ids, "one_id", "left_anti").count() == 0
    suppressed = tables.read("oneid", "suppressed_identifiers").select(
        F.col("identifier_value").alias("phone")
    )
    assert golden.join(suppressed, "phone", "left_semi").count() == 0


def test_member_records_the_crm_dropped_have_left_it_and_their_golden_records(landed):
    """The generator merges a person's second member record into the first, or closes an only
    one (truth: crm_departures.csv), and the full snapshot lists it no more. silver.members
    marks each on the truth's day and no other; the person's golden record no longer counts
    it as a membership."""
    _, landing, tables, _, _ = landed
    departures = {r["member_id"]: r for r in _truth(landing, "crm_departures.csv")}
    assert {r["kind"] for r in departures.values()} == {"merged", "closed"}
    known = {
        t["value"]
        for t in _truth(landing, "identifiers.csv")
        if t["identifier_type"] == "member_id"
    }
    left = {r.member_id: r.left_crm_on for r in tables.read("silver", "members").collect()}
    assert known <= set(left)
    marked = {m: day.isoformat() for m, day in left.items() if m in known and day is not None}
    assert marked == {m: r["left_on"] for m, r in departures.items()}
    one_id = {
        r.identifier_value: r.one_id
        for r in tables.read("oneid", "identity_map")
        .where(F.col("identifier_type") == "member_id")
        .collect()
    }
    golden = {r.one_id: r for r in tables.read("oneid", "golden_members").collect()}
    for member_id, departure in departures.items():
        record = golden[one_id[member_id]]
        assert member_id not in (record.member_ids or []), departure
        if departure["kind"] == "merged":
            assert record.member_id == departure["merged_into"], departure
            assert record.member_ids == [departure["merged_into"]], departure
        else:
            assert record.member_id is None and not record.member_ids, departure
            assert record.level is None and record.points is None, departure


def test_rerunning_one_id_for_the_last_day_changes_nothing(landed, spark):
    settings, _, tables, _, jobs = landed
    names = ["identity_map", "links", "one_id_history", "suppressed_identifiers", "golden_members"]

    def rows(name):
        return sorted(repr(tuple(r)) for r in tables.read("oneid", name).collect())

    before = {n: rows(n) for n in names}
    for job in jobs:
        if job.layer == "oneid":
            run_job(job, settings, spark, START + timedelta(days=DAYS - 1))
    assert {n: rows(n) for n in names} == before
