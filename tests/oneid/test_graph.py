"""The One ID graph's pure transforms on hand-built rows: ids, guards, star links, stable ids."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakehouse.config import load_settings
from lakehouse.oneid.graph import (
    assign_one_ids,
    fixed_suppressions,
    is_placeholder,
    size_histogram,
    star_links,
    suppressed_identifiers,
    with_node_id,
)

RUN = date(2026, 3, 2)
T0 = datetime(2026, 3, 1, 10, 0)


@pytest.fixture(scope="module")
def oneid():
    return load_settings("local").oneid


def _identities(spark, rows):
    """rows: (source, record_key, identifier_type, identifier_value)."""
    return with_node_id(
        spark.createDataFrame(
            [(*r, T0, T0, RUN) for r in rows],
            "source string, record_key string, identifier_type string, identifier_value string, "
            "first_seen timestamp, last_seen timestamp, delivery_date date",
        )
    )


def _node(spark, typ, value):
    return spark.range(1).select(F.xxhash64(F.lit(typ), F.lit(value))).first()[0]


def test_node_ids_are_stable_and_typed(spark):
    ids = _identities(
        spark,
        [
            ("crm_members", "M1", "member_id", "M1"),
            ("mall_orders", "O1", "member_id", "M1"),
            ("mall_orders", "O1", "card_no", "M1"),
        ],
    ).collect()
    by = {(r.record_key, r.identifier_type): r.node_id for r in ids}
    assert by[("M1", "member_id")] == by[("O1", "member_id")]
    assert by[("O1", "member_id")] != by[("O1", "card_no")]
    assert by[("M1", "member_id")] == _node(spark, "member_id", "M1")


def test_placeholders_by_list_and_pattern(spark, oneid):
    df = spark.createDataFrame(
        [
            # The contract's example number is a member's phone, not a placeholder.
            ("phone", "13800138000", False),
            ("phone", "13900000000", True),
            ("phone", "18888888888", True),
            ("phone", "13912345678", False),
            ("email", "TEST@test.com", True),
            ("card_no", "0000000000", True),
            ("card_no", "-1", True),
            ("tmall_nick", "null", True),
            ("tmall_nick", "小小", False),
            ("member_id", "M00012345", False),
        ],
        "identifier_type string, identifier_value string, expected boolean",
    )
    got = df.select("identifier_value", is_placeholder(oneid).alias("flag"), "expected")
    assert [r.identifier_value for r in got.collect() if r.flag != r.expected] == []


def test_store_phone_and_placeholder_never_link(spark, oneid):
    ids = _identities(
        spark,
        [
            ("pos_sales", "T1", "card_no", "8860001"),
            ("pos_sales", "T1", "phone", "13911112222"),
            ("pos_sales", "T2", "card_no", "8860002"),
            ("pos_sales", "T2", "phone", "13000000000"),
        ],
    )
    stores = spark.createDataFrame([("13911112222",), (None,)], "store_phone string")
    got = fixed_suppressions(ids, stores, oneid).select("identifier_value", "reason")
    expected = spark.createDataFrame(
        [("13911112222", "store_phone"), ("13000000000", "placeholder")],
        "identifier_value string, reason string",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_an_unconfigured_identifier_type_is_an_error(spark, oneid):
    ids = _identities(spark, [("x", "1", "qq_number", "12345")])
    with pytest.raises(ValueError, match="qq_number"):
        fixed_suppressions(ids, None, oneid)


def test_shared_values_are_found_by_their_type_limits(spark, oneid):
    rows = [
        # a walk-in phone keyed in with three different cards: shared (phone allows 2)
        *[("pos_sales", f"T{i}", "card_no", f"886000{i}") for i in range(3)],
        *[("pos_sales", f"T{i}", "phone", "13911110000") for i in range(3)],
        # one person, two CRM records under one phone: not shared
        ("crm_members", "M1", "member_id", "M1"),
        ("crm_members", "M1", "phone", "13922220000"),
        ("crm_members", "M2", "member_id", "M2"),
        ("crm_members", "M2", "phone", "13922220000"),
        # a family tablet: one openid, two phones -> shared (openid allows 1 phone)
        ("mall_orders", "O1", "openid", "oFAMILY"),
        ("mall_orders", "O1", "phone", "13933330001"),
        ("mall_orders", "O2", "openid", "oFAMILY"),
        ("mall_orders", "O2", "phone", "13933330002"),
        # one person's openid seen with both of their member ids, one phone: not shared
        ("mall_orders", "O3", "openid", "oME"),
        ("mall_orders", "O3", "member_id", "M1"),
        ("mall_orders", "O3", "phone", "13922220000"),
        ("mall_orders", "O4", "openid", "oME"),
        ("mall_orders", "O4", "member_id", "M2"),
        ("mall_orders", "O4", "phone", "13922220000"),
        # a member whose phone the CRM changed three times: the four are one person's phones
        # (before: each was "seen with" three phones and suppressed); the member id, seen with
        # four phones, is over its own limit (3)
        ("crm_members", "M9", "member_id", "M9"),
        *[("crm_members", "M9", "phone", f"1394444000{i}") for i in range(4)],
    ]
    got = suppressed_identifiers(_identities(spark, rows), None, oneid, RUN).select(
        "identifier_value", "reason", "degree", "neighbour_type", "first_suppressed"
    )
    expected = spark.createDataFrame(
        [
            ("13911110000", "shared", 3, "card_no", RUN),
            ("oFAMILY", "shared", 2, "phone", RUN),
            ("M9", "shared", 4, "phone", RUN),
        ],
        "identifier_value string, reason string, degree int, neighbour_type string, "
        "first_suppressed date",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_a_record_links_as_a_star_from_its_highest_priority_identifier(spark, oneid):
    ids = _identities(
        spark,
        [
            ("mall_orders", "O1", "phone", "13911112222"),
            ("mall_orders", "O1", "member_id", "M1"),
            ("mall_orders", "O1", "openid", "oA"),
            ("mall_orders", "O1", "unionid", "uA"),
            # a lone identifier links nothing
            ("tmall_orders", "T1", "tmall_nick", "nick"),
            # the hub is suppressed: the rest re-star on the next in priority
            ("pos_sales", "P1", "card_no", "0000000000"),
            ("pos_sales", "P1", "phone", "13955556666"),
            ("pos_sales", "P1", "unionid", "uB"),
        ],
    )
    suppressed = fixed_suppressions(ids, None, oneid)
    got = star_links(ids, suppressed, oneid).select("record_key", "hub_value", "other_value")
    expected = spark.createDataFrame(
        [
            ("O1", "M1", "13911112222"),
            ("O1", "M1", "oA"),
            ("O1", "M1", "uA"),
            ("P1", "uB", "13955556666"),
        ],
        "record_key string, hub_value string, other_value string",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_the_contract_s_example_phone_links_a_member_to_a_guest_order(spark, oneid):
    """`13800138000` (`+8613800138000` in the mall, `138-0013-8000` at a till) is the contract's
    example of a member's phone; it was configured as a placeholder and linked no one."""
    ids = _identities(
        spark,
        [
            ("crm_members", "C1", "member_id", "M1"),
            ("crm_members", "C1", "phone", "13800138000"),
            ("mall_orders", "O1", "openid", "oX"),
            ("mall_orders", "O1", "phone", "13800138000"),
        ],
    )
    suppressed = fixed_suppressions(ids, None, oneid)
    assert suppressed.count() == 0
    got = star_links(ids, suppressed, oneid).select("record_key", "hub_value", "other_value")
    expected = spark.createDataFrame(
        [("C1", "M1", "13800138000"), ("O1", "13800138000", "oX")],
        "record_key string, hub_value string, other_value string",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


# Independent scenarios share one call of assign_one_ids (components never interact), so the
# id rules cost two Spark runs, not one per rule.
SCENARIOS = {
    "new": ([(5, 5), (9, 5)], []),
    "grow": ([(11, 11), (12, 11), (13, 11)], [(12, "OIDGA"), (13, "OIDGA")]),
    "merge": (
        [(21, 21), (22, 21), (23, 21), (24, 21), (25, 21)],
        [(21, "OIDMB"), (22, "OIDMA"), (23, "OIDMA"), (24, "OIDMB"), (25, "OIDMB")],
    ),
    "tie": ([(31, 31), (32, 31)], [(31, "OIDTZ"), (32, "OIDTA")]),
    "split": ([(41, 41), (42, 41), (43, 43)], [(41, "OIDSA"), (42, "OIDSA"), (43, "OIDSA")]),
    "dissolve": ([(51, 51)], [(51, "OIDDA"), (57, "OIDDB")]),
}


def _assign(spark, components, previous):
    comp = spark.createDataFrame(components, "node_id long, component long")
    prev = spark.createDataFrame(previous, "node_id long, one_id string")
    assigned, history = assign_one_ids(comp, prev)
    return (
        {r.node_id: r.one_id for r in assigned.collect()},
        sorted((r.old_one_id, r.new_one_id, r.event, r.nodes) for r in history.collect()),
    )


@pytest.fixture(scope="module")
def assigned(spark):
    components = [c for comps, _ in SCENARIOS.values() for c in comps]
    previous = [p for _, prev in SCENARIOS.values() for p in prev]
    first = _assign(spark, components, previous)
    again = _assign(spark, components, sorted(first[0].items()))
    return first, again


def _history_of(history, *ids):
    return [h for h in history if h[0] in ids]


def test_a_brand_new_component_is_named_after_its_smallest_node(assigned):
    (ids, history), _ = assigned
    assert ids[5] == ids[9] == "OID0000000000000005"
    assert not [h for h in history if "OID0000000000000005" in h]


def test_a_growing_component_keeps_its_id(assigned):
    (ids, history), _ = assigned
    assert ids[11] == ids[12] == ids[13] == "OIDGA"
    assert _history_of(history, "OIDGA") == []


def test_a_merge_keeps_the_larger_id_and_records_the_other(assigned):
    (ids, history), _ = assigned
    assert {ids[n] for n in range(21, 26)} == {"OIDMB"}
    assert _history_of(history, "OIDMA", "OIDMB") == [("OIDMA", "OIDMB", "MERGE", 2)]


def test_a_merge_of_equal_sizes_keeps_the_smaller_id(assigned):
    (ids, history), _ = assigned
    assert ids[31] == ids[32] == "OIDTA"
    assert _history_of(history, "OIDTZ", "OIDTA") == [("OIDTZ", "OIDTA", "MERGE", 1)]


def test_a_split_keeps_the_id_on_the_larger_piece(assigned):
    (ids, history), (again, _) = assigned
    assert ids[41] == ids[42] == "OIDSA"
    piece = ids[43]
    assert piece not in {"OIDSA", "OID000000000000002B"}
    assert piece.startswith("OID") and len(piece) == 19
    assert _history_of(history, "OIDSA") == [("OIDSA", piece, "SPLIT", 1)]
    assert again[43] == piece


def test_an_id_whose_nodes_all_left_is_dissolved(assigned):
    (ids, history), _ = assigned
    assert ids[51] == "OIDDA"
    assert _history_of(history, "OIDDA", "OIDDB") == [("OIDDB", None, "DISSOLVED", 1)]


def test_assigning_on_its_own_output_changes_nothing(assigned):
    (ids, _), (again, history) = assigned
    assert again == ids
    assert history == []


def test_size_histogram_buckets(spark):
    rows = [("A",)] + [("B",)] * 2 + [("C",)] * 4 + [("D",)] * 120
    got = size_histogram(spark.createDataFrame(rows, "one_id string")).select(
        "size_bucket", "components", "identifiers", "largest"
    )
    expected = spark.createDataFrame(
        [("1", 1, 1, 1), ("2", 1, 2, 2), ("4-5", 1, 4, 4), (">100", 1, 120, 120)],
        "size_bucket string, components long, identifiers long, largest long",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
