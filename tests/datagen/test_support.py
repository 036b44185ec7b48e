"""Shared helpers (no tests): readers that check landing files against the contract and the
truth, and the small generated landing zones the test modules share."""

from __future__ import annotations

import atexit
import csv
import io
import json
import pathlib
import re
import shutil
import tempfile

from lakehouse.datagen import generate
from lakehouse.datagen.records import DATASETS, FILE_PATTERNS

SOURCES = (
    "tmall_orders",
    "tmall_order_items",
    "jd_orders",
    "mall_orders",
    "pos_sales",
    "crm_members",
    "inventory",
    "master",
    "campaigns",
)


def read_truth(root: pathlib.Path, name: str) -> list[dict[str, str]]:
    with open(root / "_truth" / name, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def dataset_of(source: str, name: str) -> str:
    """Which file family a landing file belongs to, from its name (as ingestion would)."""
    for ds, pattern in FILE_PATTERNS.items():
        if DATASETS[ds].source == source and re.fullmatch(pattern, name):
            return ds
    raise AssertionError(f"{source}/{name} matches no contract file name")


def physical_lines(data: bytes) -> list[bytes]:
    """Split on LF, dropping the CR of CRLF; the last line must end with a newline."""
    assert data == b"" or data.endswith(b"\n"), "file does not end with a newline"
    lines = data.split(b"\n")[:-1] if data else []
    return [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]


def line_problem(ds: str, raw: bytes, n_fields: int | None) -> str | None:
    """The bronze kind a line has, or None when it reads cleanly."""
    enc = DATASETS[ds].encoding
    try:
        text = raw.decode(enc)
    except UnicodeDecodeError:
        return "undecodable_bytes"
    if DATASETS[ds].fmt == "jsonl":
        try:
            obj = json.loads(text)
        except ValueError:
            return "invalid_json"
        return None if isinstance(obj, dict) else "invalid_json"
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if len(rows) != 1 or len(rows[0]) != n_fields:
        return "wrong_field_count"
    return None


def landing_files(
    root: pathlib.Path, source: str | None = None
) -> list[tuple[str, str, str, pathlib.Path]]:
    """(source, dt, name, path) for every landing file (of one source), sorted."""
    out = []
    for src in sorted(
        p for p in root.iterdir() if p.is_dir() and p.name != "_truth" and source in (None, p.name)
    ):
        for dt_dir in sorted(src.iterdir()):
            for f in sorted(dt_dir.iterdir()):
                out.append((src.name, dt_dir.name.removeprefix("dt="), f.name, f))
    return out


def split_file(ds: str, data: bytes) -> tuple[list[str] | None, list[bytes]]:
    """(header fields or None, data lines) of a landing file."""
    if DATASETS[ds].bom:
        assert data.startswith(b"\xef\xbb\xbf"), "POS file without BOM"
        data = data[3:]
    lines = physical_lines(data)
    if DATASETS[ds].fmt == "jsonl":
        return None, lines
    header = next(csv.reader([lines[0].decode(DATASETS[ds].encoding)]))
    return header, lines[1:]


def record(ds: str, raw: bytes, header: list[str] | None) -> dict:
    """A clean line as a dict (CSV by header name, JSON as parsed)."""
    text = raw.decode(DATASETS[ds].encoding)
    if header is None:
        return json.loads(text)
    return dict(zip(header, next(csv.reader([text])), strict=True))


def norm_phone(value: str | None) -> str | None:
    """11-digit mobile from any contract spelling; None for empty or masked numbers."""
    if not value or "*" in value:
        return None
    v = value.replace("-", "").replace(" ", "")
    if v.startswith("+86"):
        v = v[3:]
    elif v.startswith("86") and len(v) == 13:
        v = v[2:]
    assert re.fullmatch(r"1[3-9]\d{9}", v), value
    return v


def identifiers(ds: str, rec: dict) -> list[tuple[str, str]]:
    """(type, normalised value) of every person identifier on a clean record."""
    out: list[tuple[str, str | None]] = []
    if ds == "tmall_orders":
        out = [("tmall_nick", rec["买家会员名"]), ("phone", norm_phone(rec["联系手机"]))]
    elif ds == "jd_orders":
        out = [("jd_pin", rec["pin"]), ("phone", norm_phone(rec["consigneeInfo"]["mobile"]))]
    elif ds == "mall_orders":
        out = [
            ("member_id", rec["member_id"]),
            ("unionid", rec["unionid"]),
            ("openid", rec["openid"]),
            ("phone", norm_phone(rec["phone"])),
        ]
    elif ds == "pos_sales":
        out = [("card_no", rec["member_card_no"]), ("phone", norm_phone(rec["member_phone"]))]
    elif ds == "crm_members":
        out = [
            ("member_id", rec["member_id"]),
            ("card_no", rec["card_no"]),
            ("phone", norm_phone(rec["phone"])),
            ("email", rec["email"].strip().lower()),
            ("unionid", rec["unionid"]),
        ]
    elif ds == "campaign_touches":
        out = [
            ("member_id", rec["member_id"]),
            ("phone", norm_phone(rec["phone"])),
            ("unionid", rec["unionid"]),
        ]
    return [(t, v) for t, v in out if v]


def unwrap_order_no(value: str) -> str:
    """Strip the export's wrappings (`="..."`, leading tab, apostrophe) off an order number."""
    v = value
    if v.startswith('="') and v.endswith('"'):
        v = v[2:-1]
    return v.lstrip("\t'")


def yuan(value: str) -> float:
    return float(value.replace(",", ""))


def dates_in(ds: str, rec: dict) -> list[str]:
    """YYYY-MM-DD of the record's event timestamps (the ones that must not lie ahead)."""
    fields = {
        "tmall_orders": ("订单创建时间", "订单付款时间", "修改时间"),
        "jd_orders": ("orderStartTime", "paymentConfirmTime", "modified"),
        "mall_orders": ("created_at", "paid_at", "updated_at"),
        "pos_sales": ("txn_time",),
        "crm_members": ("register_time",),
        "campaign_touches": ("touch_time",),
        "inventory": ("snapshot_date",),
    }.get(ds, ())
    return [rec[f][:10].replace("/", "-") for f in fields if rec.get(f)]


def value_problems(ds: str, rec: dict) -> set[str]:
    """Silver value kinds a record shows (amounts / quantities out of range)."""
    big_amount, big_qty = 1_000_000, 5_000
    amounts: list[tuple[float, bool]] = []  # (value, must be > 0)
    qtys: list[int] = []
    if ds == "tmall_orders":
        amounts = [(yuan(rec["买家应付货款"]), True), (yuan(rec["买家实际支付金额"]), False)]
        qtys = [int(rec["宝贝总数量"])]
    elif ds == "tmall_order_items":
        amounts = [(yuan(rec["价格"]), True)]
        qtys = [int(rec["购买数量"])]
    elif ds == "jd_orders":
        amounts = [(yuan(rec["orderTotalPrice"]), True), (yuan(rec["orderPayment"]), True)]
        amounts += [(yuan(i["jdPrice"]), True) for i in rec["itemInfoList"]]
        qtys = [int(i["itemTotal"]) for i in rec["itemInfoList"]]
    elif ds == "mall_orders":
        amounts = [(rec["total_fen"] / 100, True), (rec["paid_fen"] / 100, False)]
        amounts += [(i["price_fen"] / 100, True) for i in rec["items"]]
        qtys = [i["qty"] for i in rec["items"]]
    elif ds == "pos_sales":
        q = int(rec["qty"])
        sign = -1 if q < 0 and rec["orig_ticket_no"] else 1
        amounts = [(yuan(rec["unit_price"]), True), (sign * yuan(rec["amount"]), True)]
        qtys = [sign * q]
    elif ds == "inventory":
        qtys = [int(rec["on_hand_qty"]) or 1]
    out = set()
    for v, positive in amounts:
        if v < 0:
            out.add("negative_amount")
        elif v == 0 and positive:
            out.add("zero_amount")
        elif v >= big_amount:
            out.add("absurd_amount")
    for q in qtys:
        if q < 0:
            out.add("negative_quantity")
        elif q == 0:
            out.add("zero_quantity")
        elif q >= big_qty:
            out.add("absurd_quantity")
    return out


def clean_records(root: pathlib.Path, source: str, dt: str, name: str) -> list[dict]:
    """Records of the lines of one file that read cleanly (bronze-bad lines skipped)."""
    ds = dataset_of(source, name)
    header, lines = split_file(ds, (root / source / f"dt={dt}" / name).read_bytes())
    n = len(header) if header else None
    return [record(ds, raw, header) for raw in lines if line_problem(ds, raw, n) is None]


# -- generated landing zones shared by the test modules (made once per test session) -------
_ZONES: dict[str, tuple[pathlib.Path, dict]] = {}


def _zone(name: str, **kwargs: object) -> tuple[pathlib.Path, dict]:
    if name not in _ZONES:
        base = pathlib.Path(tempfile.mkdtemp(prefix=f"datagen-{name}-"))
        atexit.register(shutil.rmtree, base, ignore_errors=True)
        root = base / "landing"
        _ZONES[name] = (root, generate(root, **kwargs))
    return _ZONES[name]


def small() -> tuple[pathlib.Path, dict]:
    """scale 0.05 x 5 days: big enough for every dirt kind, fast enough for every run."""
    return _zone("small", scale=0.05, days=5)


def month() -> tuple[pathlib.Path, dict]:
    """scale 0.3 x 30 days: members leave the CRM, and their people go on buying."""
    return _zone("month", scale=0.3, days=30, seed=7)


def medium() -> pathlib.Path:
    """scale 0.3 x 8 days: enough tickets for store phones keyed in on many tickets."""
    return _zone("medium", scale=0.3, days=8, seed=7)[0]
