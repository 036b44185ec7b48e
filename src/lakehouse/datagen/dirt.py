"""Injected dirt: the bad lines every delivery may carry, each recorded in the truth.

Policy (so that the clean lines alone are exactly the truth):
- bronze kinds (unreadable lines) are *extra* corrupted copies of a clean line of the file;
- silver kinds are extra junk records with keys of their own (a fresh order number, ticket,
  sub-order id ...), except where a snapshot row is itself wrong (inventory on-hand values),
  which replace the clean row;
- an exact duplicate is a second copy of a clean line placed after the first.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import random
from collections.abc import Callable
from typing import Any, Protocol

from .formats import Clock, yuan, yuan_thousands
from .records import Dataset, json_line, parse_csv_line
from .rng import poisson

BRONZE = ("wrong_field_count", "undecodable_bytes", "invalid_json")

# share of a file's clean records that get one bad line of the kind
RATES: dict[str, float] = {
    "exact_duplicate": 0.006,
    "wrong_field_count": 0.003,
    "undecodable_bytes": 0.003,
    "invalid_json": 0.005,
    "negative_amount": 0.002,
    "zero_amount": 0.002,
    "absurd_amount": 0.002,
    "negative_quantity": 0.002,
    "zero_quantity": 0.002,
    "absurd_quantity": 0.002,
    "future_date": 0.002,
    "unknown_sku": 0.004,
    "unknown_store": 0.001,
}

_VALUES = (
    "negative_amount",
    "zero_amount",
    "absurd_amount",
    "negative_quantity",
    "zero_quantity",
    "absurd_quantity",
)
KINDS: dict[str, tuple[str, ...]] = {
    "tmall_orders": (
        "exact_duplicate",
        "wrong_field_count",
        "undecodable_bytes",
        "negative_amount",
        "zero_amount",
        "absurd_amount",
        "absurd_quantity",
        "future_date",
    ),
    "tmall_order_items": (
        "exact_duplicate",
        "wrong_field_count",
        "undecodable_bytes",
        *_VALUES,
        "unknown_sku",
    ),
    "jd_orders": (
        "exact_duplicate",
        "invalid_json",
        "undecodable_bytes",
        *_VALUES,
        "future_date",
        "unknown_sku",
    ),
    "mall_orders": (
        "exact_duplicate",
        "invalid_json",
        "undecodable_bytes",
        *_VALUES,
        "future_date",
        "unknown_sku",
    ),
    "pos_sales": (
        "exact_duplicate",
        "wrong_field_count",
        "undecodable_bytes",
        *_VALUES,
        "future_date",
        "unknown_sku",
    ),
    "crm_members": ("exact_duplicate", "wrong_field_count", "undecodable_bytes", "future_date"),
    "inventory": (
        "exact_duplicate",
        "wrong_field_count",
        "undecodable_bytes",
        "negative_quantity",
        "absurd_quantity",
        "unknown_sku",
        "unknown_store",
    ),
    "products": ("exact_duplicate", "wrong_field_count", "undecodable_bytes"),
    "sku_mapping": ("exact_duplicate", "wrong_field_count", "undecodable_bytes", "unknown_sku"),
    "stores": ("exact_duplicate", "wrong_field_count", "undecodable_bytes"),
    "campaigns": ("exact_duplicate", "wrong_field_count", "undecodable_bytes"),
    "campaign_touches": (
        "exact_duplicate",
        "wrong_field_count",
        "undecodable_bytes",
        "future_date",
    ),
}
# (dataset, kind) whose bad row takes the place of the clean row instead of being extra
REPLACES = {("inventory", "negative_quantity"), ("inventory", "absurd_quantity")}

SENTINEL = "\ue000"
_UTF8_BAD = (b"\xff", b"\xfe", b"\xc3", b"\xe6\x9c", b"\x80")
_GB_BAD = (b"\xff", b"\x80", b"\xfe")


def layer(kind: str) -> str:
    return "bronze" if kind in BRONZE else "silver"


class JunkContext(Protocol):
    """What junk makers need from the engine: fresh keys and codes that map to nothing."""

    def new_tmall_oid(self) -> str: ...
    def new_tmall_sub(self) -> str: ...
    def new_jd_id(self) -> int: ...
    def new_mall_id(self, ymd: str) -> str: ...
    def new_pos_ticket(self, store_code: str, base_ticket: str) -> str: ...
    def unknown(self, what: str) -> str: ...

    @property
    def clock(self) -> Clock: ...


class Planner:
    """Makes sure each (dataset, kind) shows up at least once when the volume allows."""

    def __init__(self, rng: random.Random, days: int) -> None:
        self.days = days
        self.due: dict[tuple[str, str], int] = {}
        for ds in sorted(KINDS):
            for kind in KINDS[ds]:
                self.due[(ds, kind)] = rng.randrange(max(1, (days + 1) // 2))
        self.due[("pos_sales", "unknown_store")] = rng.randrange(max(1, (days + 1) // 2))

    def forced(self, ds: str, kind: str, day: int) -> bool:
        due = self.due.get((ds, kind))
        return due is not None and day >= due

    def done(self, ds: str, kind: str) -> None:
        self.due.pop((ds, kind), None)


def _cents(s: str) -> int:
    return round(float(s.replace(",", "")) * 100)


def undecodable(ds: Dataset, text_with_sentinel: str, rng: random.Random) -> bytes:
    """Encode a line, putting bytes invalid in the file's encoding where the sentinel is."""
    head, tail = text_with_sentinel.split(SENTINEL, 1)
    options = _GB_BAD if ds.encoding == "gb18030" else _UTF8_BAD
    for bad in (rng.choice(options), b"\xff"):
        data = head.encode(ds.encoding) + bad + tail.encode(ds.encoding)
        try:
            data.decode(ds.encoding)
        except UnicodeDecodeError:
            return data
    raise AssertionError("could not make an undecodable line")  # pragma: no cover


def bad_json(text: str, rng: random.Random) -> str:
    """A line that is not valid JSON: cut short, or malformed in a way parsers reject."""
    variants: list[Callable[[str], str]] = [
        lambda t: t[: rng.randint(max(1, len(t) // 5), len(t) - 2)],
        lambda t: t[:-1] + ", }",
        lambda t: t.replace('", "', '" "', 1),
        lambda t: t.replace('"', "'", 4),
        lambda t: t[:-1],
    ]
    for make in (rng.choice(variants), variants[0]):
        out = make(text)
        try:
            json.loads(out)
        except ValueError:
            return out
    raise AssertionError("could not make invalid JSON")  # pragma: no cover


class Injector:
    """Adds bad lines to a file's clean lines and reports where they ended up."""

    def __init__(self, rng: random.Random, planner: Planner, ctx: JunkContext) -> None:
        self.rng = rng
        self.planner = planner
        self.ctx = ctx

    def inject(
        self, ds: Dataset, clean: list[str], day: int, header: tuple[str, ...] = ()
    ) -> tuple[list[str | bytes], list[tuple[int, str]], Callable[[int], int]]:
        """Return (lines, [(index, kind)], new_index_of_clean_index)."""
        rng = self.rng
        n = len(clean)
        lines: list[str | bytes] = list(clean)
        if n == 0:
            return lines, [], lambda i: i
        ix = {h: i for i, h in enumerate(header or ds.header)}
        inserts: list[tuple[int, int, str | bytes, str]] = []
        replaced: dict[int, str] = {}
        kinds = sorted(KINDS[ds.name], key=lambda k: (ds.name, k) not in REPLACES)
        for kind in kinds:
            k = poisson(rng, n * RATES[kind])
            if self.planner.forced(ds.name, kind, day):
                k = max(k, 1)
            made = 0
            for _ in range(min(k, n)):
                i = rng.randrange(n)
                if i in replaced:
                    continue
                payload = self._make(ds, kind, clean[i], ix, day)
                if payload is None:
                    continue
                made += 1
                if (ds.name, kind) in REPLACES:
                    lines[i] = payload
                    replaced[i] = kind
                else:
                    pos = rng.randint(i + 1, n) if kind == "exact_duplicate" else rng.randint(0, n)
                    inserts.append((pos, len(inserts), payload, kind))
            if made:
                self.planner.done(ds.name, kind)
        inserts.sort(key=lambda t: (t[0], t[1]))
        out: list[str | bytes] = []
        bad: list[tuple[int, str]] = []
        prev = 0
        for pos, _, payload, kind in inserts:
            out.extend(lines[prev:pos])
            prev = pos
            bad.append((len(out), kind))
            out.append(payload)
        out.extend(lines[prev:])
        positions = [p for p, *_ in inserts]

        def new_index(i: int) -> int:
            return i + bisect.bisect_right(positions, i)

        bad.extend((new_index(i), kind) for i, kind in replaced.items())
        bad.sort()
        return out, bad, new_index

    def _today(self, day: int) -> dt.date:
        return self.ctx.clock.date(day)

    # -- making one bad line -------------------------------------------------------------
    def _make(
        self, ds: Dataset, kind: str, base: str, ix: dict[str, int], day: int
    ) -> str | bytes | None:
        rng = self.rng
        if kind == "exact_duplicate":
            return base
        if ds.fmt == "jsonl":
            obj = json.loads(base)
            if kind == "invalid_json":
                return bad_json(base, rng)
            if kind == "undecodable_bytes":
                keys = [k for k, v in obj.items() if isinstance(v, str) and v]
                key = rng.choice(keys)
                v = obj[key]
                cut = rng.randint(0, len(v))
                obj[key] = v[:cut] + SENTINEL + v[cut:]
                return undecodable(ds, json_line(obj), rng)
            junk = (_jd_junk if ds.name == "jd_orders" else _mall_junk)(
                kind, obj, rng, self.ctx, self._today(day)
            )
            return None if junk is None else json_line(junk)
        fields = parse_csv_line(base)
        if kind == "wrong_field_count":
            f = list(fields)
            if rng.random() < 0.5 and len(f) > 2:
                del f[rng.randrange(1, len(f))]
            else:
                for _ in range(rng.choice((1, 1, 2))):
                    f.insert(rng.randint(1, len(f)), rng.choice(("", "0", "N/A", fields[0])))
            return ds.render(f)
        if kind == "undecodable_bytes":
            f = list(fields)
            j = rng.randrange(len(f))
            if ds.encoding == "gb18030" and rng.random() < 0.5:
                f[j] = f[j] + SENTINEL  # a lone lead byte right before the closing quote
                head, tail = ds.render(f).split(SENTINEL, 1)
                data = head.encode("gb18030") + b"\x81" + tail.encode("gb18030")
                try:
                    data.decode("gb18030")
                except UnicodeDecodeError:
                    return data
                f[j] = f[j][:-1]
            cut = rng.randint(0, len(f[j]))
            f[j] = f[j][:cut] + SENTINEL + f[j][cut:]
            return undecodable(ds, ds.render(f), rng)
        maker = _CSV_JUNK[ds.name]
        junk = maker(kind, list(fields), ix, rng, self.ctx, self._today(day))
        return None if junk is None else ds.render(junk)


# -- junk records, one maker per dataset -------------------------------------------------
LOCAL_FMT = "%Y-%m-%d %H:%M:%S"
POS_FMT = "%Y/%m/%d %H:%M:%S"
UTC_FMT = "%Y-%m-%dT%H:%M:%SZ"


def _future(value: str, fmt: str, today: dt.date, rng: random.Random) -> str:
    """Move a timestamp well past the delivery date (60 days to about two years ahead)."""
    t = dt.datetime.strptime(value, fmt)
    ahead = max(0, (today - t.date()).days) + rng.randint(60, 700)
    return (t + dt.timedelta(days=ahead)).strftime(fmt)


def _tmall_order_junk(
    kind: str,
    f: list[str],
    ix: dict[str, int],
    rng: random.Random,
    ctx: JunkContext,
    today: dt.date,
) -> list[str] | None:
    f[ix["订单编号"]] = ctx.new_tmall_oid()
    goods = _cents(f[ix["买家应付货款"]])
    ship = _cents(f[ix["买家应付邮费"]])
    if kind == "negative_amount":
        f[ix["买家实际支付金额"]] = yuan(-(goods + ship))
    elif kind == "zero_amount":
        for h in ("买家应付货款", "买家应付邮费", "买家实际支付金额"):
            f[ix[h]] = "0.00"
    elif kind == "absurd_amount":
        a = rng.randint(5_000_000, 90_000_000) * 100
        f[ix["买家应付货款"]] = yuan(a)
        f[ix["买家实际支付金额"]] = yuan_thousands(a + ship)
    elif kind == "absurd_quantity":
        f[ix["宝贝总数量"]] = str(rng.randint(10_000, 999_999))
    elif kind == "future_date":
        for h in ("订单创建时间", "订单付款时间", "修改时间"):
            if f[ix[h]]:
                f[ix[h]] = _future(f[ix[h]], LOCAL_FMT, today, rng)
    else:
        return None
    return f


def _tmall_item_junk(
    kind: str,
    f: list[str],
    ix: dict[str, int],
    rng: random.Random,
    ctx: JunkContext,
    today: dt.date,
) -> list[str] | None:
    f[ix["子订单编号"]] = ctx.new_tmall_sub()
    f[ix["退款状态"]] = "无退款"
    f[ix["退款金额"]] = "0.00"
    price, qty = ix["价格"], ix["购买数量"]
    if kind == "negative_amount":
        f[price] = yuan(-_cents(f[price]))
    elif kind == "zero_amount":
        f[price] = "0.00"
    elif kind == "absurd_amount":
        f[price] = yuan(rng.randint(1_000_000, 50_000_000) * 100)
    elif kind == "negative_quantity":
        f[qty] = str(-rng.randint(1, 3))
    elif kind == "zero_quantity":
        f[qty] = "0"
    elif kind == "absurd_quantity":
        f[qty] = str(rng.randint(10_000, 500_000))
    elif kind == "unknown_sku":
        f[ix["商家编码"]] = ctx.unknown("tmall_code")
    else:
        return None
    return f


def _pos_junk(
    kind: str,
    f: list[str],
    ix: dict[str, int],
    rng: random.Random,
    ctx: JunkContext,
    today: dt.date,
) -> list[str] | None:
    f[ix["ticket_no"]] = ctx.new_pos_ticket(f[ix["store_code"]], f[ix["ticket_no"]])
    f[ix["line_no"]] = "1"
    f[ix["orig_ticket_no"]] = ""
    qty = abs(int(f[ix["qty"]]))
    price = _cents(f[ix["unit_price"]])
    disc = abs(_cents(f[ix["discount"]]))

    def put(q: int, p: int, d: int) -> None:
        f[ix["qty"]], f[ix["unit_price"]] = str(q), yuan(p)
        f[ix["discount"]], f[ix["amount"]] = yuan(d), yuan(q * p - d)

    put(qty, price, disc)
    if kind == "negative_amount":
        f[ix["amount"]] = yuan(-(qty * price - disc))
    elif kind == "zero_amount":
        put(qty, 0, 0)
    elif kind == "absurd_amount":
        put(qty, rng.randint(1_000_000, 9_000_000) * 100, 0)
    elif kind == "negative_quantity":
        put(-qty, price, -disc)
    elif kind == "zero_quantity":
        put(0, price, 0)
    elif kind == "absurd_quantity":
        put(rng.randint(5_000, 99_999), price, 0)
    elif kind == "unknown_sku":
        f[ix["barcode"]] = ctx.unknown("barcode")
    elif kind == "future_date":
        f[ix["txn_time"]] = _future(f[ix["txn_time"]], POS_FMT, today, rng)
    else:
        return None
    return f


def _crm_junk(
    kind: str,
    f: list[str],
    ix: dict[str, int],
    rng: random.Random,
    ctx: JunkContext,
    today: dt.date,
) -> list[str] | None:
    if kind != "future_date":
        return None
    f[ix["register_time"]] = _future(f[ix["register_time"]], LOCAL_FMT, today, rng)
    return f


def _inventory_junk(
    kind: str,
    f: list[str],
    ix: dict[str, int],
    rng: random.Random,
    ctx: JunkContext,
    today: dt.date,
) -> list[str] | None:
    if kind == "negative_quantity":
        f[ix["on_hand_qty"]] = str(-rng.randint(1, 40))
    elif kind == "absurd_quantity":
        f[ix["on_hand_qty"]] = str(rng.randint(5_000_000, 90_000_000))
    elif kind == "unknown_sku":
        f[ix["sku_id"]] = ctx.unknown("sku_id")
    elif kind == "unknown_store":
        # warehouses have no master to check against, so the unknown one is always a store
        f[ix["location_code"]] = ctx.unknown("store")
        f[ix["location_type"]] = "STORE"
    else:
        return None
    return f


def _mapping_junk(
    kind: str,
    f: list[str],
    ix: dict[str, int],
    rng: random.Random,
    ctx: JunkContext,
    today: dt.date,
) -> list[str] | None:
    if kind != "unknown_sku":
        return None
    platform = f[ix["platform"]]
    f[ix["platform_sku_code"]] = {
        "TMALL": ctx.unknown("tmall_code"),
        "JD": ctx.unknown("jd_sku"),
        "POS": ctx.unknown("barcode"),
    }.get(platform, ctx.unknown("sku_id"))
    f[ix["sku_id"]] = ctx.unknown("sku_id")
    return f


def _touch_junk(
    kind: str,
    f: list[str],
    ix: dict[str, int],
    rng: random.Random,
    ctx: JunkContext,
    today: dt.date,
) -> list[str] | None:
    if kind != "future_date":
        return None
    f[ix["touch_time"]] = _future(f[ix["touch_time"]], LOCAL_FMT, today, rng)
    return f


def _none(
    kind: str,
    f: list[str],
    ix: dict[str, int],
    rng: random.Random,
    ctx: JunkContext,
    today: dt.date,
) -> list[str] | None:
    return None


_CSV_JUNK: dict[str, Callable[..., list[str] | None]] = {
    "tmall_orders": _tmall_order_junk,
    "tmall_order_items": _tmall_item_junk,
    "pos_sales": _pos_junk,
    "crm_members": _crm_junk,
    "inventory": _inventory_junk,
    "sku_mapping": _mapping_junk,
    "campaign_touches": _touch_junk,
    "products": _none,
    "stores": _none,
    "campaigns": _none,
}


def _jd_junk(
    kind: str, o: dict[str, Any], rng: random.Random, ctx: JunkContext, today: dt.date
) -> dict[str, Any] | None:
    o["orderId"] = ctx.new_jd_id()
    o["refundAmount"] = "0.00"
    item = o["itemInfoList"][0]
    if kind == "negative_amount":
        o["orderPayment"] = yuan(-_cents(o["orderPayment"]) or -100)
    elif kind == "zero_amount":
        for k in (
            "orderTotalPrice",
            "orderSellerPrice",
            "orderPayment",
            "freightPrice",
            "sellerDiscount",
        ):
            o[k] = "0.00"
        for it in o["itemInfoList"]:
            it["jdPrice"] = "0.00"
    elif kind == "absurd_amount":
        a = yuan(rng.randint(5_000_000, 90_000_000) * 100)
        o["orderTotalPrice"] = o["orderSellerPrice"] = o["orderPayment"] = a
    elif kind == "negative_quantity":
        item["itemTotal"] = str(-rng.randint(1, 3))
    elif kind == "zero_quantity":
        item["itemTotal"] = "0"
    elif kind == "absurd_quantity":
        item["itemTotal"] = str(rng.randint(10_000, 500_000))
    elif kind == "unknown_sku":
        item["skuId"] = ctx.unknown("jd_sku")
        item["outerSkuId"] = ctx.unknown("sku_id")
    elif kind == "future_date":
        for k in ("orderStartTime", "paymentConfirmTime", "modified"):
            if o.get(k):
                o[k] = _future(o[k], LOCAL_FMT, today, rng)
    else:
        return None
    return o


def _mall_junk(
    kind: str, o: dict[str, Any], rng: random.Random, ctx: JunkContext, today: dt.date
) -> dict[str, Any] | None:
    o["order_id"] = ctx.new_mall_id(o["order_id"][1:9])
    o["refund_fen"] = 0
    item = o["items"][0]
    if kind == "negative_amount":
        o["paid_fen"] = -(o["paid_fen"] or o["total_fen"] or 100)
    elif kind == "zero_amount":
        o["total_fen"] = o["paid_fen"] = o["discount_fen"] = 0
        for it in o["items"]:
            it["price_fen"] = 0
    elif kind == "absurd_amount":
        o["total_fen"] = o["paid_fen"] = rng.randint(5_000_000, 90_000_000) * 100
    elif kind == "negative_quantity":
        item["qty"] = -rng.randint(1, 3)
    elif kind == "zero_quantity":
        item["qty"] = 0
    elif kind == "absurd_quantity":
        item["qty"] = rng.randint(10_000, 500_000)
    elif kind == "unknown_sku":
        item["sku_id"] = ctx.unknown("sku_id")
    elif kind == "future_date":
        for k in ("created_at", "paid_at", "updated_at"):
            if o.get(k):
                o[k] = _future(o[k], UTC_FMT, today, rng)
    else:
        return None
    return o
