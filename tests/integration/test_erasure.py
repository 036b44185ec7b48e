"""`lakehouse erase` on the generated warehouse after gold: one real person (a phone, orders, a
CRM record) is erased by phone; no file under the warehouse holds their identifiers afterwards
(parquet read through Spark, every other file as bytes), everyone else's rows are still there,
the erasure log holds no value, a dry run changes nothing, and asking again finds nothing left.

Runs last among the modules sharing `generated_pipeline`: it rewrites that warehouse."""

from __future__ import annotations

import csv
import os
import re
from collections import defaultdict
from functools import reduce
from pathlib import Path

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.cli import main
from lakehouse.gold.people import audience
from lakehouse.maintenance import warehouse_tables
from lakehouse.orchestrate import run_days
from lakehouse.privacy import ERASURE_LOG, Target, erase

pytestmark = pytest.mark.integration

SALT = "integration-test-salt-0123456789"
ORDER_KEY = {"TMALL": "TMALL:{id}", "JD": "JD:{id}", "MALL": "MALL:{id}", "POS": "POS:{store}:{id}"}


def _truth(landing: Path, name: str) -> list[dict[str, str]]:
    with (landing / "_truth" / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _pick_person(p, spark) -> dict:
    """A person with a phone (not shared), an e-mail, a CRM member id and the most orders, whose
    One ID component holds only their own identifiers and who is in the SMS export."""
    identifiers = _truth(p.landing, "identifiers.csv")
    by_person: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    owner: dict[tuple[str, str], set[str]] = defaultdict(set)
    for t in identifiers:
        value = t["value"].lower() if t["identifier_type"] == "email" else t["value"]
        by_person[t["person_id"]][t["identifier_type"]].add(value)
        owner[(t["identifier_type"], value)].add(t["person_id"])
    shared = {t["value"] for t in _truth(p.landing, "shared_identifiers.csv")}
    orders = defaultdict(list)
    for o in _truth(p.landing, "orders.csv"):
        if o["person_id"]:
            orders[o["person_id"]].append(o)
    identity_map = p.tables.read("oneid", "identity_map")
    portrait = p.tables.read("gold", "member_portrait")
    reachable = {r.one_id for r in portrait.where("has_phone AND NOT marketing_opt_out").collect()}
    candidates = sorted(
        (
            pid
            for pid, ids in by_person.items()
            if len(ids["phone"]) == 1
            and not ids["phone"] & shared
            and ids["email"]
            and ids["member_id"]
            and len(orders[pid]) >= 2
        ),
        key=lambda pid: (-len(orders[pid]), pid),
    )
    for pid in candidates:
        phone = next(iter(by_person[pid]["phone"]))
        row = identity_map.where(
            (F.col("identifier_type") == "phone") & (F.col("identifier_value") == phone)
        ).first()
        if row is None or row.one_id not in reachable:
            continue
        component = [
            (r.identifier_type, r.identifier_value)
            for r in identity_map.where(F.col("one_id") == row.one_id).collect()
        ]
        if all(owner.get(i) == {pid} for i in component):
            return {
                "person_id": pid,
                "phone": phone,
                "one_id": row.one_id,
                "component": component,
                "truth": {t: sorted(v) for t, v in by_person[pid].items()},
                "order_keys": {
                    ORDER_KEY[o["channel"]].format(id=o["order_id"], store=o["store_code"])
                    for o in orders[pid]
                },
            }
    raise AssertionError("the generated data holds no person to erase")


def _counts(spark, p) -> dict[str, int]:
    names = warehouse_tables(spark, p.settings.warehouse)
    parts = [
        p.tables.read(layer, name).select(F.lit(f"{layer}.{name}").alias("t"))
        for layer, name in names
    ]
    rows = reduce(DataFrame.unionByName, parts).groupBy("t").count().collect()
    found = {r.t: r["count"] for r in rows}
    return {f"{la}.{na}": found.get(f"{la}.{na}", 0) for la, na in names}


def _versions(p, spark) -> dict[str, int | None]:
    return {
        f"{la}.{na}": p.tables.version(la, na)
        for la, na in warehouse_tables(spark, p.settings.warehouse)
    }


def _file_state(root: str) -> dict[str, tuple[int, int]]:
    return {
        str(Path(d) / f): ((s := (Path(d) / f).stat()).st_size, s.st_mtime_ns)
        for d, _, files in os.walk(root)
        for f in files
    }


@pytest.fixture(scope="module")
def erased(generated_pipeline, spark):
    p = generated_pipeline
    mp = pytest.MonkeyPatch()
    mp.setenv("LAKEHOUSE_PII_SALT", SALT)
    mp.setenv("LAKEHOUSE_WAREHOUSE", p.settings.warehouse)
    mp.setenv("LAKEHOUSE_LANDING", str(p.landing))
    summary = run_days(p.settings, spark, p.days[-1:], ("gold",), resume=True)
    assert summary.ok, summary.describe()
    # A file outside the tables that holds people: an SMS export under the warehouse.
    audience.create(spark, p.tables, p.settings, "erasure_all", "true")
    audience.export(spark, p.tables, p.settings, "erasure_all", "SMS")
    person = _pick_person(p, spark)
    before = {
        "counts": _counts(spark, p),
        "orders": {r.order_key for r in p.tables.read("silver", "orders").collect()},
        "members": {r.member_id for r in p.tables.read("silver", "members").collect()},
        "portraits": {r.one_id: r for r in p.tables.read("gold", "member_portrait").collect()},
        "identity_map": {
            tuple(r)
            for r in p.tables.read("oneid", "identity_map")
            .select("identifier_type", "identifier_value", "one_id")
            .collect()
        },
    }
    target = Target(identifiers=(("phone", person["phone"]),))

    versions, files = _versions(p, spark), _file_state(p.settings.warehouse)
    dry = erase(spark, p.settings, target, dry_run=True)
    assert _versions(p, spark) == versions and _file_state(p.settings.warehouse) == files

    result = erase(spark, p.settings, target, reason="PIPL test request")
    yield p, person, before, dry, result
    mp.undo()


def test_the_person_was_found_everywhere_and_the_dry_run_said_so(erased):
    _, person, _, dry, result = erased
    assert result.person.one_id == person["one_id"]
    assert set(result.person.identifiers) == set(person["component"])
    assert dry.rows == result.rows and dry.request_id is None
    for table in (
        "bronze.crm_members",
        "silver.members",
        "silver.orders",
        "silver.order_lines",
        "silver.identities",
        "oneid.identity_map",
        "oneid.golden_members",
        "gold.member_portrait",
        "gold.member_tags",
        "gold.audience_members",
    ):
        assert result.rows.get(table, 0) > 0, table
    assert any(t.startswith("bronze.") and t != "bronze.crm_members" for t in result.rows)
    assert any(f.startswith("_exports/erasure_all/SMS/") for f in result.files_rewritten)
    assert result.leftovers == [] and result.exit_code == 0
    assert set(result.rewritten) >= set(result.rows)


def _values(person: dict) -> list[str]:
    values = {v for vs in person["truth"].values() for v in vs}
    values |= {v for _, v in person["component"]}
    return sorted(v.lower() for v in values if len(v) >= 6)


def _parquet_hits(spark, files: list[str], values: list[str]) -> set[str]:
    """Files among these parquet files (one table's, or one checkpoint folder's) whose rows hold
    a value: every row as JSON text, lower case, also without blanks and dashes."""
    df = spark.read.option("mergeSchema", "true").parquet(*files)
    text = F.lower(F.to_json(F.struct(*[F.col(f"`{c}`") for c in df.columns])))
    squeezed = F.regexp_replace(text, r"[\s-]", "")
    hit = reduce(
        lambda a, b: a | b, [(F.instr(text, v) > 0) | (F.instr(squeezed, v) > 0) for v in values]
    )
    return {r[0] for r in df.where(hit).select(F.col("_metadata.file_path")).distinct().collect()}


def test_no_file_under_the_warehouse_holds_the_persons_identifiers(erased, spark):
    p, person, *_ = erased
    values = _values(person)
    assert person["phone"] in values and any("@" in v for v in values)
    root = Path(p.settings.warehouse)
    log_dir = root / "ops" / "erasure_log"
    parquet: dict[Path, list[str]] = defaultdict(list)
    hits: list[str] = []
    scanned = 0
    for d, _, files in os.walk(root):
        for f in files:
            path = Path(d) / f
            scanned += 1
            if f.endswith(".parquet") and not f.startswith("."):
                # one group per table (data of every version) and per _delta_log folder
                table = next(
                    (a for a in (path.parent, *path.parents) if (a / "_delta_log").is_dir()), None
                )
                key = path.parent if "_delta_log" in path.parts else table or path.parent
                parquet[key].append(str(path))
                continue
            raw = path.read_bytes()
            text = raw.decode("utf-8", errors="replace").lower()
            squeezed = re.sub(r"[\s-]", "", text)
            found = [v for v in values if v in text or v in squeezed]
            if person["one_id"].lower() in text and log_dir not in path.parents:
                found.append(person["one_id"])
            if found:
                hits.append(f"{path}: {found}")
    for group in parquet.values():
        hits += sorted(_parquet_hits(spark, group, values))
    assert scanned > 500 and len(parquet) > 20
    assert hits == [], hits[:20]


def test_everyone_else_is_still_there(erased, spark):
    p, person, before, _, result = erased
    after = _counts(spark, p)
    log = ".".join(ERASURE_LOG)
    assert after.pop(log) == 1 and log not in before["counts"]
    assert after == {t: n - result.rows.get(t, 0) for t, n in before["counts"].items()}

    orders = {r.order_key for r in p.tables.read("silver", "orders").collect()}
    removed = before["orders"] - orders
    assert removed and removed <= person["order_keys"], removed - person["order_keys"]
    assert not orders - before["orders"]
    members = {r.member_id for r in p.tables.read("silver", "members").collect()}
    assert before["members"] - members == set(person["truth"]["member_id"])

    portraits = {r.one_id: r for r in p.tables.read("gold", "member_portrait").collect()}
    assert set(before["portraits"]) - set(portraits) == {person["one_id"]}
    assert all(portraits[k] == row for k, row in before["portraits"].items() if k in portraits)
    identity_map = {
        tuple(r)
        for r in p.tables.read("oneid", "identity_map")
        .select("identifier_type", "identifier_value", "one_id")
        .collect()
    }
    assert before["identity_map"] - identity_map == {
        (*i, person["one_id"]) for i in person["component"]
    }
    assert identity_map <= before["identity_map"]


def test_the_erasure_log_holds_one_row_and_no_value(erased):
    p, person, _, _, result = erased
    rows = p.tables.read(*ERASURE_LOG).collect()
    assert len(rows) == 1
    row = rows[0]
    assert row.request_id == result.request_id and row.one_id == person["one_id"]
    assert row.reason == "PIPL test request" and row.verified
    assert [i.identifier_type for i in row.requested] == ["phone"]
    assert dict(row.rows_deleted) == result.rows
    text = str(row.asDict(recursive=True)).lower()
    for value in _values(person):
        assert value not in text


def test_erasing_again_finds_nothing_left(erased, capsys):
    _, person, *_ = erased
    assert main(["erase", "--identifier", f"phone:+86 {person['phone']}"]) == 0
    out = capsys.readouterr().out
    assert "Nothing left to erase" in out and "request " in out
    assert main(["erase", "--identifier", "mobile:13800138000"]) == 2
    assert "unknown identifier type 'mobile'" in capsys.readouterr().err
