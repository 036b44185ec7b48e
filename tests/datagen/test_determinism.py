"""Same arguments -> byte-identical landing zone and truth; another seed -> other data."""

from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys

import pytest

from lakehouse.datagen import engine, generate

from .test_support import landing_files, line_problem, read_truth, record, split_file


def digest(root: pathlib.Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes(tmp_path: pathlib.Path) -> None:
    generate(tmp_path / "a", scale=0.02, days=3, seed=11)
    # a second process with another hash seed: no dependence on set/dict hash order
    src = pathlib.Path(__file__).resolve().parents[2] / "src"
    code = (
        "import sys; from lakehouse.datagen import generate; "
        "generate(sys.argv[1], scale=0.02, days=3, seed=11)"
    )
    env = dict(os.environ, PYTHONPATH=str(src), PYTHONHASHSEED="12345")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "b")], check=True, env=env)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_other_seed_other_data(tmp_path: pathlib.Path) -> None:
    generate(tmp_path / "a", scale=0.02, days=3, seed=1)
    generate(tmp_path / "b", scale=0.02, days=3, seed=2)
    a, b = digest(tmp_path / "a"), digest(tmp_path / "b")
    shared = set(a) & set(b)
    assert sum(a[k] != b[k] for k in shared) > len(shared) // 2


@pytest.mark.parametrize("seed", [7, 42, 1])
def test_members_leaving_the_crm_change_no_file_but_their_own(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """Records leaving the CRM change the CRM and touches files and the files that carry a sale
    of a record that left, nothing else, and the dirt of no other dataset. Every draw stays as
    it was and the dirt's stream goes on after those files as if no one had left (a dropped
    touch once changed the dirt of every later file, at seed 7; a dropped coupon order every
    later order, at seed 42; a closed record's ticket lost its discount, at seed 1)."""
    generate(tmp_path / "left", scale=0.3, days=30, seed=seed)
    monkeypatch.setattr(engine, "draw_departures", lambda *args: None)
    generate(tmp_path / "stayed", scale=0.3, days=30, seed=seed)
    departed = {r["member_id"] for r in read_truth(tmp_path / "left", "crm_departures.csv")}
    assert departed
    *_, (_, last_dt, _, last) = landing_files(tmp_path / "stayed", "crm_members")
    assert last.name == f"crm_members_{last_dt.replace('-', '')}.csv"
    header, lines = split_file("crm_members", last.read_bytes())
    crm = [
        record("crm_members", raw, header)
        for raw in lines
        if line_problem("crm_members", raw, len(header or ())) is None
    ]
    names = departed | {r["card_no"] for r in crm if r["member_id"] in departed}
    assert len(names) == 2 * len(departed)
    left, stayed = digest(tmp_path / "left"), digest(tmp_path / "stayed")
    assert set(left) == set(stayed) | {"_truth/crm_departures.csv"}
    changed = [f for f in stayed if left[f] != stayed[f] and not f.startswith("_truth/")]
    assert changed
    own = ("crm_members", "campaign_touches")
    for f in changed:
        if f.startswith("crm_members/") or "/campaign_touches_" in f:
            continue
        data = (tmp_path / "stayed" / f).read_bytes()
        assert any(name.encode() in data for name in names), f
    for truth in ("bad_records.csv", "late_records.csv"):
        rows = [
            [r for r in read_truth(tmp_path / zone, truth) if r["dataset"] not in own]
            for zone in ("left", "stayed")
        ]
        assert rows[0] == rows[1], truth
