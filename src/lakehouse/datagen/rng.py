"""Seeded randomness helpers.

Each concern draws from its own `random.Random` seeded by a string, so a change in how one
dataset is generated does not reshuffle every other dataset, and no global state is used.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


def sub_rng(seed: int, name: str) -> random.Random:
    """An independent stream for one concern; str seeds hash with SHA-512 (stable)."""
    return random.Random(f"lakehouse-datagen:{seed}:{name}")


def poisson(rng: random.Random, lam: float) -> int:
    """Poisson draw; normal approximation for large means keeps it O(1)."""
    if lam <= 0:
        return 0
    if lam > 60:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit = math.exp(-lam)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


class Picker(Generic[T]):
    """Weighted choice with precomputed cumulative weights (bisect, O(log n))."""

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        self.items = list(items)
        self.cum = list(itertools.accumulate(weights))
        self.total = self.cum[-1] if self.cum else 0.0

    def __len__(self) -> int:
        return len(self.items)

    def pick(self, rng: random.Random) -> T:
        return self.items[bisect.bisect_right(self.cum, rng.random() * self.total)]


def chance(rng: random.Random, p: float) -> bool:
    return rng.random() < p


def pick_weighted(rng: random.Random, options: Sequence[tuple[T, float]]) -> T:
    """Choose from a short (value, weight) table."""
    r = rng.random() * sum(w for _, w in options)
    for value, w in options:
        r -= w
        if r < 0:
            return value
    return options[-1][0]
