"""Synthetic landing-zone generator for the lakehouse suite, with ground truth.

`generate` writes every source's daily deliveries exactly as shared/source-systems.md
describes them (dirt included) plus `_truth/` files that say what the dirt is and who the
people behind the identifiers are. Standard library only; byte-identical for a seed.
"""

from __future__ import annotations

import datetime
import gc
import math
import pathlib

__all__ = ["GenerateArgumentError", "generate"]


class GenerateArgumentError(ValueError):
    """An argument `generate` refuses before it writes anything (the caller's to fix)."""


def generate(
    out: str | pathlib.Path,
    scale: float = 1.0,
    days: int = 90,
    start: datetime.date = datetime.date(2026, 3, 1),
    seed: int = 42,
) -> dict:
    """Writes the landing zone under `out`; returns a summary dict
    {dataset: {"files": n, "data_lines": n}, ...}."""
    from .engine import Engine

    if (
        isinstance(scale, bool)
        or not isinstance(scale, (int, float))
        or not math.isfinite(scale)
        or scale <= 0
    ):
        raise GenerateArgumentError(f"scale must be a positive number, got {scale!r}")
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise GenerateArgumentError(f"days must be an integer >= 1, got {days!r}")
    if not isinstance(start, datetime.date) or isinstance(start, datetime.datetime):
        raise GenerateArgumentError(f"start must be a datetime.date, got {start!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise GenerateArgumentError(f"seed must be an integer, got {seed!r}")
    root = pathlib.Path(out)
    if root.exists():
        if not root.is_dir():
            raise GenerateArgumentError(f"output path {root} exists and is not a directory")
        if any(root.iterdir()):
            raise GenerateArgumentError(
                f"output directory {root} is not empty; refusing to overwrite"
            )
    root.mkdir(parents=True, exist_ok=True)
    # millions of long-lived small objects: cyclic GC passes only cost time here
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return Engine(root, float(scale), days, start, seed).run()
    finally:
        if was_enabled:
            gc.enable()
