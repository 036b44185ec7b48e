"""The generate() entry point: arguments, output directory rules, summary shape."""

from __future__ import annotations

import datetime as dt
import pathlib

import pytest

from lakehouse.datagen import generate
from lakehouse.datagen.records import DATASETS

from .test_support import small


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scale": 0},
        {"scale": -1.0},
        {"scale": float("nan")},
        {"scale": "1"},
        {"days": 0},
        {"days": -3},
        {"days": 1.5},
        {"start": "2026-03-01"},
        {"start": dt.datetime(2026, 3, 1)},
        {"seed": "x"},
    ],
)
def test_bad_arguments_raise_value_error(tmp_path: pathlib.Path, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_refuses_non_empty_directory(tmp_path: pathlib.Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        generate(tmp_path, scale=0.02, days=1)


def test_refuses_a_file_as_output(tmp_path: pathlib.Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(ValueError):
        generate(f, scale=0.02, days=1)


def test_writes_into_existing_empty_directory(tmp_path: pathlib.Path) -> None:
    summary = generate(str(tmp_path), scale=0.02, days=1)
    assert (tmp_path / "_truth" / "files.csv").exists()
    assert set(summary) == set(DATASETS)


def test_summary_counts_files_and_lines() -> None:
    _, summary = small()
    assert set(summary) == set(DATASETS)
    for ds, s in summary.items():
        assert set(s) == {"files", "data_lines"}
        assert s["files"] >= 5, ds
    assert summary["pos_sales"]["data_lines"] > 0
    assert summary["inventory"]["data_lines"] > summary["stores"]["data_lines"]
