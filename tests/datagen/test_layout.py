"""Layout, names, encodings and headers follow the landing contract."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict

from lakehouse.datagen.records import (
    CRM_HEADER,
    DATASETS,
    INVENTORY_HEADER,
    POS_HEADER,
    TMALL_ITEM_HEADER,
    TMALL_ORDER_HEADER,
)

from .test_support import (
    SOURCES,
    clean_records,
    dataset_of,
    landing_files,
    read_truth,
    small,
    split_file,
)

DAYS = [(dt.date(2026, 3, 1) + dt.timedelta(days=i)).isoformat() for i in range(5)]
PER_DAY = {
    "tmall_orders": "tmall_orders",
    "tmall_order_items": "tmall_order_items",
    "jd_orders": "jd_orders",
    "mall_orders": "mall_orders",
    "crm_members": "crm_members",
    "inventory": "inventory",
    "products": "master",
    "sku_mapping": "master",
    "stores": "master",
    "campaigns": "campaigns",
    "campaign_touches": "campaigns",
}


def test_only_contract_sources_and_dt_folders() -> None:
    root, _ = small()
    assert sorted(p.name for p in root.iterdir()) == sorted((*SOURCES, "_truth"))
    for src in SOURCES:
        assert sorted(p.name for p in (root / src).iterdir()) == [f"dt={d}" for d in DAYS]


def test_every_file_name_matches_the_contract() -> None:
    root, _ = small()
    for src, _, name, _ in landing_files(root):
        dataset_of(src, name)  # raises on a name the contract does not allow


def test_every_source_delivers_every_day_with_own_date() -> None:
    root, _ = small()
    for ds, src in PER_DAY.items():
        ext = "jsonl" if DATASETS[ds].fmt == "jsonl" else "csv"
        prefix = {"tmall_order_items": "tmall_items"}.get(ds, ds)
        for d in DAYS:
            assert (root / src / f"dt={d}" / f"{prefix}_{d.replace('-', '')}.{ext}").is_file()


def test_one_pos_file_per_trading_store_and_day() -> None:
    root, _ = small()
    for d in DAYS:
        ymd = d.replace("-", "")
        stores = {r["store_code"]: r for r in clean_records(root, "master", d, f"stores_{ymd}.csv")}
        trading = {
            c
            for c, r in stores.items()
            if r["open_date"] <= d and (not r["close_date"] or d < r["close_date"])
        }
        own = {
            f.name[4:-13]
            for f in (root / "pos_sales" / f"dt={d}").iterdir()
            if f.name.endswith(f"_{ymd}.csv")
        }
        assert {c for c in own if c in stores} == trading


def test_encodings_headers_and_line_ends() -> None:
    root, _ = small()
    expected = {
        "tmall_order_items": list(TMALL_ITEM_HEADER),
        "pos_sales": list(POS_HEADER),
        "crm_members": list(CRM_HEADER),
        "inventory": list(INVENTORY_HEADER),
    }
    endings: dict[str, set[bytes]] = defaultdict(set)
    for src, _, name, path in landing_files(root):
        ds = dataset_of(src, name)
        data = path.read_bytes()
        if ds == "pos_sales":
            assert data.startswith(b"\xef\xbb\xbf")
        else:
            assert not data.startswith(b"\xef\xbb\xbf")
        if data:
            crlf = data.endswith(b"\r\n")
            endings[ds].add(b"\r\n" if crlf else b"\n")
            assert data.count(b"\n") == data.count(b"\r\n") if crlf else b"\r" not in data
        header, _ = split_file(ds, data)
        if DATASETS[ds].fmt == "jsonl":
            continue
        first = data.split(b"\n", 1)[0]
        if ds.startswith("tmall"):
            assert first.startswith(b'"') and "订单编号" in first.decode("gb18030")
            assert all(f.startswith('"') for f in first.decode("gb18030").rstrip("\r").split(","))
        if ds == "tmall_orders":
            assert header[: len(TMALL_ORDER_HEADER)] == list(TMALL_ORDER_HEADER)
        elif ds in expected:
            assert header == expected[ds]
        else:
            assert header == list(DATASETS[ds].header)
    for ds in ("pos_sales", "crm_members", "inventory", "jd_orders"):
        assert endings[ds] == {b"\n"}


def test_tmall_schema_drift_appends_columns() -> None:
    root, _ = small()
    widths = []
    for d in DAYS:
        path = root / "tmall_orders" / f"dt={d}" / f"tmall_orders_{d.replace('-', '')}.csv"
        header, _ = split_file("tmall_orders", path.read_bytes())
        widths.append(len(header))
    assert widths[0] == len(TMALL_ORDER_HEADER)
    assert widths[-1] > len(TMALL_ORDER_HEADER)
    assert widths == sorted(widths)


def test_jd_later_drops_carry_new_fields() -> None:
    root, _ = small()
    keys: list[set[str]] = []
    item_keys: list[set[str]] = []
    for d in DAYS:
        path = root / "jd_orders" / f"dt={d}" / f"jd_orders_{d.replace('-', '')}.jsonl"
        ks: set[str] = set()
        iks: set[str] = set()
        for line in path.read_bytes().splitlines():
            try:
                obj = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                continue
            ks |= set(obj)
            iks |= {k for it in obj["itemInfoList"] for k in it}
        keys.append(ks)
        item_keys.append(iks)
    assert keys[-1] > keys[0] and item_keys[-1] > item_keys[0]


def test_files_csv_lists_every_file() -> None:
    root, _ = small()
    listed = {(f["source"], f["dt"], f["file_name"]) for f in read_truth(root, "files.csv")}
    found = {(s, d, n) for s, d, n, _ in landing_files(root)}
    assert listed == found
