"""Value spellings and business shapes: the variants the contract allows all show up."""

from __future__ import annotations

import collections
import json
import pathlib
import re
from collections.abc import Iterator

from lakehouse.datagen.formats import ean13_valid

from .test_support import medium, norm_phone, read_truth, record, small, unwrap_order_no, yuan
from .test_truth import scan


def clean(root: pathlib.Path, want: str) -> Iterator[tuple[str, str, dict]]:
    """(dt, file name, record) of the clean lines of one dataset."""
    bad = {
        (b["dt"], b["file_name"], int(b["line_no"]))
        for b in read_truth(root, "bad_records.csv")
        if b["dataset"] == want
    }
    for ds, dt, name, ln, raw, problem, header in scan(root, want):
        if problem is None and (dt, name, ln) not in bad:
            yield dt, name, record(ds, raw, header)


def test_tmall_order_numbers_and_spellings() -> None:
    styles, phones = collections.Counter(), collections.Counter()
    statuses, grouped = set(), 0
    for _, _, r in clean(medium(), "tmall_orders"):
        raw = r["订单编号"]
        styles[
            "eq"
            if raw.startswith("=")
            else "tab"
            if raw.startswith("\t")
            else "apos"
            if raw.startswith("'")
            else "plain"
        ] += 1
        assert re.fullmatch(r"\d{18,19}", unwrap_order_no(raw)), raw
        p = r["联系手机"]
        phones[
            "masked"
            if "*" in p
            else "+86"
            if p.startswith("+86")
            else "86-"
            if p.startswith("86-")
            else "empty"
            if not p
            else "plain"
        ] += 1
        norm_phone(p)
        statuses.add(r["订单状态"])
        grouped += "," in r["买家实际支付金额"]
        assert len(r["收货地址"].split(" ")) in (3, 4)  # 3: a first export later corrected
    assert set(styles) == {"eq", "tab", "apos", "plain"}
    assert set(phones) == {"masked", "+86", "86-", "empty", "plain"}
    assert statuses == {
        "等待买家付款",
        "买家已付款，等待卖家发货",
        "卖家已发货，等待买家确认",
        "交易成功",
        "交易关闭",
    }
    assert grouped > 0


def test_tmall_items_codes_and_refunds() -> None:
    codes, states = collections.Counter(), set()
    for _, _, r in clean(medium(), "tmall_order_items"):
        c = r["商家编码"]
        codes["messy" if c != c.strip().upper() else "clean"] += 1
        states.add(r["退款状态"])
    assert codes["messy"] > 0 and codes["clean"] > codes["messy"] * 5
    assert states == {"无退款", "退款中", "退款成功"}


def test_orders_reappear_with_later_modification() -> None:
    seen: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
    for _, _, r in clean(medium(), "jd_orders"):
        assert isinstance(r["orderId"], int)
        seen[str(r["orderId"])].append((r["modified"], r["orderState"]))
        for k in ("orderTotalPrice", "orderPayment", "freightPrice", "refundAmount"):
            assert re.fullmatch(r"\d+\.\d\d", r[k])
    changed = [v for v in seen.values() if len({s for _, s in v}) > 1]
    assert changed
    assert any(float(r["refundAmount"]) > 0 for _, _, r in clean(medium(), "jd_orders"))


def test_mall_orders_shape() -> None:
    statuses, guests, coupons = set(), 0, 0
    campaigns = {r["campaign_id"]: r["coupon_code"] for _, _, r in clean(medium(), "campaigns")}
    for _, _, r in clean(medium(), "mall_orders"):
        statuses.add(r["status"])
        assert r["created_at"].endswith("Z") and r["updated_at"] >= r["created_at"]
        assert r["paid_fen"] == (r["total_fen"] - r["discount_fen"] if r["paid_at"] else 0)
        guests += r["member_id"] is None
        if r["coupon_code"]:
            coupons += 1
            assert campaigns[r["campaign_id"]] == r["coupon_code"]
        if r["status"] == "REFUNDED":
            assert r["refund_fen"] == r["paid_fen"] > 0
    assert statuses == {"CREATED", "PAID", "SHIPPED", "COMPLETED", "CANCELLED", "REFUNDED"} - (
        {"CREATED"} - statuses
    )
    assert guests > 0 and coupons > 0


def test_pos_returns_point_at_earlier_tickets_of_the_store() -> None:
    tickets: dict[tuple[str, str], str] = {}
    returns = []
    phones = collections.Counter()
    for _, _, r in clean(medium(), "pos_sales"):
        assert re.fullmatch(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d", r["txn_time"])
        assert ean13_valid(r["barcode"])
        tickets[(r["store_code"], r["ticket_no"])] = r["txn_time"]
        if int(r["qty"]) < 0:
            returns.append(r)
        p = r["member_phone"]
        phones["dashed" if "-" in p else "plain" if p else "blank"] += 1
    assert returns and set(phones) == {"dashed", "plain", "blank"}
    for r in returns:
        orig = tickets.get((r["store_code"], r["orig_ticket_no"]))
        assert orig is not None and orig < r["txn_time"]
        assert yuan(r["amount"]) < 0


def test_crm_variants() -> None:
    genders, birthdays, days = set(), set(), set()
    for dt, _, r in clean(medium(), "crm_members"):
        if dt != "2026-03-08":
            continue
        genders.add(r["gender"])
        b = r["birthday"]
        birthdays.add(
            "iso"
            if re.fullmatch(r"(19|20)\d\d-\d\d-\d\d", b) and b != "1900-01-01"
            else "slash"
            if "/" in b
            else "compact"
            if re.fullmatch(r"\d{8}", b)
            else "empty"
            if not b
            else "placeholder"
            if b == "1900-01-01"
            else b
        )
        days.add(r["register_channel"])
    assert genders == {"M", "F", "男", "女", "1", "2", "0", ""}
    assert birthdays == {"iso", "slash", "compact", "empty", "placeholder"}
    assert days == {"STORE", "TMALL", "JD", "MALL"}


def test_master_data_shape_and_history() -> None:
    prices: dict[str, set[tuple[str, str]]] = collections.defaultdict(set)
    types, l3 = set(), set()
    for _, _, r in clean(medium(), "products"):
        assert ean13_valid(r["barcode"])
        prices[r["sku_id"]].add((r["list_price"], r["unit_cost"]))
        l3.add((r["category_l1"], r["category_l2"], r["category_l3"]))
    assert sum(len(v) > 1 for v in prices.values()) > 0
    assert len(l3) > 20
    opening = closing = False
    for dt, _, r in clean(medium(), "stores"):
        types.add(r["store_type"])
        assert re.fullmatch(r"1[3-9]\d{9}", r["store_phone"])
        opening |= r["open_date"] > dt
        closing |= bool(r["close_date"]) and r["close_date"] > dt
    assert types == {"DIRECT", "FRANCHISE"} and opening and closing
    history = read_truth(medium(), "prices.csv")
    assert any(h["valid_from"] for h in history)


def test_inventory_locations() -> None:
    root, _ = small()
    per_loc: dict[str, set[str]] = collections.defaultdict(set)
    for dt, _, r in clean(root, "inventory"):
        if dt == "2026-03-03":
            per_loc[r["location_code"]].add(r["sku_id"])
    wh = [k for k in per_loc if k.startswith("WH-")]
    stores = [k for k in per_loc if not k.startswith("WH-")]
    assert len(wh) >= 2 and stores
    assert all(len(per_loc[s]) < len(per_loc[wh[0]]) for s in stores)


def test_jsonl_lines_are_objects() -> None:
    root, _ = small()
    for ds in ("jd_orders", "mall_orders"):
        for _, _, r in clean(root, ds):
            assert isinstance(r, dict)
            json.dumps(r)
