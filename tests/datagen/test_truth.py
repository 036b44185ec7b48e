"""The truth files say exactly what the landing files contain."""

from __future__ import annotations

import collections
import datetime
import pathlib
from collections.abc import Iterator

from lakehouse.datagen.records import DATASETS

from .test_support import (
    dataset_of,
    identifiers,
    landing_files,
    line_problem,
    medium,
    month,
    read_truth,
    record,
    small,
    split_file,
    unwrap_order_no,
)

Line = tuple[str, str, str, int, bytes, str | None, list[str] | None]


def scan(root: pathlib.Path, only: str | None = None) -> Iterator[Line]:
    """(dataset, dt, name, line_no, raw, problem, header) for every data line (of a dataset)."""
    for src, dt, name, path in landing_files(root, DATASETS[only].source if only else None):
        ds = dataset_of(src, name)
        if only and ds != only:
            continue
        header, lines = split_file(ds, path.read_bytes())
        first = 1 if header is None else 2
        for i, raw in enumerate(lines):
            yield (
                ds,
                dt,
                name,
                i + first,
                raw,
                line_problem(ds, raw, len(header) if header else None),
                header,
            )


def test_bad_records_match_unreadable_lines_exactly() -> None:
    root, _ = small()
    bad = {
        (b["dataset"], b["dt"], b["file_name"], int(b["line_no"])): b
        for b in read_truth(root, "bad_records.csv")
    }
    assert bad, "no bad records at all"
    seen = set()
    for ds, dt, name, ln, _, problem, _ in scan(root):
        b = bad.get((ds, dt, name, ln))
        if problem is not None:
            assert b is not None, f"{name}:{ln} unreadable ({problem}) but not in truth"
            assert (b["kind"], b["layer"]) == (problem, "bronze"), (name, ln)
        elif b is not None:
            assert b["layer"] == "silver", f"{name}:{ln} readable but truth says {b['kind']}"
        if b is not None:
            seen.add((ds, dt, name, ln))
            assert b["source"] == root.joinpath(b["source"]).name
    assert seen == set(bad), "truth lists lines that do not exist"


def test_files_csv_counts_and_redeliveries() -> None:
    root, summary = small()
    files = read_truth(root, "files.csv")
    per_ds: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    redelivered = corrected = 0
    for f in files:
        path = root / f["source"] / f"dt={f['dt']}" / f["file_name"]
        _, lines = split_file(f["dataset"], path.read_bytes())
        assert int(f["data_lines"]) == len(lines), f["file_name"]
        per_ds[f["dataset"]][0] += 1
        per_ds[f["dataset"]][1] += len(lines)
        if f["redelivery_of_dt"]:
            redelivered += 1
            assert f["redelivery_of_dt"] < f["dt"]
            orig = root / f["source"] / f"dt={f['redelivery_of_dt']}" / f["file_name"]
            assert orig.read_bytes() == path.read_bytes()
        if f["correction_of"]:
            corrected += 1
            assert f["file_name"].endswith("_2.csv")
            assert f["correction_of"] == f["file_name"].replace("_2.csv", ".csv")
    assert redelivered >= 2 and corrected >= 1
    assert {k: {"files": v[0], "data_lines": v[1]} for k, v in per_ds.items()} == summary


def test_corrections_change_the_listed_rows() -> None:
    root, _ = small()
    rows = read_truth(root, "corrections.csv")
    assert rows
    for r in rows:
        new = root / "tmall_orders" / f"dt={r['dt']}" / r["file_name"]
        old = root / "tmall_orders" / f"dt={r['original_dt']}" / r["correction_of"]
        h_new, l_new = split_file("tmall_orders", new.read_bytes())
        h_old, l_old = split_file("tmall_orders", old.read_bytes())
        a = record("tmall_orders", l_new[int(r["line_no"]) - 2], h_new)
        b = record("tmall_orders", l_old[int(r["original_line_no"]) - 2], h_old)
        assert a[r["field"]] == r["corrected_value"] != b[r["field"]] == r["original_value"]
        assert unwrap_order_no(a["订单编号"]) == r["order_id"] == unwrap_order_no(b["订单编号"])


def test_identifiers_complete_and_one_person_per_record() -> None:
    root, _ = small()
    owner = {
        (r["identifier_type"], r["value"]): r["person_id"]
        for r in read_truth(root, "identifiers.csv")
    }
    shared = {
        (r["identifier_type"], r["value"]) for r in read_truth(root, "shared_identifiers.csv")
    }
    assert not set(owner) & shared
    bad = {
        (b["dataset"], b["dt"], b["file_name"], int(b["line_no"]))
        for b in read_truth(root, "bad_records.csv")
    }
    used = set()
    for ds, dt, name, ln, raw, problem, header in scan(root):
        if problem is not None or (ds, dt, name, ln) in bad:
            continue
        ids = identifiers(ds, record(ds, raw, header))
        persons = set()
        for key in ids:
            assert key in owner or key in shared, f"{name}:{ln} {key} not in truth"
            if key in owner:
                used.add(key)
                persons.add(owner[key])
        assert len(persons) <= 1, f"{name}:{ln} glues {persons}"
    assert used == set(owner), "truth lists identifiers that appear nowhere"


def test_cross_platform_people_and_shared_numbers() -> None:
    root, _ = small()
    kinds: dict[str, set[str]] = collections.defaultdict(set)
    for r in read_truth(root, "identifiers.csv"):
        kinds[r["person_id"]].add(r["identifier_type"])
    assert any({"tmall_nick", "jd_pin", "phone"} <= k for k in kinds.values())
    assert any({"tmall_nick", "card_no"} <= k for k in kinds.values())
    members = collections.Counter(
        r["person_id"]
        for r in read_truth(root, "identifiers.csv")
        if r["identifier_type"] == "member_id"
    )
    assert max(members.values()) >= 2, "nobody holds two CRM member records"
    shared = read_truth(root, "shared_identifiers.csv")
    assert {r["reason"] for r in shared} >= {"store_phone"}
    stores = {r["store_phone"] for d in ("2026-03-01",) for r in _stores(root, d)}
    assert {r["value"] for r in shared if r["reason"] == "store_phone"} >= stores


def _stores(root: pathlib.Path, d: str) -> list[dict]:
    from .test_support import clean_records

    return clean_records(root, "master", d, f"stores_{d.replace('-', '')}.csv")


def test_store_phone_keyed_on_many_tickets() -> None:
    store_phones = {
        r["value"]
        for r in read_truth(medium(), "shared_identifiers.csv")
        if r["reason"] == "store_phone"
    }
    tickets: dict[str, set[tuple[str, str]]] = collections.defaultdict(set)
    for ds, _, _, _, raw, problem, header in scan(medium(), "pos_sales"):
        if problem is not None:
            continue
        rec = record(ds, raw, header)
        phone = rec["member_phone"].replace("-", "")
        if phone in store_phones:
            tickets[phone].add((rec["store_code"], rec["ticket_no"]))
    assert tickets and max(len(v) for v in tickets.values()) >= 3
    openids = [
        r for r in read_truth(medium(), "shared_identifiers.csv") if r["reason"] == "family_device"
    ]
    assert openids


def test_orders_truth_matches_delivered_records() -> None:
    root, _ = small()
    orders = read_truth(root, "orders.csv")
    lines = read_truth(root, "order_lines.csv")
    assert {o["channel"] for o in orders} == {"TMALL", "JD", "MALL", "POS"}
    per_order = collections.Counter(
        (ln["channel"], ln["order_id"], ln["store_code"]) for ln in lines
    )
    for o in orders:
        assert per_order[(o["channel"], o["order_id"], o["store_code"])] >= 1
        goods, disc = float(o["goods_amount"]), float(o["discount_amount"])
        paid, ship = float(o["paid_amount"]), float(o["shipping_amount"])
        if paid:
            assert abs(goods - disc + ship - paid) < 0.005, o
        assert 0 <= float(o["refund_amount"]) <= abs(goods) + 0.005


def test_crm_departures_match_the_snapshots_and_later_records() -> None:
    """A member record that left the CRM (merged into its person's other record, or closed) is
    in the snapshot of the day before it left and in none from that day on; no touch or sale of
    a later day (but a return of an earlier ticket) names it, though its people go on buying."""
    root, _ = month()
    departures = {r["member_id"]: r for r in read_truth(root, "crm_departures.csv")}
    assert {r["kind"] for r in departures.values()} == {"merged", "closed"}
    owner = {
        r["value"]: r["person_id"]
        for r in read_truth(root, "identifiers.csv")
        if r["identifier_type"] == "member_id"
    }
    for mid, r in departures.items():
        assert owner[mid] == r["person_id"], r
        if r["kind"] == "merged":
            assert owner[r["merged_into"]] == r["person_id"], r
            assert r["merged_into"] not in departures, r
        else:
            assert r["merged_into"] == "", r
    listed: dict[str, set[str]] = collections.defaultdict(set)
    for ds, dt, name, _, raw, problem, header in scan(root, "crm_members"):
        if problem is None and name == f"crm_members_{dt.replace('-', '')}.csv":
            listed[dt].add(record(ds, raw, header)["member_id"])
    assert len(listed) == 30
    for mid, r in departures.items():
        eve = (datetime.date.fromisoformat(r["left_on"]) - datetime.timedelta(days=1)).isoformat()
        assert mid in listed[eve], f"{mid} not listed the day before it left"
        assert not any(mid in ids for day, ids in listed.items() if day >= r["left_on"]), r
    left_on = {r["person_id"]: r["left_on"] for r in departures.values()}
    later = 0
    for o in read_truth(root, "orders.csv"):
        later += o["order_date"] >= left_on.get(o["person_id"], "9999")
        left = departures.get(o["member_id"])
        if left is not None and o["status"] != "RETURN":
            assert o["order_date"] < left["left_on"], o
    assert later >= 10, "too few sales after a departure to tell"
    for ds, _, _, _, raw, problem, header in scan(root, "campaign_touches"):
        if problem is None:
            touch = record(ds, raw, header)
            left = departures.get(touch["member_id"])
            assert left is None or touch["touch_time"][:10] < left["left_on"], (touch, left)
