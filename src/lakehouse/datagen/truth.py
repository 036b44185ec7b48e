"""Ground truth under `<out>/_truth/`: what the landing files really mean.

Never read by ingestion; tests and evaluations compare the suite's output with it.
"""

from __future__ import annotations

import csv
import pathlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from .formats import DAY, yuan

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine

TRUTH_COLUMNS: dict[str, tuple[str, ...]] = {
    "files.csv": (
        "source",
        "dataset",
        "dt",
        "file_name",
        "data_lines",
        "redelivery_of_dt",
        "correction_of",
    ),
    "bad_records.csv": ("source", "dataset", "dt", "file_name", "line_no", "kind", "layer"),
    "late_records.csv": (
        "source",
        "dataset",
        "dt",
        "file_name",
        "line_no",
        "business_date",
        "record_key",
    ),
    "identifiers.csv": ("person_id", "identifier_type", "value"),
    "shared_identifiers.csv": ("identifier_type", "value", "reason"),
    "persons.csv": (
        "person_id",
        "name",
        "gender",
        "birthday",
        "province",
        "city",
        "home_store_code",
    ),
    "orders.csv": (
        "channel",
        "order_id",
        "store_code",
        "person_id",
        "member_id",
        "order_date",
        "created_at",
        "status",
        "goods_amount",
        "discount_amount",
        "shipping_amount",
        "paid_amount",
        "refund_amount",
        "last_modified",
        "coupon_code",
        "campaign_id",
        "orig_order_id",
        "units",
    ),
    "order_lines.csv": (
        "channel",
        "order_id",
        "store_code",
        "line_no",
        "line_id",
        "sku_id",
        "qty",
        "unit_price",
        "line_amount",
        "refund_amount",
    ),
    "prices.csv": ("sku_id", "valid_from", "valid_to", "list_price", "unit_cost"),
    "crm_departures.csv": ("member_id", "person_id", "left_on", "kind", "merged_into"),
    "corrections.csv": (
        "dt",
        "file_name",
        "original_dt",
        "correction_of",
        "line_no",
        "original_line_no",
        "order_id",
        "field",
        "original_value",
        "corrected_value",
    ),
}


def _write(root: pathlib.Path, name: str, rows: Iterable[Sequence[str]]) -> None:
    with open(root / name, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(TRUTH_COLUMNS[name])
        w.writerows(rows)


def write_all(e: Engine) -> None:
    root = e.landing.root / "_truth"
    root.mkdir(parents=True, exist_ok=True)
    c = e.clock
    land = e.landing
    _write(root, "files.csv", land.files)
    _write(root, "bad_records.csv", land.bad)
    _write(root, "late_records.csv", land.late)
    _write(root, "identifiers.csv", sorted((pid, typ, val) for (typ, val), pid in e.ids.items()))
    _write(
        root,
        "shared_identifiers.csv",
        sorted((typ, val, why) for (typ, val), why in e.shared.items()),
    )
    _write(
        root,
        "crm_departures.csv",
        (
            (
                m.member_id,
                m.person.pid,
                c.iso(m.left_day),
                "merged" if m.merged_into else "closed",
                m.merged_into.member_id if m.merged_into else "",
            )
            for m in e.w.members
            if m.left_day is not None
        ),
    )
    stores = e.w.stores
    _write(
        root,
        "persons.csv",
        (
            (
                p.pid,
                p.name,
                p.gender,
                p.birthday.isoformat() if p.birthday else "",
                _city(p.city)[0],
                _city(p.city)[2],
                stores[p.home_store].code if p.home_store is not None else "",
            )
            for p in e.w.people
        ),
    )
    orders, lines = [], []
    for o in e.orders:
        if o.last < 0:
            continue
        v = o.versions[o.last]
        orders.append(
            (
                o.channel,
                o.oid,
                "",
                o.person.pid,
                o.member.member_id if o.member else "",
                c.iso(o.created // DAY),
                c.local(o.created),
                v[1],
                yuan(o.goods),
                yuan(o.discount + o.platform_discount),
                yuan(o.ship),
                yuan(o.paid_amount(v)),
                yuan(v[3]),
                c.local(v[0]),
                o.coupon or "",
                o.campaign or "",
                "",
                str(o.units),
            )
        )
        for k, (li, refund) in enumerate(zip(o.lines, o.line_refunds(v), strict=True)):
            lines.append(
                (
                    o.channel,
                    o.oid,
                    "",
                    str(k + 1),
                    li.line_id,
                    li.sku.sku_id,
                    str(li.qty),
                    yuan(li.price),
                    yuan(li.amount),
                    yuan(refund),
                )
            )
    for t in e.tickets:
        if not t.delivered:
            continue
        goods = sum(li.qty * li.price for li in t.lines)
        disc = sum(li.discount for li in t.lines)
        orders.append(
            (
                "POS",
                t.ticket_no,
                t.store.code,
                t.person.pid,
                t.member.member_id if t.member is not None and t.card else "",
                c.iso(t.ts // DAY),
                c.local(t.ts),
                "RETURN" if t.orig else "SALE",
                yuan(goods),
                yuan(disc),
                "0.00",
                yuan(goods - disc),
                "0.00",
                c.local(t.ts),
                "",
                "",
                t.orig,
                str(sum(li.qty for li in t.lines)),
            )
        )
        for li in t.lines:
            lines.append(
                (
                    "POS",
                    t.ticket_no,
                    t.store.code,
                    str(li.line_no),
                    str(li.line_no),
                    li.sku.sku_id,
                    str(li.qty),
                    yuan(li.price),
                    yuan(li.amount),
                    "0.00",
                )
            )
    _write(root, "orders.csv", orders)
    _write(root, "order_lines.csv", lines)
    prices = []
    for s in e.w.skus:
        for k, (start, lst, cost) in enumerate(s.prices):
            nxt = s.prices[k + 1][0] if k + 1 < len(s.prices) else None
            prices.append(
                (
                    s.sku_id,
                    c.iso(start) if start > -(10**5) else "",
                    c.iso(nxt) if nxt is not None else "",
                    yuan(lst),
                    yuan(cost),
                )
            )
    _write(root, "prices.csv", prices)
    _write(root, "corrections.csv", e.correction_log)


def _city(i: int) -> tuple[str, ...]:
    from .world import CITIES

    return CITIES[i][:4]
