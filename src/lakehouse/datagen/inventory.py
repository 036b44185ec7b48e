"""Stock per location x SKU that moves with sales, reservations and replenishment.

Warehouses carry every listed SKU and serve online orders (reserve on payment, ship later)
and store transfers; stores carry an assortment and sell from it. Snapshot rows are cached
strings re-rendered only when their numbers change, so a daily full snapshot stays cheap.
"""

from __future__ import annotations

import math
import random

from .formats import yuan
from .world import Store, World

WH, STORE = "WAREHOUSE", "STORE"


class Inventory:
    def __init__(self, world: World, rng: random.Random, days: int, units_per_day: float) -> None:
        self.w = world
        self.rng = rng
        self.days = days
        self.n_wh = len(world.warehouses)
        self.codes = list(world.warehouses) + [s.code for s in world.stores]
        self.types = [WH] * self.n_wh + [STORE] * len(world.stores)
        n_loc = len(self.codes)
        self.stock: list[dict[int, list[int]]] = [{} for _ in range(n_loc)]
        self.rows: list[dict[int, str]] = [{} for _ in range(n_loc)]
        self.carried: list[list[int]] = [[] for _ in range(n_loc)]
        self.limits: list[dict[int, tuple[int, int]]] = [{} for _ in range(n_loc)]
        self.dirty: list[set[int]] = [set() for _ in range(n_loc)]
        self.arrivals: dict[int, list[tuple[int, int, int]]] = {}
        self.events: dict[int, list[tuple[str, int, int, int]]] = {}
        self.sku_locs: list[list[int]] = [[] for _ in world.skus]
        self.cost: list[str] = [yuan(s.price_on(0)[1]) for s in world.skus]
        self.cost_changes: dict[int, list[int]] = {}
        for s in world.skus:
            for day, _, _ in s.prices[1:]:
                self.cost_changes.setdefault(day, []).append(s.idx)
        total_pop = sum(s.popularity for s in world.skus) or 1.0
        # expected units per warehouse and day, all channels (stores are fed from warehouses)
        self.demand = [units_per_day * s.popularity / total_pop / self.n_wh for s in world.skus]
        self.listed = 0
        self.started = False
        self.store_changed: set[int] = set()

    # -- setup as days go by ---------------------------------------------------------------
    def begin_day(self, d: int) -> None:
        """Arrivals, newly listed SKUs, stores about to open."""
        w, rng = self.w, self.rng
        while self.listed < len(w.skus) and w.skus[self.listed].list_day <= d:
            sku = w.skus[self.listed]
            self.listed += 1
            for loc in range(self.n_wh):
                dem = self.demand[sku.idx]
                target = math.ceil(35 * dem) + 12
                rp = math.ceil(12 * dem) + 4
                if sku.launch_day <= d:
                    on_hand = int(target * rng.uniform(0.6, 1.0))
                    if sku.disc_day is not None and sku.disc_day <= d:
                        on_hand = rng.randint(0, 30)
                    self._add(loc, sku.idx, on_hand, 0, (target, rp))
                else:
                    self._add(loc, sku.idx, 0, target, (target, rp))
                    self._arrive(max(d + 1, sku.launch_day - 2), loc, sku.idx, target)
        for store in w.stores:
            if store.close_day is not None and store.close_day <= 0:
                continue
            start = store.open_day - 2
            if (not self.started and start <= d) or start == d:
                self._stock_store(store, d, opening=self.started or store.open_day > d)
        self.started = True
        for loc, sku, q in self.arrivals.pop(d, []):
            st = self.stock[loc][sku]
            st[2] -= q
            st[0] += q
            self.dirty[loc].add(sku)

    def launch(self, d: int) -> None:
        """SKUs launching today join the assortment of a few stores (about as many stores as
        an average SKU is carried by, so assortments stay near their size)."""
        w, rng = self.w, self.rng
        launching = [s for s in w.skus if s.launch_day == d]
        if not launching:
            return
        trading = [s for s in w.stores if s.trading(d) and s.assortment]
        if not trading:
            return
        mean = sum(len(s.assortment) for s in trading) / len(trading)
        k = min(len(trading), max(1, round(len(trading) * mean / len(w.skus) * 1.5)))
        for sku in launching:
            for store in rng.sample(trading, k):
                store.assortment.append(sku.idx)
                loc = self.n_wh + store.idx
                target = rng.randint(3, 8)
                self._add(loc, sku.idx, target, 0, (target, max(1, target // 3)))
                self.store_changed.add(store.idx)

    def _stock_store(self, store: Store, d: int, opening: bool) -> None:
        loc = self.n_wh + store.idx
        rng = self.rng
        for k in store.assortment:
            target = 3 + min(9, int(self.w.skus[k].popularity * 12))
            rp = max(1, target // 3)
            if opening:
                self._add(loc, k, 0, target, (target, rp))
                self._arrive(max(d + 1, store.open_day - 1), loc, k, target)
            else:
                self._add(loc, k, rng.randint(rp + 1, target), 0, (target, rp))

    def _add(
        self, loc: int, sku: int, on_hand: int, in_transit: int, limits: tuple[int, int]
    ) -> None:
        self.stock[loc][sku] = [on_hand, 0, in_transit]
        self.limits[loc][sku] = limits
        self.carried[loc].append(sku)
        self.sku_locs[sku].append(loc)
        self.dirty[loc].add(sku)

    def _arrive(self, day: int, loc: int, sku: int, q: int) -> None:
        self.arrivals.setdefault(day, []).append((loc, sku, q))

    # -- movements ---------------------------------------------------------------------------
    def on_hand(self, store: Store, sku: int) -> int:
        st = self.stock[self.n_wh + store.idx].get(sku)
        return st[0] if st else 0

    def sell(self, store: Store, sku: int, q: int, d: int) -> bool:
        """A store sale; refuses when the shelf does not hold enough."""
        loc = self.n_wh + store.idx
        st = self.stock[loc].get(sku)
        if st is None or st[0] < q:
            return False
        st[0] -= q
        self.dirty[loc].add(sku)
        target, rp = self.limits[loc][sku]
        if st[0] + st[2] <= rp:
            self._transfer(store.warehouse, loc, sku, target - st[0] - st[2], d)
        return True

    def give_back(self, store: Store, sku: int, q: int) -> None:
        """A POS return puts the goods back on the shelf."""
        loc = self.n_wh + store.idx
        st = self.stock[loc].get(sku)
        if st is not None:
            st[0] += q
            self.dirty[loc].add(sku)

    def _transfer(self, wh: int, loc: int, sku: int, q: int, d: int) -> None:
        src = self.stock[wh].get(sku)
        if src is None or q <= 0:
            return
        take = min(q, max(0, src[0] - src[1]))
        if take <= 0:
            return
        src[0] -= take
        self.stock[loc][sku][2] += take
        self.dirty[wh].add(sku)
        self.dirty[loc].add(sku)
        self._arrive(d + 2, loc, sku, take)
        self._reorder(wh, sku, d)

    def _reorder(self, wh: int, sku: int, d: int) -> None:
        st = self.stock[wh][sku]
        target, rp = self.limits[wh][sku]
        avail = st[0] - st[1] + st[2]
        if avail < rp and not (
            self.w.skus[sku].disc_day is not None and self.w.skus[sku].disc_day <= d
        ):
            q = target - avail
            st[2] += q
            self._arrive(d + self.rng.randint(4, 7), wh, sku, q)

    def event(self, day: int, op: str, wh: int, sku: int, q: int) -> None:
        """An online order's effect on its warehouse, applied at the end of `day`."""
        if day < self.days:
            self.events.setdefault(day, []).append((op, wh, sku, q))

    def end_day(self, d: int) -> None:
        for op, wh, sku, q in self.events.pop(d, []):
            st = self.stock[wh].get(sku)
            if st is None:
                continue
            if op == "reserve":
                st[1] += q
            elif op == "ship":
                st[1] = max(0, st[1] - q)
                st[0] = max(0, st[0] - q)
            elif op == "release":
                st[1] = max(0, st[1] - q)
            elif op == "restock":
                st[0] += q
            self.dirty[wh].add(sku)
            self._reorder(wh, sku, d)
        for sku in self.cost_changes.get(d, []):
            self.cost[sku] = yuan(self.w.skus[sku].price_on(d)[1])
            for loc in self.sku_locs[sku]:
                self.dirty[loc].add(sku)

    # -- snapshot ----------------------------------------------------------------------------
    def present(self, loc: int, d: int) -> bool:
        if loc < self.n_wh:
            return True
        s = self.w.stores[loc - self.n_wh]
        return (
            bool(self.carried[loc])
            and s.open_day - 2 <= d
            and (s.close_day is None or d < s.close_day)
        )

    def snapshot(self, d: int, iso: str) -> list[str]:
        skus = self.w.skus
        out: list[str] = []
        for loc in range(len(self.codes)):
            rows = self.rows[loc]
            if self.dirty[loc]:
                code, typ = self.codes[loc], self.types[loc]
                stock = self.stock[loc]
                for k in self.dirty[loc]:
                    st = stock[k]
                    rows[k] = (
                        f"{code},{typ},{skus[k].sku_id},{st[0]},{st[1]},{st[2]},{self.cost[k]}"
                    )
                self.dirty[loc].clear()
            if not self.present(loc, d):
                continue
            prefix = iso + ","
            out.extend([prefix + rows[k] for k in self.carried[loc]])
        return out
