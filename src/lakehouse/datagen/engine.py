"""The day loop: simulate each business day, then write that day's deliveries.

Per day: stock arrives, campaigns touch members, online orders are created (with their
future states), stores sell and take returns, warehouses move, and then every source drops
its files for dt=<day>, dirt injected, with the truth written alongside.
"""

from __future__ import annotations

import datetime as dt
import pathlib
from collections.abc import Callable, Iterable

from . import truth
from .dirt import Injector, Planner
from .formats import DAY, Clock, phone_dashed, phone_masked, yuan, yuan_thousands
from .inventory import Inventory
from .landing import Landing, Written
from .orders import (
    T_REFUND_STATES,
    Move,
    OLine,
    Order,
    PosLine,
    Ticket,
    jd_life,
    mall_life,
    tmall_life,
)
from .records import (
    DATASETS,
    TMALL_ORDER_EXTRA,
    TMALL_ORDER_HEADER,
    csv_all,
    csv_minimal,
    file_name,
    json_line,
)
from .rng import Picker, chance, pick_weighted, poisson, sub_rng
from .world import (
    CITIES,
    REGIONS,
    Campaign,
    Member,
    Person,
    Sizes,
    Sku,
    Store,
    build_world,
    draw_departures,
)

# share of order lines per channel, and mean lines per order/ticket
SHARES = {"TMALL": 0.25, "JD": 0.15, "MALL": 0.17, "POS": 0.43}
LINES_PER_ORDER = {"TMALL": 1.41, "JD": 1.41, "MALL": 1.41, "POS": 1.76}
ONLINE_LINES = ((1, 0.72), (2, 0.18), (3, 0.07), (4, 0.03))
POS_LINES = ((1, 0.55), (2, 0.25), (3, 0.12), (4, 0.05), (5, 0.03))
QTY = ((1, 0.88), (2, 0.09), (3, 0.03))
ONLINE_HOURS = (
    1,
    0.5,
    0.3,
    0.2,
    0.2,
    0.3,
    0.6,
    1,
    1.5,
    2,
    3,
    3,
    3,
    2.5,
    2.5,
    2.5,
    2.5,
    2.5,
    3,
    3.5,
    4.5,
    5,
    4.5,
    3,
)
STORE_HOURS = {
    10: 1,
    11: 1.5,
    12: 2,
    13: 2,
    14: 2.5,
    15: 2.5,
    16: 2.5,
    17: 2.5,
    18: 3,
    19: 3.5,
    20: 3,
    21: 1.5,
}
WEEKDAY = (0.92, 0.9, 0.92, 0.95, 1.05, 1.35, 1.3)
PAY = (("WECHAT", 45), ("ALIPAY", 30), ("CASH", 10), ("CARD", 8), ("UNIONPAY", 7))
LATE_P = 0.015
MEMOS = ("", "", "", "", "送礼盒包装", "请尽快发货", "不要发中通", "生日礼物，别放发票")


def day_factor(date: dt.date, online: bool) -> float:
    """Weekends, shopping festivals and holidays, seen from the channel's side."""
    f = WEEKDAY[date.weekday()]
    md = (date.month, date.day)
    if md == (3, 8):
        f *= 1.8 if online else 1.3
    if (4, 4) <= md <= (4, 6):
        f *= 1.15 if online else 1.3
    if (5, 1) <= md <= (5, 5):
        f *= 1.2 if online else 1.6
    if md == (5, 20):
        f *= 1.3
    if online and (6, 1) <= md <= (6, 18):
        f *= 1.3 + (1.4 if md == (6, 18) else 0.0)
    if online and md in ((11, 11), (12, 12)):
        f *= 2.5
    return f


class Engine:
    def __init__(
        self, out: pathlib.Path, scale: float, days: int, start: dt.date, seed: int
    ) -> None:
        self.days = days
        self.sz = Sizes.of(scale, days)
        self.clock = Clock(start)
        self.w = build_world(self.sz, self.clock, sub_rng(seed, "world"))
        draw_departures(self.w, sub_rng(seed, "departures"), days)
        self.r_ord = sub_rng(seed, "orders")
        self.r_pos = sub_rng(seed, "pos")
        self.r_fmt = sub_rng(seed, "format")
        self.r_late = sub_rng(seed, "late")
        self.r_camp = sub_rng(seed, "campaigns")
        self.r_files = sub_rng(seed, "files")
        self.r_keys = sub_rng(seed, "keys")
        self.planner = Planner(sub_rng(seed, "planner"), days)
        self.inj = Injector(sub_rng(seed, "dirt"), self.planner, self)
        self.landing = Landing(out, self.clock)
        self.inv = Inventory(self.w, sub_rng(seed, "inventory"), days, self.sz.lines_per_day * 1.15)
        self.ids: dict[tuple[str, str], str] = {}
        self.shared: dict[tuple[str, str], str] = {}
        self.keys: set[str] = set()
        self.mall_seq: dict[str, int] = {}
        self.junk_seq: dict[tuple[str, str], int] = {}
        self.ticket_seq: dict[tuple[int, int, int], int] = {}
        self.orders: list[Order] = []
        self.tickets: list[Ticket] = []
        self.out_orders: dict[str, dict[int, list[tuple[Order, int, bool]]]] = {
            "TMALL": {},
            "JD": {},
            "MALL": {},
        }
        self.out_pos: dict[tuple[int, int], list[tuple[Ticket, bool]]] = {}
        self.out_touch: dict[int, list[tuple[tuple[str, ...], int, bool, Person, bool]]] = {}
        self.pos_returns: dict[int, list[Ticket]] = {}
        self.coupon_orders: dict[int, list[tuple[Person, Member, Campaign | None]]] = {}
        self.points_due: dict[int, list[tuple[Member, int]]] = {}
        self.corrections: dict[
            int,
            list[
                tuple[
                    str,
                    tuple[str, ...],
                    list[str],
                    Written,
                    list[tuple[int, int, str, str, str, str]],
                ]
            ],
        ] = {}
        self.correction_log: list[tuple[str, ...]] = []
        self.late_due: dict[str, int] = {}
        self._setup()

    # -- setup -------------------------------------------------------------------------------
    def _setup(self) -> None:
        """Volume curves, buyer pools, pickers, and the days the forced events happen."""
        w, days = self.w, self.days
        online = [day_factor(self.clock.date(d), True) for d in range(days)]
        store = [day_factor(self.clock.date(d), False) for d in range(days)]
        self.factor = {
            "online": [f / (sum(online) / days) for f in online],
            "store": [f / (sum(store) / days) for f in store],
        }
        people = w.people
        self.pool = {
            "TMALL": Picker([p for p in people if p.tmall], [p.weight for p in people if p.tmall]),
            "JD": Picker([p for p in people if p.jd], [p.weight for p in people if p.jd]),
            "MALL": Picker([p for p in people if p.mall], [p.weight for p in people if p.mall]),
        }
        by_store: dict[int, list[Person]] = {}
        for p in people:
            if p.home_store is not None:
                by_store.setdefault(p.home_store, []).append(p)
        self.store_pool = {k: Picker(v, [p.weight for p in v]) for k, v in by_store.items()}
        self.sku_pick = Picker(w.skus, [s.popularity for s in w.skus])
        self.store_sku_pick: dict[int, Picker[Sku]] = {}
        self.hour_online = Picker(range(24), ONLINE_HOURS)
        self.hour_store = Picker(list(STORE_HOURS), list(STORE_HOURS.values()))
        r = self.r_files
        self.tmall_drift = max(1, days // 2) if days > 1 else days
        self.jd_drift = max(1, (days * 3) // 5) if days > 1 else days
        self.force_redeliver = (
            (r.randrange(1, days), r.randrange(1, days)) if days > 1 else (-1, -1)
        )
        self.force_redeliver_ds = r.choice(
            (
                "tmall_order_items",
                "jd_orders",
                "mall_orders",
                "crm_members",
                "products",
                "campaign_touches",
                "tmall_orders",
            )
        )
        self.force_correction = r.randrange(0, days - 1) if days > 1 else -1
        for channel in ("TMALL", "JD", "MALL", "POS", "TOUCH"):
            self.late_due[channel] = r.randrange(max(1, (days + 1) // 2))

    # -- keys the dirt needs (JunkContext) -----------------------------------------------------
    def _unique(self, make: Callable[[], str]) -> str:
        while True:
            v = make()
            if v not in self.keys:
                self.keys.add(v)
                return v

    def new_tmall_oid(self) -> str:
        r = self.r_keys
        return self._unique(
            lambda: (
                str(r.randrange(2 * 10**17, 10**18))
                if r.random() < 0.6
                else str(r.randrange(10**18, 4 * 10**18))
            )
        )

    def new_tmall_sub(self) -> str:
        return self.new_tmall_oid()

    def new_jd_id(self) -> int:
        r = self.r_keys
        return int(self._unique(lambda: str(r.randrange(230000000000, 259999999999))))

    def new_mall_id(self, ymd: str) -> str:
        k = self.junk_seq[("mall", ymd)] = self.junk_seq.get(("mall", ymd), 900000) + 1
        return f"M{ymd}{k:06d}"

    def new_pos_ticket(self, store_code: str, base_ticket: str) -> str:
        key = (store_code, base_ticket[:7])
        k = self.junk_seq[key] = self.junk_seq.get(key, 9000) + 1
        return f"{base_ticket[:7]}{k:04d}"

    def unknown(self, what: str) -> str:
        w, r = self.w, self.r_keys
        table = {
            "tmall_code": w.unknown_tmall_codes,
            "jd_sku": w.unknown_jd_skus,
            "sku_id": w.unknown_sku_ids,
            "barcode": w.unknown_barcodes,
            "store": w.unknown_store_codes,
        }[what]
        return r.choice(table)

    # -- identifiers -------------------------------------------------------------------------
    def _id(self, typ: str, value: str | None, p: Person) -> None:
        if not value:
            return
        key = (typ, value)
        prev = self.ids.get(key)
        if prev is None:
            self.ids[key] = p.pid
        elif prev != p.pid:  # pragma: no cover - a generator bug, never data
            raise AssertionError(f"{typ} {value} belongs to {prev} and {p.pid}")

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> dict[str, dict[str, int]]:
        for d in range(self.days):
            self.inv.begin_day(d)
            self.inv.launch(d)
            for s in sorted(self.inv.store_changed):
                self.store_sku_pick.pop(s, None)
            self.inv.store_changed.clear()
            self._touches(d)
            self._online(d)
            self._pos(d)
            self.inv.end_day(d)
            self._write_day(d)
        truth.write_all(self)
        return {k: dict(v) for k, v in sorted(self.landing.summary.items())}

    # -- campaigns ---------------------------------------------------------------------------
    def _touches(self, d: int) -> None:
        r = self.r_camp
        for c in self.w.campaigns:
            if c.channel not in ("SMS", "WECHAT", "APP_PUSH", "STORE"):
                continue
            first = max(0, c.start_day)
            if not (first <= d <= first + 1 and d <= c.end_on(d)):
                continue
            cutoff = d * DAY
            eligible = [
                m
                for m in self.w.members
                if m.reg_ts < cutoff and not m.opted_out(d) and (c.channel != "WECHAT" or m.unionid)
            ]
            k = min(len(eligible), round(len(eligible) * c.audience / 2))
            for m in r.sample(eligible, k):
                # a record the CRM no longer holds is touched no more, and its coupon order goes
                # without the coupon; every draw stays as it was (the touches file is written
                # as if the touch were there), so every other record is what it would have been
                held = not m.left_by(d)
                ts = d * DAY + r.randint(9 * 3600, 20 * 3600)
                p = m.person
                phone = m.phone if c.channel in ("SMS", "STORE") else ""
                unionid = m.unionid if c.channel == "WECHAT" else ""
                mid = m.member_id if c.channel != "WECHAT" or chance(r, 0.5) else ""
                row = (c.cid, self.clock.local(ts), mid, phone, unionid)
                late = chance(self.r_late, 0.01) and d + 1 < self.days
                dd = d + (self.r_late.randint(1, 2) if late else 0)
                if not late and d + 1 < self.days and self._late_due("TOUCH", d):
                    late, dd = True, d + 1
                if dd < self.days:
                    self.out_touch.setdefault(dd, []).append((row, ts, late, p, held))
                if c.coupon and chance(r, 0.12):
                    od = d + r.randint(0, max(0, c.end_on(d) - d))
                    self.coupon_orders.setdefault(od, []).append((p, m, c if held else None))

    # -- online orders -------------------------------------------------------------------------
    def _count(self, channel: str, d: int) -> int:
        kind = "store" if channel == "POS" else "online"
        lam = (
            self.sz.lines_per_day
            * SHARES[channel]
            / LINES_PER_ORDER[channel]
            * self.factor[kind][d]
        )
        return poisson(self.r_pos if channel == "POS" else self.r_ord, lam)

    def _promo(self, platform: str, d: int) -> float:
        return 0.85 if any(c.channel == platform and c.active(d) for c in self.w.campaigns) else 1.0

    def _online_lines(self, d: int, platform: str, promo: float) -> list[OLine]:
        r = self.r_ord
        n = pick_weighted(r, ONLINE_LINES)
        seen: set[int] = set()
        out: list[OLine] = []
        for _ in range(n * 6):
            if len(out) >= n:
                break
            sku = self.sku_pick.pick(r)
            if sku.idx in seen or not sku.sellable(d) or (platform == "JD" and not sku.on_jd):
                continue
            seen.add(sku.idx)
            price = sku.price_on(d)[0]
            if promo < 1:
                price = max(100, int(price * promo) // 100 * 100)
            line_id = self.new_tmall_sub() if platform == "TMALL" else str(len(out) + 1)
            out.append(OLine(line_id, sku, price, pick_weighted(r, QTY)))
        return out

    def _wh(self, p: Person) -> int:
        return REGIONS.index(CITIES[p.city][3]) % len(self.w.warehouses)

    def _online(self, d: int) -> None:
        r = self.r_ord
        for channel in ("TMALL", "JD", "MALL"):
            promo = self._promo(channel, d)
            if not len(self.pool[channel]):
                continue
            for _ in range(self._count(channel, d)):
                p = self.pool[channel].pick(r)
                self._order(channel, d, p, promo)
        for p, m, c in self.coupon_orders.pop(d, []):
            self._order("MALL", d, p, 1.0, member=m, campaign=c if c and c.active(d) else None)

    def _order(
        self,
        channel: str,
        d: int,
        p: Person,
        promo: float,
        member: Member | None = None,
        campaign: Campaign | None = None,
    ) -> None:
        r = self.r_ord
        ts = d * DAY + self.hour_online.pick(r) * 3600 + r.randrange(3600)
        lines = self._online_lines(d, channel, promo)
        if not lines:
            return
        city = CITIES[p.city]
        goods = sum(li.amount for li in lines)
        if channel == "TMALL":
            o = Order("TMALL", self.new_tmall_oid(), p, ts, lines, self._wh(p), goods=goods)
            o.ship = 0 if goods >= 9900 else 1000
            o.shop = self.w.tmall_shops[0 if chance(r, 0.85) else 1]
            x = r.random()
            if x < 0.66:
                o.phone, o.phone_id = p.phone, True
            elif x < 0.74:
                o.phone, o.phone_id = "+86" + p.phone, True
            elif x < 0.80:
                o.phone, o.phone_id = "86-" + p.phone, True
            elif x < 0.94:
                o.phone = phone_masked(p.phone)
            else:
                o.phone = ""
            o.address = f"{city[0]} {city[2]} {p.district} {p.addr_detail}"
            o.memo = r.choice(MEMOS)
            o.note = (
                r.choice(("店铺券满199减20", "店铺券满299减30"))
                if promo < 1 and chance(r, 0.5)
                else ""
            )
            moves = tmall_life(o, r)
        elif channel == "JD":
            o = Order("JD", "", p, ts, lines, self._wh(p), goods=goods)
            o.oid = str(self.new_jd_id())
            if goods >= 19900 and chance(r, 0.35):
                o.discount = 2000
            if chance(r, 0.1):
                o.platform_discount = min(goods - o.discount - 100, r.choice((500, 1000, 1500)))
                o.platform_discount = max(0, o.platform_discount)
            o.ship = 0 if goods - o.discount >= 9900 else 600
            x = r.random()
            if x < 0.65:
                o.phone, o.phone_id = p.phone, True
            elif x < 0.95:
                o.phone = phone_masked(p.phone)
            else:
                o.phone, o.phone_id = "+86" + p.phone, True
            o.address = f"{city[0]}{city[2]}{p.district}{p.addr_detail}"
            o.memo = r.choice(MEMOS)
            o.channel_extra = r.choice(("移动端订单", "移动端订单", "PC订单", "微信订单"))
            moves = jd_life(o, r)
        else:
            ymd = self.clock.ymd(d)
            seq = self.mall_seq[ymd] = self.mall_seq.get(ymd, 100 + r.randrange(200)) + 1
            o = Order("MALL", f"M{ymd}{seq:06d}", p, ts, lines, self._wh(p), goods=goods)
            if member is None and chance(r, 0.88):
                member = p.member_on(ts)
                if len(p.members) > 1 and p.members[1].reg_ts <= ts and chance(r, 0.2):
                    member = p.members[1]
            o.member = self._held(member, d)
            if p.family_openid and chance(r, 0.7):
                o.openid, o.shared_openid = p.family_openid, True
                o.phone = ("+86" + p.phone) if chance(r, 0.6) else p.phone
            elif p.openid and chance(r, 0.8):
                o.openid = p.openid
                o.unionid = p.unionid if chance(r, 0.85) else None
                x = r.random()
                o.phone = "+86" + p.phone if x < 0.55 else p.phone if x < 0.75 else None
            else:
                o.phone = ("+86" + p.phone) if chance(r, 0.5) else p.phone
            o.phone_id = o.phone is not None
            if campaign is not None:
                o.coupon, o.campaign = campaign.coupon, campaign.cid
                o.discount = min(campaign.discount_cents, goods // 3)
            moves = mall_life(o, r)
            self._points(o)
        self.orders.append(o)
        self._moves(o, moves)
        self._schedule(o)

    def _points(self, o: Order) -> None:
        m = o.member
        if m is None or o.pay_ts is None:
            return
        paid = o.goods - o.discount
        self.points_due.setdefault(o.pay_ts // DAY, []).append((m, paid // 100))
        if o.versions[-1][3]:
            self.points_due.setdefault(o.versions[-1][0] // DAY, []).append((m, -(paid // 100)))

    def _moves(self, o: Order, moves: list[Move]) -> None:
        for ts, op, idx in moves:
            for i in idx:
                li = o.lines[i]
                self.inv.event(ts // DAY, op, o.wh, li.sku.idx, li.qty)

    def _schedule(self, o: Order) -> None:
        """Each day's last version is exported that day, or a few days late; a version that
        a newer one overtakes is never exported (exports show the current state)."""
        vs = o.versions
        natural = [
            (i, v[0] // DAY)
            for i, v in enumerate(vs)
            if i + 1 == len(vs) or vs[i + 1][0] // DAY != v[0] // DAY
        ]
        cands: list[tuple[int, int, bool]] = []
        for k, (i, day) in enumerate(natural):
            late = chance(self.r_late, LATE_P)
            delay = self.r_late.randint(1, 3) if late else 0
            nxt = natural[k + 1][1] if k + 1 < len(natural) else self.days
            if not late and day + 1 < min(nxt, self.days) and self._late_due(o.channel, day):
                late, delay = True, 1
            cands.append((i, day + delay, late))
        bucket = self.out_orders[o.channel]
        min_after = 10**9
        for i, dd, late in reversed(cands):
            if dd < min_after and dd < self.days:
                bucket.setdefault(dd, []).append((o, i, late))
            min_after = min(min_after, dd)

    @staticmethod
    def _held(member: Member | None, d: int) -> Member | None:
        """The record the CRM holds for `member` on day d: itself, the record it was merged into,
        or None once it is closed."""
        while member is not None and member.left_by(d):
            member = member.merged_into
        return member

    def _late_due(self, channel: str, day: int) -> bool:
        """Force one late record per channel early on, so small runs carry them too."""
        due = self.late_due.get(channel)
        if due is None or day < due:
            return False
        del self.late_due[channel]
        return True

    # -- stores ------------------------------------------------------------------------------
    def _store_picker(self, s: Store) -> Picker[Sku]:
        pk = self.store_sku_pick.get(s.idx)
        if pk is None:
            skus = [self.w.skus[k] for k in s.assortment]
            pk = self.store_sku_pick[s.idx] = Picker(skus, [k.popularity for k in skus])
        return pk

    def _pos(self, d: int) -> None:
        r = self.r_pos
        trading = [s for s in self.w.stores if s.trading(d) and s.assortment]
        total = self._count("POS", d)
        area = sum(s.area for s in trading) or 1
        lam = total / area
        store_campaign = any(c.channel == "STORE" and c.active(d) for c in self.w.campaigns)
        for s in trading:
            if d in s.renovation:
                continue
            for _ in range(poisson(r, lam * s.area)):
                self._ticket(s, d, store_campaign)
        for t in self.pos_returns.pop(d, []):
            if t.store.trading(d) and d not in t.store.renovation:
                self._return(t, d)

    def _ticket_no(self, s: Store, d: int, pos: int) -> str:
        key = (s.idx, d, pos)
        k = self.ticket_seq[key] = self.ticket_seq.get(key, 0) + 1
        return f"{self.clock.ymd(d)[2:]}{pos}{k:04d}"

    def _ticket(self, s: Store, d: int, store_campaign: bool) -> None:
        r = self.r_pos
        pool = self.store_pool.get(s.idx)
        anonymous = pool is None or chance(r, 0.4)
        p = pool.pick(r) if pool is not None else r.choice(self.w.people)
        ts = d * DAY + self.hour_store.pick(r) * 3600 + r.randrange(3600)
        cashier = r.choice(s.cashiers)
        member = None if anonymous else p.member_on(ts)
        card = phone = ""
        store_phone = False
        closed = False
        if member is not None:
            if len(p.members) > 1 and p.members[1].reg_ts <= ts and chance(r, 0.2):
                member = p.members[1]
            # a merged record's holder shows the record it was merged into; a closed one's
            # ticket carries no card (decided after the draws and the discount, which stay as
            # they were: only the card field of its file changes)
            closed = self._held(member, d) is None
            member = self._held(member, d) or member
            x = r.random()
            if x < 0.5:
                card = member.card_no
            elif x < 0.6:
                card, phone = member.card_no, self._pos_phone(member.phone)
            elif x < 0.85:
                phone = self._pos_phone(member.phone)
        elif not anonymous and chance(r, 0.2):
            phone = self._pos_phone(p.phone)
        if not card and not phone and cashier == s.lazy_cashier and chance(r, 0.85):
            phone, store_phone = self._pos_phone(s.phone), True
        picker = self._store_picker(s)
        lines: list[PosLine] = []
        seen: set[int] = set()
        want = pick_weighted(r, POS_LINES)
        rate = (0.05 if member is not None else 0.0) + (0.1 if store_campaign else 0.0)
        for _ in range(want * 4):
            if len(lines) >= want:
                break
            sku = picker.pick(r)
            qty = pick_weighted(r, QTY)
            if sku.idx in seen or not sku.sellable(d) or not self.inv.sell(s, sku.idx, qty, d):
                continue
            seen.add(sku.idx)
            price = sku.price_on(d)[0]
            lines.append(PosLine(len(lines) + 1, sku, qty, price, round(price * qty * rate)))
        if not lines:
            return
        if closed:
            member, card = None, ""
        pos = r.randint(1, s.pos_count)
        t = Ticket(
            s,
            self._ticket_no(s, d, pos),
            ts,
            f"POS{pos}",
            cashier,
            card,
            phone,
            lines,
            pick_weighted(r, PAY),
            "",
            p,
            member,
            store_phone,
        )
        self._pos_done(t, d)
        if chance(r, 0.025):
            rd = d + r.randint(1, 14)
            if rd < self.days:
                self.pos_returns.setdefault(rd, []).append(t)

    def _pos_phone(self, phone: str) -> str:
        return phone_dashed(phone) if chance(self.r_pos, 0.5) else phone

    def _return(self, orig: Ticket, d: int) -> None:
        r = self.r_pos
        s = orig.store
        back = orig.lines if len(orig.lines) == 1 or chance(r, 0.3) else [r.choice(orig.lines)]
        lines = [
            PosLine(i + 1, li.sku, -li.qty, li.price, -li.discount) for i, li in enumerate(back)
        ]
        for li in back:
            self.inv.give_back(s, li.sku.idx, li.qty)
        ts = d * DAY + self.hour_store.pick(r) * 3600 + r.randrange(3600)
        pos = r.randint(1, s.pos_count)
        t = Ticket(
            s,
            self._ticket_no(s, d, pos),
            ts,
            f"POS{pos}",
            r.choice(s.cashiers),
            orig.card,
            orig.phone,
            lines,
            orig.pay,
            orig.ticket_no,
            orig.person,
            orig.member,
            orig.store_phone,
        )
        self._pos_done(t, d)

    def _pos_done(self, t: Ticket, d: int) -> None:
        self.tickets.append(t)
        if t.member is not None and (t.card or (t.phone and not t.store_phone)):
            amount = sum(li.amount for li in t.lines)
            self.points_due.setdefault(d, []).append((t.member, amount // 100))
        dd = d
        if chance(self.r_late, LATE_P):
            cand = d + self.r_late.randint(1, 3)
            if cand < self.days and t.store.trading(cand):
                dd = cand
        elif d + 1 < self.days and t.store.trading(d + 1) and self._late_due("POS", d):
            dd = d + 1
        self.out_pos.setdefault((dd, t.store.idx), []).append((t, dd != d))

    # -- writing -------------------------------------------------------------------------------
    def _write(
        self,
        dataset: str,
        d: int,
        name: str,
        clean: list[str],
        late: Iterable[tuple[int, str, str]] = (),
        header: tuple[str, ...] = (),
        crlf: bool = False,
    ) -> tuple[Written, Callable[[int], int]]:
        lines, bad, where = self.inj.inject(DATASETS[dataset], clean, d, header)
        late_rows = [(where(i), b, k) for i, b, k in late]
        return self.landing.write(
            dataset, d, name, lines, bad, late_rows, header=header, crlf=crlf
        ), where

    def _write_as_if(
        self,
        dataset: str,
        d: int,
        name: str,
        clean: list[str],
        was: list[str],
        late: Iterable[tuple[int, str, str]] = (),
    ) -> None:
        """Write `clean`, leaving the dirt's random stream and its planner where writing `was`
        would have: the dirt of every later file does not depend on which records this one lost
        (a kind `was` made and `clean` did not is then not forced again: rare, and only for a
        file that lost records)."""
        rng, planner = self.inj.rng, self.inj.planner
        before, due = rng.getstate(), dict(planner.due)
        if clean != was:
            self.inj.inject(DATASETS[dataset], was, d)
            after, due_after = rng.getstate(), dict(planner.due)
            rng.setstate(before)
            planner.due = dict(due)
        self._write(dataset, d, name, clean, late)
        if clean != was:
            rng.setstate(after)
            planner.due = due_after

    def _write_day(self, d: int) -> None:
        ymd = self.clock.ymd(d)
        self._write_tmall(d, ymd)
        self._write_jd(d, ymd)
        self._write_mall(d, ymd)
        self._write_pos(d, ymd)
        self._write_crm(d, ymd)
        self._write(
            "inventory", d, file_name("inventory", ymd), self.inv.snapshot(d, self.clock.iso(d))
        )
        self._write_master(d, ymd)
        self._write_campaigns(d, ymd)
        self._write_corrections(d)
        self._redeliver(d)

    # Tmall ------------------------------------------------------------------------------------
    def _wrap(self, oid: str) -> str:
        x = self.r_fmt.random()
        if x < 0.75:
            return oid
        if x < 0.87:
            return f'="{oid}"'
        return ("\t" if x < 0.94 else "'") + oid

    def _merchant_code(self, code: str) -> str:
        r = self.r_fmt
        x = r.random()
        if x < 0.93:
            return code
        return r.choice(
            (
                " " + code,
                code + " ",
                code.lower(),
                " " + code.lower() + " ",
                code[0] + code[1:].lower(),
                code + "  ",
            )
        )

    def _tmall_fields(self, o: Order, vi: int, drift: bool) -> list[str]:
        ts, status, paid, refund, _ = o.versions[vi]
        p = o.person
        c = self.clock
        amount = o.paid_amount(o.versions[vi])
        self._id("tmall_nick", p.nick, p)
        if o.phone_id:
            self._id("phone", p.phone, p)
        f = [
            self._wrap(o.oid),
            p.nick or "",
            yuan(o.goods),
            yuan(o.ship),
            yuan_thousands(amount)
            if amount >= 100000 and chance(self.r_fmt, 0.5)
            else yuan(amount),
            status,
            p.name,
            o.address,
            o.phone or "",
            c.local(o.created),
            c.local(o.pay_ts) if paid and o.pay_ts is not None else "",
            str(o.units),
            o.shop,
            yuan(refund),
            c.local(ts),
        ]
        if drift:
            f += [o.memo, o.note]
        return f

    def _write_tmall(self, d: int, ymd: str) -> None:
        delivered = sorted(
            self.out_orders["TMALL"].pop(d, []), key=lambda t: (t[0].versions[t[1]][0], t[0].oid)
        )
        drift = d >= self.tmall_drift
        header = TMALL_ORDER_HEADER + (TMALL_ORDER_EXTRA if drift else ())
        rows: list[list[str]] = []
        items: list[str] = []
        late: list[tuple[int, str, str]] = []
        items_late: list[tuple[int, str, str]] = []
        for o, vi, is_late in delivered:
            o.last = vi
            v = o.versions[vi]
            bdate = self.clock.iso(v[0] // DAY)
            if is_late:
                late.append((len(rows), bdate, o.oid))
            rows.append(self._tmall_fields(o, vi, drift))
            for li, state in zip(o.lines, v[4], strict=True):
                if is_late:
                    items_late.append((len(items), bdate, li.line_id))
                items.append(
                    csv_all(
                        [
                            self._wrap(o.oid),
                            li.line_id,
                            f"{li.sku.name}",
                            yuan(li.price),
                            str(li.qty),
                            self._merchant_code(li.sku.tmall_code),
                            T_REFUND_STATES[state],
                            yuan(li.amount if state == 2 else 0),
                        ]
                    )
                )
        true_text = [csv_all(f) for f in rows]
        text = list(true_text)
        r = self.r_files
        correct_on = None
        changes: list[tuple[int, str, str, str, str]] = []
        if rows and d + 1 < self.days and (d == self.force_correction or chance(r, 0.05)):
            correct_on = d + r.randint(1, min(3, self.days - 1 - d))
            picked = r.sample(range(len(rows)), max(1, round(len(rows) * r.uniform(0.1, 0.3))))
            ix = {h: i for i, h in enumerate(header)}
            for i in sorted(picked):
                text[i] = csv_all(self._spoil(rows[i], ix, delivered[i][0].oid, i, changes))
        name = file_name("tmall_orders", ymd)
        wr, where = self._write(
            "tmall_orders", d, name, text, late, header=header, crlf=chance(r, 0.5)
        )
        if correct_on is not None:
            moved = [(i, where(i), oid, fld, wrong, right) for i, oid, fld, wrong, right in changes]
            self.corrections.setdefault(correct_on, []).append((name, header, true_text, wr, moved))
        self._write(
            "tmall_order_items",
            d,
            file_name("tmall_order_items", ymd),
            items,
            items_late,
            crlf=chance(r, 0.5),
        )

    @staticmethod
    def _spoil(
        row: list[str],
        ix: dict[str, int],
        oid: str,
        i: int,
        changes: list[tuple[int, str, str, str, str]],
    ) -> list[str]:
        """The wrong values a first export carried; its correction carries the true ones."""
        f = list(row)
        ship = f[ix["买家应付邮费"]]
        paid = f[ix["买家实际支付金额"]].replace(",", "")
        if ship != "0.00" and paid != "0.00":
            f[ix["买家应付邮费"]] = "0.00"
            f[ix["买家实际支付金额"]] = yuan(round(float(paid) * 100) - round(float(ship) * 100))
            changes.append((i, oid, "买家应付邮费", "0.00", ship))
            changes.append(
                (i, oid, "买家实际支付金额", f[ix["买家实际支付金额"]], row[ix["买家实际支付金额"]])
            )
        else:
            addr = f[ix["收货地址"]]
            f[ix["收货地址"]] = " ".join(addr.split(" ")[:3])
            changes.append((i, oid, "收货地址", f[ix["收货地址"]], addr))
        return f

    def _write_corrections(self, d: int) -> None:
        for orig_name, header, true_text, wr, moved in self.corrections.pop(d, []):
            name = orig_name.replace(".csv", "_2.csv")
            self.landing.write(
                "tmall_orders",
                d,
                name,
                list(true_text),
                header=header,
                crlf=chance(self.r_files, 0.5),
                correction_of=orig_name,
            )
            first = DATASETS["tmall_orders"].first_data_line
            for i, j, oid, fld, wrong, right in moved:
                self.correction_log.append(
                    (
                        self.clock.iso(d),
                        name,
                        self.clock.iso(wr.day),
                        orig_name,
                        str(i + first),
                        str(j + first),
                        oid,
                        fld,
                        wrong,
                        right,
                    )
                )

    # JD and mall ------------------------------------------------------------------------------
    def _jd_obj(self, o: Order, vi: int, drift: bool) -> dict:
        ts, state, _, refund, _ = o.versions[vi]
        p = o.person
        c = self.clock
        city = CITIES[p.city]
        self._id("jd_pin", p.pin, p)
        if o.phone_id:
            self._id("phone", p.phone, p)
        items = []
        for li in o.lines:
            it = {
                "skuId": li.sku.jd_sku,
                "outerSkuId": li.sku.sku_id,
                "skuName": li.sku.name,
                "jdPrice": yuan(li.price),
                "itemTotal": str(li.qty),
            }
            if drift:
                it["wareId"] = str(int(li.sku.jd_sku) - 90000000)
                it["giftPoint"] = "0"
            items.append(it)
        obj = {
            "orderId": int(o.oid),
            "pin": p.pin,
            "orderState": state,
            "orderTotalPrice": yuan(o.goods),
            "orderSellerPrice": yuan(o.seller_goods),
            "orderPayment": yuan(o.paid_amount(o.versions[vi])),
            "freightPrice": yuan(o.ship),
            "sellerDiscount": yuan(o.discount),
            "orderStartTime": c.local(o.created),
            "paymentConfirmTime": c.local(o.pay_ts or o.created),
            "modified": c.local(ts),
            "refundAmount": yuan(refund),
            "consigneeInfo": {
                "fullname": p.name,
                "mobile": o.phone or "",
                "province": city[1],
                "city": city[2],
                "county": p.district,
                "fullAddress": o.address,
            },
            "itemInfoList": items,
        }
        if drift:
            obj["orderSource"] = o.channel_extra
            obj["venderRemark"] = o.memo
            obj["orderType"] = 22
        return obj

    def _mall_obj(self, o: Order, vi: int) -> dict:
        ts, status, paid, refund, _ = o.versions[vi]
        p = o.person
        c = self.clock
        m = o.member
        if m is not None:
            self._id("member_id", m.member_id, p)
        if o.unionid:
            self._id("unionid", o.unionid, p)
        if o.openid:
            if o.shared_openid:
                self.shared[("openid", o.openid)] = "family_device"
            else:
                self._id("openid", o.openid, p)
        if o.phone:
            self._id("phone", p.phone, p)
        return {
            "order_id": o.oid,
            "member_id": m.member_id if m else None,
            "unionid": o.unionid,
            "openid": o.openid,
            "phone": o.phone,
            "status": status,
            "created_at": c.utc(o.created),
            "paid_at": c.utc(o.pay_ts) if paid and o.pay_ts is not None else None,
            "updated_at": c.utc(ts),
            "total_fen": o.goods,
            "discount_fen": o.discount,
            "paid_fen": o.goods - o.discount if paid else 0,
            "refund_fen": refund,
            "coupon_code": o.coupon,
            "campaign_id": o.campaign,
            "items": [
                {"sku_id": li.sku.sku_id, "qty": li.qty, "price_fen": li.price} for li in o.lines
            ],
        }

    def _write_jsonl(self, channel: str, dataset: str, d: int, ymd: str) -> None:
        delivered = sorted(
            self.out_orders[channel].pop(d, []), key=lambda t: (t[0].versions[t[1]][0], t[0].oid)
        )
        lines: list[str] = []
        late: list[tuple[int, str, str]] = []
        drift = d >= self.jd_drift
        for o, vi, is_late in delivered:
            o.last = vi
            if is_late:
                late.append((len(lines), self.clock.iso(o.versions[vi][0] // DAY), o.oid))
            obj = self._jd_obj(o, vi, drift) if channel == "JD" else self._mall_obj(o, vi)
            lines.append(json_line(obj))
        self._write(dataset, d, file_name(dataset, ymd), lines, late)

    def _write_jd(self, d: int, ymd: str) -> None:
        self._write_jsonl("JD", "jd_orders", d, ymd)

    def _write_mall(self, d: int, ymd: str) -> None:
        self._write_jsonl("MALL", "mall_orders", d, ymd)

    # POS ----------------------------------------------------------------------------------
    def _pos_lines(self, t: Ticket) -> list[str]:
        s, p = t.store, t.person
        if t.card and t.member is not None:
            self._id("card_no", t.card, p)
        if t.phone and not t.store_phone:
            self._id("phone", t.phone.replace("-", ""), p)
        head = [s.code, t.pos_id, t.ticket_no]
        when = self.clock.pos(t.ts)
        return [
            csv_minimal(
                [
                    *head,
                    str(li.line_no),
                    when,
                    t.cashier,
                    t.card,
                    t.phone,
                    li.sku.barcode,
                    str(li.qty),
                    yuan(li.price),
                    yuan(li.discount),
                    yuan(li.amount),
                    t.pay,
                    t.orig,
                ]
            )
            for li in t.lines
        ]

    def _write_pos(self, d: int, ymd: str) -> None:
        for s in self.w.stores:
            if not s.trading(d):
                continue
            got = sorted(self.out_pos.pop((d, s.idx), []), key=lambda x: (x[0].ts, x[0].ticket_no))
            lines: list[str] = []
            late: list[tuple[int, str, str]] = []
            for t, is_late in got:
                t.delivered = True
                for k, text in enumerate(self._pos_lines(t)):
                    if is_late:
                        late.append(
                            (
                                len(lines),
                                self.clock.iso(t.ts // DAY),
                                f"{s.code}/{t.ticket_no}/{k + 1}",
                            )
                        )
                    lines.append(text)
            self._write("pos_sales", d, file_name("pos_sales", ymd, s.code), lines, late)
        self._unknown_store_files(d, ymd)

    def _unknown_store_files(self, d: int, ymd: str) -> None:
        """POS files from a store the stores master does not know; every line is bad."""
        r = self.r_pos
        n = poisson(r, len(self.w.stores) * 0.0015)
        if self.planner.forced("pos_sales", "unknown_store", d):
            n = max(n, 1)
        stocked = [s for s in self.w.stores if s.assortment]
        for _ in range(n):
            code = r.choice(self.w.unknown_store_codes)
            name = file_name("pos_sales", ymd, code)
            if self.landing.exists("pos_sales", d, name) or not stocked:
                continue
            like = r.choice(stocked)
            lines: list[str] = []
            for k in range(r.randint(1, 3)):
                ts = d * DAY + self.hour_store.pick(r) * 3600 + r.randrange(3600)
                ticket = f"{ymd[2:]}1{k + 1:04d}"
                for ln in range(1, r.randint(1, 3) + 1):
                    sku = self.w.skus[r.choice(like.assortment)]
                    price = sku.price_on(d)[0]
                    lines.append(
                        csv_minimal(
                            [
                                code,
                                "POS1",
                                ticket,
                                str(ln),
                                self.clock.pos(ts),
                                f"C{code[1:]}01",
                                "",
                                "",
                                sku.barcode,
                                "1",
                                yuan(price),
                                "0.00",
                                yuan(price),
                                pick_weighted(r, PAY),
                                "",
                            ]
                        )
                    )
            self.landing.write(
                "pos_sales", d, name, lines, [(i, "unknown_store") for i in range(len(lines))]
            )
            self.planner.done("pos_sales", "unknown_store")

    # CRM --------------------------------------------------------------------------------------
    def _write_crm(self, d: int, ymd: str) -> None:
        for m, delta in self.points_due.pop(d, []):
            m.points = max(0, m.points + delta)
            m.row = None
        for m in self.w.members:
            if m.opt_flip_day == d:
                m.row = None
        end = (d + 1) * DAY
        rows: list[str] = []
        listed: list[str] = []
        for m in self.w.members:
            if m.reg_ts >= end:
                break
            if m.row is None:
                p = m.person
                if not m.row_seen:
                    for typ, val in (
                        ("member_id", m.member_id),
                        ("card_no", m.card_no),
                        ("phone", m.phone),
                        ("unionid", m.unionid),
                        ("email", m.email.strip().lower()),
                    ):
                        self._id(typ, val, p)
                    m.row_seen = True
                m.row = csv_minimal(
                    [
                        m.member_id,
                        m.card_no,
                        p.name,
                        m.phone,
                        m.email,
                        m.gender,
                        m.birthday,
                        m.channel,
                        m.store_code,
                        self.clock.local(m.reg_ts),
                        m.level,
                        str(m.points),
                        m.unionid,
                        "Y" if m.opted_out(d) else "N",
                    ]
                )
            rows.append(m.row)
            if not m.left_by(d):
                listed.append(m.row)
        self._write_as_if("crm_members", d, file_name("crm_members", ymd), listed, rows)

    # master and campaigns ----------------------------------------------------------------
    def _write_master(self, d: int, ymd: str) -> None:
        c = self.clock
        skus = [s for s in self.w.skus if s.list_day <= d]
        prod = []
        for s in skus:
            lst, cost = s.price_on(d)
            status = "DISCONTINUED" if s.disc_day is not None and s.disc_day <= d else "ACTIVE"
            prod.append(
                csv_minimal(
                    [
                        s.sku_id,
                        s.barcode,
                        s.name,
                        s.brand,
                        s.l1,
                        s.l2,
                        s.l3,
                        yuan(lst),
                        yuan(cost),
                        c.iso(s.launch_day),
                        status,
                    ]
                )
            )
        self._write("products", d, file_name("products", ymd), prod)
        mapping = (
            [f"TMALL,{s.tmall_code},{s.sku_id}" for s in skus]
            + [f"JD,{s.jd_sku},{s.sku_id}" for s in skus if s.on_jd]
            + [f"MALL,{s.sku_id},{s.sku_id}" for s in skus]
            + [f"POS,{s.barcode},{s.sku_id}" for s in skus]
        )
        self._write("sku_mapping", d, file_name("sku_mapping", ymd), mapping)
        stores = []
        for s in self.w.stores:
            if s.list_day > d:
                continue
            close = ""
            if (
                s.close_day is not None
                and s.close_announce_day is not None
                and (d >= s.close_announce_day)
            ):
                close = c.iso(s.close_day)
            stores.append(
                csv_minimal(
                    [
                        s.code,
                        s.name,
                        s.store_type,
                        s.province,
                        s.city,
                        s.region,
                        str(s.area),
                        str(s.staff_on(d)),
                        c.iso(s.open_day),
                        close,
                        s.phone,
                    ]
                )
            )
            self.shared[("phone", s.phone)] = "store_phone"
        self._write("stores", d, file_name("stores", ymd), stores)

    def _write_campaigns(self, d: int, ymd: str) -> None:
        c = self.clock
        rows = [
            csv_minimal(
                [
                    k.cid,
                    k.name,
                    k.channel,
                    c.iso(k.start_day),
                    c.iso(k.end_on(d)),
                    yuan(k.cost_on(d)),
                    k.coupon,
                ]
            )
            for k in self.w.campaigns
            if k.list_day <= d
        ]
        self._write("campaigns", d, file_name("campaigns", ymd), rows)
        touches = sorted(self.out_touch.pop(d, []), key=lambda t: (t[1], t[0]))
        lines: list[str] = []
        was: list[str] = []  # with the touches of records that left the CRM (_write_as_if)
        late: list[tuple[int, str, str]] = []
        seen: set[tuple[str, ...]] = set()
        for row, ts, is_late, p, held in touches:
            if row in seen:  # the same touch twice would read as an injected duplicate
                continue
            seen.add(row)
            was.append(csv_minimal(list(row)))
            if not held:
                continue
            _, _, mid, phone, unionid = row
            self._id("member_id", mid, p)
            self._id("phone", phone, p)
            self._id("unionid", unionid, p)
            if is_late:
                late.append((len(lines), c.iso(ts // DAY), row[0]))
            lines.append(csv_minimal(list(row)))
        self._write_as_if(
            "campaign_touches", d, file_name("campaign_touches", ymd), lines, was, late
        )

    # re-deliveries ---------------------------------------------------------------------------
    def _redeliver(self, d: int) -> None:
        if d == 0:
            return
        r = self.r_files
        for ds in (
            "tmall_orders",
            "tmall_order_items",
            "jd_orders",
            "mall_orders",
            "crm_members",
            "inventory",
            "products",
            "sku_mapping",
            "stores",
            "campaigns",
            "campaign_touches",
        ):
            forced = d == self.force_redeliver[0] and ds == self.force_redeliver_ds
            if forced or chance(r, 0.012):
                self._redeliver_one(ds, d)
        n = poisson(r, 0.0015 * len(self.w.stores))
        if d == self.force_redeliver[1]:
            n = max(n, 1)
        for _ in range(n):
            self._redeliver_one("pos_sales", d)

    def _redeliver_one(self, ds: str, d: int) -> None:
        r = self.r_files
        od = d - r.randint(1, min(3, d))
        cands = [w for w in self.landing.by_day.get((ds, od), []) if "_2." not in w.name]
        if cands:
            self.landing.redeliver(r.choice(cands), d)
