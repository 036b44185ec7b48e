"""`lakehouse oneid explain`: the pure helpers without Spark, then the whole answer over tiny
Delta tables shaped like the One ID job's output."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.config import OneIdSettings, load_settings
from lakehouse.oneid.explain import (
    Facts,
    Hop,
    Link,
    explain,
    find_chain,
    format_hop,
    linked_message,
    not_linked_message,
    parse_identifier,
    why_not_linking,
)
from lakehouse.tables import Tables

KNOWN = ["member_id", "card_no", "tmall_nick", "jd_pin", "unionid", "phone", "email", "openid"]
P1, P2 = "13912345678", "13787654321"
STORE, PLACEHOLDER = "13655554321", "18888888888"


def link(a: str, b: str, source: str, key: str) -> Link:
    return Link(tuple(a.split(":", 1)), tuple(b.split(":", 1)), source, key)  # type: ignore[arg-type]


# --- pure helpers ------------------------------------------------------------------------------


def test_parse_identifier() -> None:
    assert parse_identifier("phone:+86 139 1234 5678", KNOWN) == ("phone", "+86 139 1234 5678")
    assert parse_identifier(" Email :a:b@x.com", KNOWN) == ("email", "a:b@x.com")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("13912345678", "is not <type>:<value>; known types: member_id, card_no"),
        (":13912345678", "is not <type>:<value>"),
        ("mobile:13912345678", "unknown identifier type 'mobile'.*known types: member_id"),
        ("phone:  ", "has no value"),
    ],
)
def test_parse_identifier_rejects_bad_input(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_identifier(text, KNOWN)


def test_find_chain_takes_the_shortest_path_and_orients_it() -> None:
    links = [
        link("member_id:M1", "phone:P1", "crm_members", "M1"),
        link("tmall_nick:n", "phone:P1", "tmall_orders", "T1"),
        link("member_id:M1", "openid:o", "mall_orders", "O1"),
        # a longer way round, and a second record for the same pair
        link("tmall_nick:n", "jd_pin:j", "jd_orders", "J1"),
        link("jd_pin:j", "email:e", "jd_orders", "J2"),
        link("email:e", "unionid:u", "jd_orders", "J3"),
        link("unionid:u", "openid:o", "mall_orders", "O2"),
        link("member_id:M1", "phone:P1", "campaign_touches", "T9"),
    ]
    chain = find_chain(links, ("tmall_nick", "n"), ("openid", "o"))
    assert chain == [
        Hop(("tmall_nick", "n"), ("phone", "P1"), "tmall_orders", "T1"),
        Hop(("phone", "P1"), ("member_id", "M1"), "campaign_touches", "T9"),
        Hop(("member_id", "M1"), ("openid", "o"), "mall_orders", "O1"),
    ]
    assert format_hop(chain[1]) == "phone:P1 —[campaign_touches T9]— member_id:M1"
    assert find_chain(list(reversed(links)), ("tmall_nick", "n"), ("openid", "o")) == chain


def test_find_chain_without_a_path() -> None:
    links = [link("member_id:M1", "phone:P1", "crm_members", "M1")]
    assert find_chain(links, ("member_id", "M1"), ("phone", "P2")) is None
    assert find_chain([], ("phone", "P1"), ("phone", "P1")) == []


def test_messages() -> None:
    a = Facts("phone:P1", "phone", "P1", one_id="OID_A", component_size=3)
    b = Facts("member_id:M1", "member_id", "M1", one_id="OID_A", component_size=3)
    hop = Hop(("phone", "P1"), ("member_id", "M1"), "crm_members", "M1")
    assert linked_message(a, b, [hop]) == (
        "phone:P1 and member_id:M1 are linked: one_id OID_A (3 identifiers), 1 hop:\n"
        "  phone:P1 —[crm_members M1]— member_id:M1"
    )
    shared = Facts(
        "openid:o", "openid", "o", reason="shared", degree=3, neighbour_type="phone", limit=1
    )
    assert why_not_linking(shared) == (
        "openid:o is shared: seen with 3 distinct phone values, more than the 1 allowed, "
        "so it links nothing"
    )
    assert why_not_linking(a) is None
    assert "masked or invalid" in why_not_linking(Facts("phone:139****5678", "phone", None))
    b2 = Facts("member_id:M2", "member_id", "M2", one_id="OID_B", component_size=1)
    assert not_linked_message(a, b2) == (
        "phone:P1 and member_id:M2 are not linked:\n"
        "  - they are in two different one_ids: phone:P1 in OID_A (3 identifiers), "
        "member_id:M2 in OID_B (1 identifier)"
    )
    assert "and 4 more, but openid:o links nothing" in not_linked_message(
        shared, b2, [("mall_orders", "O1")], 5
    )


# --- over Delta tables -------------------------------------------------------------------------

# Person A: tmall order T1 (nick + phone), CRM record M1 (member id, phone, card), mall order O1
# (member id, openid). Person B: CRM record M2. POS ticket S1 carries A's card and the store
# phone; mall orders R1 / R2 share one openid between two phones; Tmall order X1 has a
# placeholder phone.
IDENTITIES = [
    ("tmall_orders", "T1", "tmall_nick", "nickA"),
    ("tmall_orders", "T1", "phone", P1),
    ("crm_members", "M1", "member_id", "M1"),
    ("crm_members", "M1", "phone", P1),
    ("crm_members", "M1", "card_no", "C1"),
    ("mall_orders", "O1", "member_id", "M1"),
    ("mall_orders", "O1", "openid", "oA"),
    ("crm_members", "M2", "member_id", "M2"),
    ("crm_members", "M2", "phone", P2),
    ("pos_sales", "S1", "card_no", "C1"),
    ("pos_sales", "S1", "phone", STORE),
    ("mall_orders", "R1", "openid", "oS"),
    ("mall_orders", "R1", "phone", P1),
    ("mall_orders", "R2", "openid", "oS"),
    ("mall_orders", "R2", "phone", P2),
    ("tmall_orders", "X1", "tmall_nick", "nickP"),
    ("tmall_orders", "X1", "phone", PLACEHOLDER),
    # Arrived after the last oneid.link run: M2 ordered with A's openid.
    ("mall_orders", "O9", "member_id", "M2"),
    ("mall_orders", "O9", "openid", "oA"),
]
ONE_IDS = {
    "OID_A": [("tmall_nick", "nickA"), ("phone", P1), ("member_id", "M1"), ("card_no", "C1"),
              ("openid", "oA")],
    "OID_B": [("member_id", "M2"), ("phone", P2)],
    "OID_P": [("tmall_nick", "nickP")],
}  # fmt: skip
LINKS = [  # hub, other, source, record_key
    (("tmall_nick", "nickA"), ("phone", P1), "tmall_orders", "T1"),
    (("member_id", "M1"), ("phone", P1), "crm_members", "M1"),
    (("member_id", "M1"), ("card_no", "C1"), "crm_members", "M1"),
    (("member_id", "M1"), ("openid", "oA"), "mall_orders", "O1"),
    (("member_id", "M2"), ("phone", P2), "crm_members", "M2"),
]
SUPPRESSED = [
    ("phone", STORE, "store_phone", None, None),
    ("openid", "oS", "shared", 2, "phone"),
    ("phone", PLACEHOLDER, "placeholder", None, None),
]
SEEN = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
DAY = dt.date(2026, 3, 1)


def _write(tables: Tables, df: DataFrame, layer: str, name: str) -> None:
    """A plain Delta write at the table's path: explain reads by path, and registering the name
    in the shared session's catalog would re-point `oneid.*` under other tests' feet."""
    df.write.format("delta").save(tables.path(layer, name))


def _node(type_col: str, value_col: str) -> Column:
    return F.xxhash64(F.col(type_col), F.col(value_col))


@pytest.fixture(scope="module")
def tables(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Tables:
    tables = Tables(spark, str(tmp_path_factory.mktemp("explain_warehouse")))
    _write(
        tables,
        spark.createDataFrame(
            [(*row, SEEN, SEEN, DAY) for row in IDENTITIES],
            "source string, record_key string, identifier_type string, "
            "identifier_value string, first_seen timestamp, last_seen timestamp, "
            "delivery_date date",
        ),
        "silver",
        "identities",
    )
    identity_map = spark.createDataFrame(
        [(t, v, one_id, SEEN, SEEN, DAY) for one_id, ids in ONE_IDS.items() for t, v in ids],
        "identifier_type string, identifier_value string, one_id string, "
        "first_seen timestamp, last_seen timestamp, updated_on date",
    ).withColumn("node_id", _node("identifier_type", "identifier_value"))
    _write(tables, identity_map, "oneid", "identity_map")
    links = spark.createDataFrame(
        [(h[0], h[1], o[0], o[1], s, k, SEEN, SEEN, DAY) for h, o, s, k in LINKS],
        "hub_type string, hub_value string, other_type string, other_value string, "
        "source string, record_key string, first_seen timestamp, last_seen timestamp, "
        "delivery_date date",
    ).withColumns(
        {
            "hub_node": _node("hub_type", "hub_value"),
            "other_node": _node("other_type", "other_value"),
        }
    )
    _write(tables, links, "oneid", "links")
    suppressed = spark.createDataFrame(
        [(*row, DAY) for row in SUPPRESSED],
        "identifier_type string, identifier_value string, reason string, degree int, "
        "neighbour_type string, first_suppressed date",
    ).withColumn("node_id", _node("identifier_type", "identifier_value"))
    _write(tables, suppressed, "oneid", "suppressed_identifiers")
    return tables


@pytest.fixture(scope="module")
def oneid() -> OneIdSettings:
    return load_settings("local").oneid


def test_three_hop_chain(spark, tables, oneid) -> None:
    assert explain(spark, tables, oneid, "tmall_nick:nickA", "openid:oA") == (
        "tmall_nick:nickA and openid:oA are linked: one_id OID_A (5 identifiers), 3 hops:\n"
        f"  tmall_nick:nickA —[tmall_orders T1]— phone:{P1}\n"
        f"  phone:{P1} —[crm_members M1]— member_id:M1\n"
        "  member_id:M1 —[mall_orders O1]— openid:oA"
    )


def test_two_one_ids_with_normalised_input(spark, tables, oneid) -> None:
    got = explain(spark, tables, oneid, "member_id: m2", "phone:+86 139-1234-5678")
    assert got == (
        f"member_id:M2 and phone:{P1} are not linked:\n"
        f"  - they are in two different one_ids: member_id:M2 in OID_B (2 identifiers), "
        f"phone:{P1} in OID_A (5 identifiers)"
    )


def test_two_one_ids_on_one_record_not_linked_yet_name_the_record(spark, tables, oneid) -> None:
    """Before: only "two different one_ids", though a record carrying both was waiting for the
    next oneid.link run."""
    got = explain(spark, tables, oneid, "member_id:M2", "openid:oA")
    assert got == (
        "member_id:M2 and openid:oA are not linked:\n"
        "  - they are in two different one_ids: member_id:M2 in OID_B (2 identifiers), "
        "openid:oA in OID_A (5 identifiers)\n"
        "  - they appear together on mall_orders O9, but the One ID job has not linked them yet"
    )


def test_store_phone_names_the_record_it_sat_on(spark, tables, oneid) -> None:
    got = explain(spark, tables, oneid, f"phone:{STORE}", "card_no:c1")
    assert got == (
        f"phone:{STORE} and card_no:C1 are not linked:\n"
        f"  - phone:{STORE} is a store's own phone (stores master): it never links\n"
        f"  - they appear together on pos_sales S1, but phone:{STORE} links nothing"
    )


def test_shared_and_placeholder(spark, tables, oneid) -> None:
    got = explain(spark, tables, oneid, "openid:oS", f"phone:{PLACEHOLDER}")
    assert "openid:oS is shared: seen with 2 distinct phone values, more than the 1 allowed" in got
    assert f"phone:{PLACEHOLDER} is a placeholder value" in got
    assert "appear together" not in got  # no record carries both


def test_a_suppression_the_config_no_longer_explains_says_so() -> None:
    """Before, a value suppressed as shared at degree 3 under a limit of 2 read "seen with 3
    distinct member_id values, more than the 5 allowed" once the limit was raised to 5, and a
    value suppressed as a placeholder and then taken off the list was still "a placeholder
    value (conf/oneid.yml)". Suppressed values stay suppressed: the message says that."""
    raised = Facts(
        "phone:P", "phone", "P", reason="shared", degree=3, neighbour_type="member_id", limit=5
    )
    assert why_not_linking(raised) == (
        "phone:P is shared: seen with 3 distinct member_id values when it was suppressed; "
        "conf/oneid.yml now allows 5, but a value once shared stays shared, so it links nothing"
    )
    unlisted = Facts("phone:P", "phone", "P", reason="placeholder", placeholder=False)
    assert "no longer lists it, but a suppressed value stays suppressed" in why_not_linking(
        unlisted
    )
    listed = Facts("phone:P", "phone", "P", reason="placeholder", placeholder=True)
    assert (
        why_not_linking(listed) == "phone:P is a placeholder value (conf/oneid.yml): it never links"
    )


def test_a_configured_placeholder_not_delivered_yet_is_a_placeholder(spark, tables, oneid) -> None:
    """Before: "was never seen", though conf/oneid.yml says it never links, whatever it is
    seen with. Listed values (any case, `any` scope) and patterns count."""
    got = explain(spark, tables, oneid, "phone:13000000000", "email:TEST@Test.com")
    assert "phone:13000000000 is a placeholder value (conf/oneid.yml)" in got
    assert "email:test@test.com is a placeholder value (conf/oneid.yml)" in got
    assert "never seen" not in got
    got = explain(spark, tables, oneid, "phone:13999999999", "member_id:N/A")
    assert "phone:13999999999 is a placeholder value" in got  # ^1[3-9](\d)\1{8}$
    assert "member_id:N/A is a placeholder value" in got  # `any`: n/a, in any case


def test_masked_and_never_seen(spark, tables, oneid) -> None:
    got = explain(spark, tables, oneid, "phone:139****5678", "email:Nobody@X.com")
    assert got == (
        "phone:139****5678 and email:nobody@x.com are not linked:\n"
        "  - phone:139****5678 is masked or invalid: it normalises to nothing, so it is no "
        "identifier\n"
        "  - email:nobody@x.com was never seen: it is neither in oneid.identity_map nor in "
        "silver.identities"
    )


def test_bad_input_is_a_value_error(spark, tables, oneid) -> None:
    with pytest.raises(ValueError, match="known types: member_id, card_no, tmall_nick"):
        explain(spark, tables, oneid, "qq:12345", "member_id:M1")
    with pytest.raises(ValueError, match="is not <type>:<value>"):
        explain(spark, tables, oneid, "member_id:M1", "13912345678")
