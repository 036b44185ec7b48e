"""Every dirt kind shows up, and each silver-layer bad line really has its problem."""

from __future__ import annotations

import collections
import pathlib

from lakehouse.datagen.dirt import KINDS

from .test_support import (
    clean_records,
    dataset_of,
    dates_in,
    landing_files,
    line_problem,
    read_truth,
    record,
    small,
    split_file,
    value_problems,
)
from .test_truth import scan


def test_every_kind_in_every_dataset() -> None:
    root, _ = small()
    seen = collections.defaultdict(set)
    for b in read_truth(root, "bad_records.csv"):
        seen[b["dataset"]].add(b["kind"])
    for ds, kinds in KINDS.items():
        assert set(kinds) <= seen[ds], (ds, set(kinds) - seen[ds])
    assert "unknown_store" in seen["pos_sales"]


def test_benign_dirt_present() -> None:
    root, _ = small()
    late = collections.Counter(r["dataset"] for r in read_truth(root, "late_records.csv"))
    for ds in (
        "tmall_orders",
        "tmall_order_items",
        "jd_orders",
        "mall_orders",
        "pos_sales",
        "campaign_touches",
    ):
        assert late[ds] >= 1, ds
    for r in read_truth(root, "late_records.csv"):
        assert r["business_date"] < r["dt"]
    files = read_truth(root, "files.csv")
    assert any(f["redelivery_of_dt"] for f in files)
    assert any(f["correction_of"] for f in files)
    assert any(f["data_lines"] == "0" for f in files if f["dataset"] == "pos_sales")


def _master(root: pathlib.Path, dt: str) -> dict[str, set[str]]:
    ymd = dt.replace("-", "")
    products = clean_records(root, "master", dt, f"products_{ymd}.csv")
    mapping = clean_records(root, "master", dt, f"sku_mapping_{ymd}.csv")
    stores = clean_records(root, "master", dt, f"stores_{ymd}.csv")
    skus = {p["sku_id"] for p in products}
    out = {
        "sku": skus,
        "barcode": {p["barcode"] for p in products},
        "store": {s["store_code"] for s in stores},
    }
    for platform in ("TMALL", "JD"):
        out[platform] = {
            m["platform_sku_code"]
            for m in mapping
            if m["platform"] == platform and m["sku_id"] in skus
        }
    return out


def _unknown(ds: str, rec: dict, m: dict[str, set[str]]) -> set[str]:
    """unknown_sku / unknown_store problems of a record against that day's master data."""
    out = set()
    sku_unknown = {
        "tmall_order_items": lambda: rec["商家编码"].strip().upper() not in m["TMALL"],
        "jd_orders": lambda: any(
            i["skuId"] not in m["JD"] or i["outerSkuId"] not in m["sku"]
            for i in rec["itemInfoList"]
        ),
        "mall_orders": lambda: any(i["sku_id"] not in m["sku"] for i in rec["items"]),
        "sku_mapping": lambda: rec["sku_id"] not in m["sku"],
    }
    if ds in sku_unknown and sku_unknown[ds]():
        out.add("unknown_sku")
    elif ds == "pos_sales":
        if rec["barcode"] not in m["barcode"]:
            out.add("unknown_sku")
        if rec["store_code"] not in m["store"]:
            out.add("unknown_store")
    elif ds == "inventory":
        if rec["sku_id"] not in m["sku"]:
            out.add("unknown_sku")
        if rec["location_type"] == "STORE" and rec["location_code"] not in m["store"]:
            out.add("unknown_store")
    return out


def test_silver_lines_have_their_problem_and_clean_lines_none() -> None:
    root, _ = small()
    bad = {
        (b["dataset"], b["dt"], b["file_name"], int(b["line_no"])): b["kind"]
        for b in read_truth(root, "bad_records.csv")
    }
    masters: dict[str, dict[str, set[str]]] = {}
    previous: dict[tuple[str, str], set[bytes]] = collections.defaultdict(set)
    checked = collections.Counter()
    for ds, dt, name, ln, raw, problem, header in scan(root):
        kind = bad.get((ds, dt, name, ln))
        seen = previous[(dt, name)]
        duplicate = raw in seen
        seen.add(raw)
        if problem is not None:
            continue
        if dt not in masters:
            masters[dt] = _master(root, dt)
        rec = record(ds, raw, header)
        found = value_problems(ds, rec) | _unknown(ds, rec, masters[dt])
        if any(d > dt for d in dates_in(ds, rec)):
            found.add("future_date")
        if duplicate:
            found.add("exact_duplicate")
        if kind is None:
            assert not found, f"{name}:{ln} clean but shows {found}"
        else:
            assert kind in found, f"{name}:{ln} is {kind} but shows {found}"
            checked[kind] += 1
    assert set(checked) >= {
        "exact_duplicate",
        "future_date",
        "unknown_sku",
        "unknown_store",
        "negative_amount",
        "zero_amount",
        "absurd_amount",
        "negative_quantity",
        "zero_quantity",
        "absurd_quantity",
    }


def test_undecodable_lines_fail_strictly() -> None:
    root, _ = small()
    n = 0
    for b in read_truth(root, "bad_records.csv"):
        if b["kind"] != "undecodable_bytes":
            continue
        ds = dataset_of(b["source"], b["file_name"])
        path = root / b["source"] / f"dt={b['dt']}" / b["file_name"]
        header, lines = split_file(ds, path.read_bytes())
        raw = lines[int(b["line_no"]) - (2 if header else 1)]
        assert line_problem(ds, raw, len(header) if header else None) == "undecodable_bytes"
        n += 1
    assert n >= 10


def test_files_per_source_are_listed() -> None:
    root, _ = small()
    assert {dataset_of(s, n) for s, _, n, _ in landing_files(root)} == set(KINDS)
