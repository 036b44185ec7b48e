"""The One ID job over three hand-made days: grow, merge, split by a guard, rerun, and the gate."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pyspark.sql import functions as F

from lakehouse.oneid.graph import with_node_id
from lakehouse.oneid.job import ComponentTooLarge, golden_scope
from lakehouse.registry import build_registry
from lakehouse.runtime import run_job
from lakehouse.tables import Tables
from tests.oneid.test_golden import MEMBERS_DDL, ORDERS_DDL, TOUCHES_DDL

DAY1, DAY2, DAY3, DAY4 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)

RECORDS = {
    DAY1: [
        ("crm_members", "M1", [("member_id", "M1"), ("phone", "13911110001")]),
        ("crm_members", "M2", [("member_id", "M2"), ("phone", "13911110002")]),
        ("pos_sales", "T1", [("card_no", "886001"), ("phone", "13911110003")]),
        ("tmall_orders", "X1", [("tmall_nick", "lonely")]),
    ],
    DAY2: [
        # grows M1's person by an e-mail; then a record ties M2 to M1's phone: a merge
        ("mall_orders", "O1", [("member_id", "M1"), ("email", "m1@example.cn")]),
        ("mall_orders", "O2", [("member_id", "M2"), ("phone", "13911110001")]),
    ],
    DAY3: [
        # M1's phone is keyed in with three more cards: a shared number, which splits them again
        *[
            ("pos_sales", f"T{i}", [("card_no", f"88600{i}"), ("phone", "13911110001")])
            for i in (7, 8, 9)
        ],
    ],
}


def _write_day(spark, tables: Tables, day: date, records=None, first: date | None = None) -> None:
    """Append the day's identity rows as silver.identities would hold them; `first`: the
    delivery that first brought them (a record delivered again unchanged)."""
    rows = [
        (source, key, typ, value, datetime(day.year, day.month, day.day, 9), day, first or day)
        for source, key, ids in (records or RECORDS[day])
        for typ, value in ids
    ]
    df = spark.createDataFrame(
        rows,
        "source string, record_key string, identifier_type string, identifier_value string, "
        "seen timestamp, delivery_date date, first_delivery_date date",
    ).select(
        "source",
        "record_key",
        "identifier_type",
        "identifier_value",
        F.col("seen").alias("first_seen"),
        F.col("seen").alias("last_seen"),
        "delivery_date",
        "first_delivery_date",
    )
    tables.append(df, "silver", "identities")


def _run(settings, spark, tables, day):
    """oneid.link as the runner runs it: ops.run_log says which days it succeeded on."""
    return run_job(build_registry(settings)["oneid.link"], settings, spark, day)


def _map(tables: Tables) -> dict[str, str]:
    return {
        f"{r.identifier_type}:{r.identifier_value}": r.one_id
        for r in tables.read("oneid", "identity_map").collect()
    }


def _history(tables: Tables) -> list[tuple]:
    return sorted(
        (r.run_date, r.old_one_id, r.new_one_id, r.event, r.nodes)
        for r in tables.read("oneid", "one_id_history").collect()
    )


@pytest.fixture(scope="module")
def three_days(spark, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("oneid_job")
    mp.setenv("LAKEHOUSE_LANDING", str(root / "landing"))
    mp.setenv("LAKEHOUSE_WAREHOUSE", str(root / "warehouse"))
    from lakehouse.config import load_settings

    settings = load_settings("local")
    tables = Tables(spark, settings.warehouse)
    maps, histories, commits = {}, {}, {}
    for day in (DAY1, DAY2, DAY3):
        _write_day(spark, tables, day)
        _run(settings, spark, tables, day)
        maps[day], histories[day] = _map(tables), _history(tables)
        commits[day] = tables.version("oneid", "identity_map")
        commits[(day, "updated_on")] = {
            f"{r.identifier_type}:{r.identifier_value}": r.updated_on
            for r in tables.read("oneid", "identity_map").collect()
        }
    # The CRM snapshot delivers M2 again, unchanged: nothing to link, only last_seen moves.
    _write_day(spark, tables, DAY4, [RECORDS[DAY1][1]], first=DAY1)
    redelivered = _run(settings, spark, tables, DAY4)
    maps[DAY4], histories[DAY4] = _map(tables), _history(tables)
    yield settings, tables, maps, histories, redelivered, commits
    mp.undo()


def test_day_one_links_each_record(three_days):
    _, _, maps, histories, *_ = three_days
    day1 = maps[DAY1]
    assert day1["member_id:M1"] == day1["phone:13911110001"]
    assert day1["member_id:M2"] == day1["phone:13911110002"]
    assert day1["card_no:886001"] == day1["phone:13911110003"]
    assert len(set(day1.values())) == 4  # incl. the lone tmall nick
    assert histories[DAY1] == []


def test_a_growing_person_keeps_the_id_and_a_merge_keeps_the_larger(three_days):
    _, _, maps, histories, *_ = three_days
    day1, day2 = maps[DAY1], maps[DAY2]
    m1, m2 = day1["member_id:M1"], day1["member_id:M2"]
    # M1's component (M1, phone, e-mail) is larger than M2's (M2, phone): it survives
    for key in ("member_id:M1", "email:m1@example.cn", "member_id:M2", "phone:13911110002"):
        assert day2[key] == m1, key
    assert histories[DAY2] == [(DAY2, m2, m1, "MERGE", 2)]
    # untouched people keep their ids
    assert day2["card_no:886001"] == day1["card_no:886001"]
    assert day2["tmall_nick:lonely"] == day1["tmall_nick:lonely"]


def test_a_value_found_shared_links_nothing_and_splits_its_component(three_days):
    _, tables, maps, histories, _, commits = three_days
    day2, day3 = maps[DAY2], maps[DAY3]
    assert "phone:13911110001" not in day3
    suppressed = tables.read("oneid", "suppressed_identifiers").collect()
    assert [(r.identifier_value, r.reason, r.degree, r.neighbour_type) for r in suppressed] == [
        ("13911110001", "shared", 3, "card_no")
    ]
    pieces = {day3["member_id:M1"], day3["member_id:M2"]}
    assert len(pieces) == 2 and day2["member_id:M1"] in pieces
    assert day3["email:m1@example.cn"] == day3["member_id:M1"]
    assert day3["phone:13911110002"] == day3["member_id:M2"]
    new_piece = (pieces - {day2["member_id:M1"]}).pop()
    assert (DAY3, day2["member_id:M1"], new_piece, "SPLIT", 2) in histories[DAY3]
    # the cards keyed in with the shared phone stand alone
    cards = {day3[f"card_no:88600{i}"] for i in (7, 8, 9)}
    assert len(cards) == 3
    # the shared phone leaves the map in the commit that splits its component (a crash between
    # a delete and the upsert, two commits before, left the glued id for good)
    assert commits[DAY3] == commits[DAY2] + 1
    # nothing links through the shared value
    links = tables.read("oneid", "links")
    assert (
        links.where(
            (F.col("hub_value") == "13911110001") | (F.col("other_value") == "13911110001")
        ).count()
        == 0
    )


def test_a_one_id_that_loses_identifiers_is_marked_updated_for_its_golden_record(three_days):
    """The part of a split that keeps its one_id lost the other part and the shared phone: the
    golden job (scoped by updated_on) must rebuild it, or its record keeps the shared phone and
    the other person's values (before: its updated_on stayed DAY2, and it was never rebuilt)."""
    _, _, maps, _, _, commits = three_days
    updated, old_id = commits[(DAY3, "updated_on")], maps[DAY2]["member_id:M1"]
    pieces = {
        key: maps[DAY3][key]
        for key in ("member_id:M1", "email:m1@example.cn", "member_id:M2", "phone:13911110002")
    }
    kept = [key for key, one_id in pieces.items() if one_id == old_id]
    assert len(kept) == 2  # one piece kept the id, and lost the other piece and the phone
    assert {key: updated[key] for key in pieces} == dict.fromkeys(pieces, DAY3)
    # people the day did not change keep their day
    assert updated["card_no:886001"] == updated["tmall_nick:lonely"] == DAY1
    assert commits[(DAY2, "updated_on")]["member_id:M1"] == DAY2  # it grew by M2 on DAY2


def test_rerunning_a_day_changes_nothing(three_days, spark):
    settings, tables, maps, histories, *_ = three_days
    links_before = sorted(map(tuple, tables.read("oneid", "links").collect()))
    _run(settings, spark, tables, DAY3)
    assert _map(tables) == maps[DAY3]
    assert _history(tables) == histories[DAY3]
    assert sorted(map(tuple, tables.read("oneid", "links").collect())) == links_before


def _people(identity_map: dict[str, str]) -> set[frozenset[str]]:
    """Who is linked with whom, whatever the ids are called."""
    by_id: dict[str, set[str]] = {}
    for identifier, one_id in identity_map.items():
        by_id.setdefault(one_id, set()).add(identifier)
    return {frozenset(group) for group in by_id.values()}


def test_a_day_whose_link_failed_is_caught_up_by_the_next(three_days, spark, tmp_path, monkeypatch):
    """Day 1's link failed and was not rerun. Before: day 2 linked only the pairs first
    delivered on day 2, and day 1's people (M2's phone, the card, the lone nick) had no one_id
    until a later record happened to carry one of their identifiers."""
    _, _, maps, *_ = three_days
    monkeypatch.setenv("LAKEHOUSE_LANDING", str(tmp_path / "landing"))
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", str(tmp_path / "warehouse"))
    from lakehouse.config import load_settings

    settings = load_settings("local")
    tables = Tables(spark, settings.warehouse)
    _write_day(spark, tables, DAY1)
    _write_day(spark, tables, DAY2)
    failing = settings.model_copy(
        update={"oneid": settings.oneid.model_copy(update={"max_component_size": 1})}
    )
    with pytest.raises(ComponentTooLarge):
        _run(failing, spark, tables, DAY1)
    day2 = _run(settings, spark, tables, DAY2)
    assert _people(_map(tables)) == _people(maps[DAY2])
    assert day2.details["new_pairs_since"] is None  # no earlier day succeeded
    assert {r.updated_on for r in tables.read("oneid", "identity_map").collect()} == {DAY2}


def test_the_golden_scope_catches_up_on_the_days_since_the_last_golden_run(spark):
    """Person A's identifier was delivered on day 1, person B's one_id changed on day 2, C's on
    day 3, D was last touched before day 1. Before: the golden job took the run date's changes
    only, so a day whose golden run failed kept its people's records stale for good."""
    identities = spark.createDataFrame(
        [("phone", "13911110001", DAY1), ("phone", "13911110004", date(2026, 2, 1))],
        "identifier_type string, identifier_value string, delivery_date date",
    )
    nodes = {r.identifier_value: r.node_id for r in with_node_id(identities).collect()}
    identity_map = spark.createDataFrame(
        [
            ("phone", "13911110001", nodes["13911110001"], "A", date(2026, 2, 1)),
            ("member_id", "MB", 2, "B", DAY2),
            ("member_id", "MC", 3, "C", DAY3),
            ("phone", "13911110004", nodes["13911110004"], "D", date(2026, 2, 1)),
        ],
        "identifier_type string, identifier_value string, node_id long, one_id string, "
        "updated_on date",
    )

    def scope(since: date | None, run_date: date) -> set[str]:
        return {r.one_id for r in golden_scope(identity_map, identities, since, run_date).collect()}

    assert scope(DAY2, DAY3) == {"C"}  # the day after a successful one: its own changes
    assert scope(date(2026, 2, 28), DAY3) == {"A", "B", "C"}  # days 1 and 2 failed
    assert scope(DAY1, DAY2) == {"B"}  # a rerun of day 2 does not see day 3
    assert scope(None, DAY1) == {"A", "D"}  # the first run ever: everything up to its day


def test_the_golden_scope_takes_in_a_person_whose_member_record_left_the_crm(spark):
    """M1 (person A) left the CRM on day 2, M3 (C) on day 1; B's M2 is still in it. A member who
    leaves is delivered no more, so before, nothing put A in day 2's scope and A's golden record
    went on listing M1 as a membership."""
    identities = spark.createDataFrame(
        [
            ("crm_members", "M1", "member_id", "M1", DAY1),
            ("crm_members", "M2", "member_id", "M2", DAY1),
            ("crm_members", "M3", "member_id", "M3", date(2026, 2, 1)),
        ],
        "source string, record_key string, identifier_type string, identifier_value string, "
        "delivery_date date",
    )
    nodes = {r.identifier_value: r.node_id for r in with_node_id(identities).collect()}
    identity_map = spark.createDataFrame(
        [(t, v, nodes[v], one_id, date(2026, 2, 1)) for t, v, one_id in
         [("member_id", "M1", "A"), ("member_id", "M2", "B"), ("member_id", "M3", "C")]],
        "identifier_type string, identifier_value string, node_id long, one_id string, "
        "updated_on date",
    )  # fmt: skip
    members = spark.createDataFrame(
        [("M1", DAY2), ("M2", None), ("M3", DAY1)], "member_id string, left_crm_on date"
    )

    def scope(since: date | None, run_date: date, with_members: bool = True) -> set[str]:
        chosen = golden_scope(
            identity_map, identities, since, run_date, members if with_members else None
        )
        return {r.one_id for r in chosen.collect()}

    assert scope(DAY1, DAY2) == {"A"}
    assert scope(DAY1, DAY2, with_members=False) == set()  # the scope before
    assert scope(date(2026, 2, 28), DAY2) == {"A", "B", "C"}  # day 1: delivered, C left
    assert scope(DAY2, DAY3) == set()


def test_the_golden_job_rebuilds_a_person_whose_member_record_left_the_crm(
    spark, tmp_path, monkeypatch
):
    """Day 2's CRM snapshot no longer lists M1 (silver.members marks it) and delivers M2 again.
    M1's record is delivered no more, so only the departure can bring its person into the golden
    job's scope: the job, not only golden_scope and golden_members, must pass silver.members."""
    monkeypatch.setenv("LAKEHOUSE_LANDING", str(tmp_path / "landing"))
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", str(tmp_path / "warehouse"))
    from lakehouse.config import load_settings

    settings = load_settings("local")
    tables = Tables(spark, settings.warehouse)
    golden_job = build_registry(settings)["oneid.golden"]
    records = {
        "M1": ("crm_members", "M1", [("member_id", "M1"), ("phone", "13911110001")]),
        "M2": ("crm_members", "M2", [("member_id", "M2"), ("phone", "13911110002")]),
    }
    registered = datetime(2025, 1, 1, 2)

    def members(day: date, left: dict[str, date]) -> None:
        rows = [
            (m, None, None, None, None, None, None, "STORE", None, registered, "GOLD", 10, None,
             False, DAY1 if m in left else day, left.get(m))
            for m in ("M1", "M2")
        ]  # fmt: skip
        frame = spark.createDataFrame(rows, f"{MEMBERS_DDL}, left_crm_on date")
        frame.write.format("delta").mode("overwrite").save(tables.path("silver", "members"))

    def golden() -> dict[str, tuple]:
        one_ids = _map(tables)
        rows = {r.one_id: r for r in tables.read("oneid", "golden_members").collect()}
        return {
            m: (rows[one_ids[f"member_id:{m}"]].member_ids, rows[one_ids[f"member_id:{m}"]].level)
            for m in ("M1", "M2")
        }

    for table, ddl in (("orders", ORDERS_DDL), ("campaign_touches", TOUCHES_DDL)):
        spark.createDataFrame([], ddl).write.format("delta").save(tables.path("silver", table))
    _write_day(spark, tables, DAY1, list(records.values()))
    members(DAY1, {})
    _run(settings, spark, tables, DAY1)
    run_job(golden_job, settings, spark, DAY1)
    assert golden() == {"M1": (["M1"], "GOLD"), "M2": (["M2"], "GOLD")}

    _write_day(spark, tables, DAY2, [records["M2"]], first=DAY1)
    members(DAY2, {"M1": DAY2})
    _run(settings, spark, tables, DAY2)
    run_job(golden_job, settings, spark, DAY2)
    assert golden() == {"M1": ([], None), "M2": (["M2"], "GOLD")}


def test_a_giant_component_fails_the_run_and_publishes_nothing(spark, tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_LANDING", str(tmp_path / "landing"))
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", str(tmp_path / "warehouse"))
    from lakehouse.config import load_settings

    settings = load_settings("local")
    settings = settings.model_copy(
        update={"oneid": settings.oneid.model_copy(update={"max_component_size": 2})}
    )
    tables = Tables(spark, settings.warehouse)
    _write_day(spark, tables, DAY1)
    _write_day(spark, tables, DAY2)
    with pytest.raises(ComponentTooLarge, match="max_component_size 2"):
        _run(settings, spark, tables, DAY2)
    assert not tables.exists("oneid", "identity_map")
    assert not tables.exists("oneid", "links")


def test_an_unchanged_record_delivered_again_recomputes_nothing(three_days):
    _, tables, maps, histories, redelivered, _ = three_days
    assert redelivered.details["touched_identifiers"] == 0
    assert redelivered.details["recomputed_identifiers"] == 0
    assert redelivered.details["seen_again_identifiers"] == 2
    assert maps[DAY4] == maps[DAY3]
    assert histories[DAY4] == histories[DAY3]
    last_seen = {
        r.identifier_value: r.last_seen
        for r in tables.read("oneid", "identity_map").collect()
        if r.identifier_value in ("M2", "13911110002", "M1")
    }
    assert last_seen["M2"] == last_seen["13911110002"] == datetime(2026, 3, 4, 9)
    assert last_seen["M1"] < datetime(2026, 3, 4)


def test_a_record_that_gains_an_identifier_merges_both_people_whole(spark, tmp_path, monkeypatch):
    """Day 2's CRM snapshot shows member M1 with a unionid that a guest mall order of day 1
    carried. Only the pair (M1's record, unionid) is new. Before, only the unionid's person was
    recomputed: M1 and its phone moved over, the openid of M1's own mall order stayed behind
    under the old id, and no history said so."""
    monkeypatch.setenv("LAKEHOUSE_LANDING", str(tmp_path / "landing"))
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", str(tmp_path / "warehouse"))
    from lakehouse.config import load_settings

    settings = load_settings("local")
    tables = Tables(spark, settings.warehouse)
    crm = [("member_id", "M1"), ("phone", "13911110001")]
    _write_day(
        spark,
        tables,
        DAY1,
        [
            ("crm_members", "M1", crm),
            ("mall_orders", "O1", [("member_id", "M1"), ("openid", "oA")]),
            ("mall_orders", "O2", [("unionid", "U1"), ("openid", "oB")]),
        ],
    )
    _run(settings, spark, tables, DAY1)
    day1 = _map(tables)
    member, guest = day1["member_id:M1"], day1["unionid:U1"]
    assert member != guest and day1["openid:oA"] == member

    _write_day(spark, tables, DAY2, [("crm_members", "M1", crm)], first=DAY1)
    _write_day(spark, tables, DAY2, [("crm_members", "M1", [("unionid", "U1")])])
    version = tables.version("oneid", "identity_map")
    _run(settings, spark, tables, DAY2)

    day2 = _map(tables)
    # the member's side is larger (3 identifiers against 2): it keeps its id
    assert set(day2.values()) == {member}, day2
    assert _history(tables) == [(DAY2, guest, member, "MERGE", 2)]
    # the map changes in one commit (a crash cannot leave half of it)
    assert tables.version("oneid", "identity_map") == version + 1
