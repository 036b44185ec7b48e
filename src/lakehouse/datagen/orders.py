"""Orders and tickets of the simulation, and how online orders change state over days.

An online order is created once with its whole future: a list of versions (each a state at a
time), and the warehouse movements those state changes cause. Deliveries then export the
version current at the end of each day, which is how the same order reappears in later drops.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .formats import DAY
from .rng import chance
from .world import Member, Person, Sku, Store

T_WAIT = "等待买家付款"
T_PAID = "买家已付款，等待卖家发货"
T_SHIPPED = "卖家已发货，等待买家确认"
T_SUCCESS = "交易成功"
T_CLOSED = "交易关闭"
T_REFUND_STATES = ("无退款", "退款中", "退款成功")

J_WAIT = "WAIT_SELLER_STOCK_OUT"
J_SHIPPED = "WAIT_GOODS_RECEIVE_CONFIRM"
J_DONE = "FINISHED_L"
J_CANCELED = "TRADE_CANCELED"
J_LOCKED = "LOCKED"

M_CREATED, M_PAID, M_SHIPPED = "CREATED", "PAID", "SHIPPED"
M_COMPLETED, M_CANCELLED, M_REFUNDED = "COMPLETED", "CANCELLED", "REFUNDED"

# a version: (ts, status, paid, refund_cents, per-line refund state 0/1/2)
Version = tuple[int, str, bool, int, tuple[int, ...]]
# a warehouse movement: (ts, op, line indexes)
Move = tuple[int, str, tuple[int, ...]]


@dataclass(slots=True, eq=False)
class OLine:
    line_id: str
    sku: Sku
    price: int
    qty: int

    @property
    def amount(self) -> int:
        return self.price * self.qty


@dataclass(slots=True, eq=False)
class Order:
    channel: str
    oid: str
    person: Person
    created: int
    lines: list[OLine]
    wh: int
    goods: int = 0
    ship: int = 0
    discount: int = 0
    platform_discount: int = 0
    pay_ts: int | None = None
    versions: list[Version] = field(default_factory=list)
    last: int = -1
    phone: str | None = None
    phone_id: bool = False
    address: str = ""
    shop: str = ""
    memo: str = ""
    note: str = ""
    coupon: str | None = None
    campaign: str | None = None
    member: Member | None = None
    unionid: str | None = None
    openid: str | None = None
    shared_openid: bool = False
    channel_extra: str = ""

    @property
    def units(self) -> int:
        return sum(li.qty for li in self.lines)

    @property
    def seller_goods(self) -> int:
        """Goods amount after the seller's discount (what JD refunds are measured in)."""
        return self.goods - self.discount

    def paid_amount(self, v: Version) -> int:
        if not v[2]:
            return 0
        return self.goods - self.discount - self.platform_discount + self.ship

    def line_refunds(self, v: Version) -> list[int]:
        """Refund per line at version `v`, in the channel's money."""
        if self.channel == "TMALL":
            return [li.amount if s == 2 else 0 for li, s in zip(self.lines, v[4], strict=True)]
        if v[3] == 0:
            return [0] * len(self.lines)
        amounts = [li.amount for li in self.lines]
        if all(s == 2 for s in v[4]):
            return prorate(amounts, v[3])
        return [
            _share(a, self.seller_goods, self.goods) if s == 2 else 0
            for a, s in zip(amounts, v[4], strict=True)
        ]


def prorate(amounts: list[int], total: int) -> list[int]:
    """Split `total` over lines in proportion to `amounts`, summing exactly to `total`."""
    whole = sum(amounts)
    out = [_share(a, total, whole) for a in amounts]
    if out:
        out[-1] += total - sum(out)
    return out


def _share(amount: int, part: int, whole: int) -> int:
    return amount * part // whole if whole else 0


@dataclass(slots=True, eq=False)
class PosLine:
    line_no: int
    sku: Sku
    qty: int
    price: int
    discount: int

    @property
    def amount(self) -> int:
        return self.qty * self.price - self.discount


@dataclass(slots=True, eq=False)
class Ticket:
    store: Store
    ticket_no: str
    ts: int
    pos_id: str
    cashier: str
    card: str
    phone: str
    lines: list[PosLine]
    pay: str
    orig: str
    person: Person
    member: Member | None
    store_phone: bool
    delivered: bool = False


def tmall_life(o: Order, rng: random.Random) -> list[Move]:
    """Fill o.versions with the order's Tmall states; return its warehouse movements."""
    t, n = o.created, len(o.lines)
    none, every = (0,) * n, tuple(range(n))
    v = o.versions
    if chance(rng, 0.06):
        v.append((t, T_WAIT, False, 0, none))
        if chance(rng, 0.5):
            v.append((t + rng.randint(22 * 3600, 26 * 3600), T_CLOSED, False, 0, none))
            return []
        pay = t + rng.randint(600, 20 * 3600)
    else:
        pay = t + rng.randint(15, 900)
    o.pay_ts = pay
    moves: list[Move] = [(pay, "reserve", every)]
    v.append((pay, T_PAID, True, 0, none))
    if chance(rng, 0.03):
        ref = pay + rng.randint(1800, 30 * 3600)
        v.append((ref, T_CLOSED, True, o.goods, (2,) * n))
        return [*moves, (ref, "release", every)]
    ship = pay + rng.randint(3 * 3600, 48 * 3600)
    v.append((ship, T_SHIPPED, True, 0, none))
    moves.append((ship, "ship", every))
    done = ship + rng.randint(3 * DAY, 10 * DAY)
    if not chance(rng, 0.07):
        v.append((done, T_SUCCESS, True, 0, none))
        return moves
    li = rng.randrange(n)
    req = ship + rng.randint(DAY, 7 * DAY)
    ok = req + rng.randint(6 * 3600, 3 * DAY)
    asked = tuple(1 if k == li else 0 for k in range(n))
    refunded = tuple(2 if k == li else 0 for k in range(n))
    amount = o.lines[li].amount
    if req < done:
        v.append((req, T_SHIPPED, True, 0, asked))
        if n == 1:
            v.append((ok, T_CLOSED, True, amount, refunded))
        else:
            v.append((ok, T_SHIPPED, True, amount, refunded))
            v.append((max(done, ok + DAY), T_SUCCESS, True, amount, refunded))
    else:
        v.append((done, T_SUCCESS, True, 0, none))
        v.append((req, T_SUCCESS, True, 0, asked))
        v.append((ok, T_SUCCESS, True, amount, refunded))
    moves.append((ok, "restock", (li,)))
    return moves


def jd_life(o: Order, rng: random.Random) -> list[Move]:
    """JD POP orders are exported once paid; refunds lock the order, then settle."""
    n = len(o.lines)
    none, every = (0,) * n, tuple(range(n))
    pay = o.created + rng.randint(5, 600)
    o.pay_ts = pay
    v = o.versions
    v.append((pay, J_WAIT, True, 0, none))
    moves: list[Move] = [(pay, "reserve", every)]
    if chance(rng, 0.03):
        c = pay + rng.randint(1800, 30 * 3600)
        v.append((c, J_CANCELED, True, o.seller_goods, (2,) * n))
        return [*moves, (c, "release", every)]
    ship = pay + rng.randint(4 * 3600, 40 * 3600)
    v.append((ship, J_SHIPPED, True, 0, none))
    moves.append((ship, "ship", every))
    done = ship + rng.randint(2 * DAY, 8 * DAY)
    if not chance(rng, 0.05):
        v.append((done, J_DONE, True, 0, none))
        return moves
    li = rng.randrange(n)
    req = ship + rng.randint(DAY, 6 * DAY)
    ok = req + rng.randint(6 * 3600, 2 * DAY)
    refunded = tuple(2 if k == li else 0 for k in range(n))
    amount = _share(o.lines[li].amount, o.seller_goods, o.goods)
    if req >= done:
        v.append((done, J_DONE, True, 0, none))
    v.append((req, J_LOCKED, True, 0, none))
    if n == 1:
        v.append((ok, J_CANCELED, True, o.seller_goods, refunded))
    elif req >= done:
        v.append((ok, J_DONE, True, amount, refunded))
    else:
        v.append((ok, J_SHIPPED, True, amount, refunded))
        v.append((max(done, ok + DAY), J_DONE, True, amount, refunded))
    moves.append((ok, "restock", (li,)))
    return moves


def mall_life(o: Order, rng: random.Random) -> list[Move]:
    """Mall orders: unpaid ones are cancelled, refunds are whole-order."""
    n = len(o.lines)
    none, every, allref = (0,) * n, tuple(range(n)), (2,) * n
    t = o.created
    v = o.versions
    v.append((t, M_CREATED, False, 0, none))
    if chance(rng, 0.07):
        v.append((t + rng.randint(900, 1800), M_CANCELLED, False, 0, none))
        return []
    pay = t + rng.randint(10, 600)
    o.pay_ts = pay
    v.append((pay, M_PAID, True, 0, none))
    moves: list[Move] = [(pay, "reserve", every)]
    paid = o.goods - o.discount
    if chance(rng, 0.02):
        r = pay + rng.randint(3600, 20 * 3600)
        v.append((r, M_REFUNDED, True, paid, allref))
        return [*moves, (r, "release", every)]
    ship = pay + rng.randint(4 * 3600, 36 * 3600)
    v.append((ship, M_SHIPPED, True, 0, none))
    moves.append((ship, "ship", every))
    done = ship + rng.randint(3 * DAY, 8 * DAY)
    v.append((done, M_COMPLETED, True, 0, none))
    if chance(rng, 0.025):
        r = done + rng.randint(DAY, 5 * DAY)
        v.append((r, M_REFUNDED, True, paid, allref))
        moves.append((r, "restock", every))
    return moves
