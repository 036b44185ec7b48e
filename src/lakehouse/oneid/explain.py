"""`lakehouse oneid explain <type:value> <type:value>`: the chain of records that links two
identifiers, or the reason they are not linked.

Why: "why are these two accounts one person?" (and "why not?") is the question every One ID
gets asked, and the answer has to name records a person can look up, not a component id.

The graph search and the wording are plain Python over a few collected rows, testable without
Spark. The Spark part only reads the rows that concern the two identifiers and, when they share
a one_id, the links of that one component, which the job keeps under `max_component_size`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.config import OneIdSettings
from lakehouse.silver.normalise import normalised_identifier
from lakehouse.tables import Tables

Identifier = tuple[str, str]  # (identifier_type, value)
Record = tuple[str, str]  # (source, record_key)

LAYER = "oneid"
RECORD = ["source", "record_key"]
IDENTIFIER = ["identifier_type", "identifier_value"]
MAX_RECORDS_SHOWN = 5


@dataclass(frozen=True)
class Link:
    """One edge of oneid.links: record (source, record_key) carries both identifiers."""

    a: Identifier
    b: Identifier
    source: str
    record_key: str


@dataclass(frozen=True)
class Hop:
    """A link walked in the direction of the chain."""

    start: Identifier
    end: Identifier
    source: str
    record_key: str


@dataclass(frozen=True)
class Facts:
    """What the tables say about one identifier as asked."""

    text: str  # as given, `type:value`
    id_type: str
    value: str | None  # normalised; None: masked or invalid
    one_id: str | None = None
    component_size: int | None = None
    reason: str | None = None  # of oneid.suppressed_identifiers
    degree: int | None = None
    neighbour_type: str | None = None
    limit: int | None = None  # max_links of this type towards neighbour_type
    records: int = 0  # records of silver.identities carrying it
    placeholder: bool = False  # conf/oneid.yml lists it (placeholders, placeholder_patterns)

    @property
    def identifier(self) -> Identifier | None:
        return None if self.value is None else (self.id_type, self.value)

    @property
    def label(self) -> str:
        return self.text if self.value is None else label((self.id_type, self.value))


# --- pure helpers ------------------------------------------------------------------------------


def parse_identifier(text: str, known_types: Sequence[str]) -> Identifier:
    """`type:value` -> (type, raw value); the value is everything after the first colon."""
    known = ", ".join(known_types)
    id_type, colon, value = text.partition(":")
    id_type = id_type.strip().lower()
    if not colon or not id_type:
        raise ValueError(f"{text!r} is not <type>:<value>; known types: {known}")
    if id_type not in known_types:
        raise ValueError(f"unknown identifier type {id_type!r} in {text!r}; known types: {known}")
    if not value.strip():
        raise ValueError(f"{text!r} has no value after {id_type}:")
    return id_type, value


def label(identifier: Identifier) -> str:
    return f"{identifier[0]}:{identifier[1]}"


def find_chain(links: Iterable[Link], start: Identifier, goal: Identifier) -> list[Hop] | None:
    """The shortest chain of links from `start` to `goal` (breadth-first), None when there is
    none. Deterministic: neighbours are tried in (source, record_key, identifier) order."""
    if start == goal:
        return []
    adjacent: dict[Identifier, list[tuple[str, str, Identifier]]] = {}
    for link in links:
        adjacent.setdefault(link.a, []).append((link.source, link.record_key, link.b))
        adjacent.setdefault(link.b, []).append((link.source, link.record_key, link.a))
    came_from: dict[Identifier, Hop | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for source, record_key, neighbour in sorted(adjacent.get(node, [])):
            if neighbour in came_from:
                continue
            came_from[neighbour] = Hop(node, neighbour, source, record_key)
            if neighbour == goal:
                chain = []
                hop = came_from[goal]
                while hop is not None:
                    chain.append(hop)
                    hop = came_from[hop.start]
                return chain[::-1]
            queue.append(neighbour)
    return None


def format_hop(hop: Hop) -> str:
    return f"{label(hop.start)} —[{hop.source} {hop.record_key}]— {label(hop.end)}"


def _size(facts: Facts) -> str:
    n = facts.component_size
    return "" if n is None else f" ({n} identifier{'' if n == 1 else 's'})"


def why_not_linking(facts: Facts) -> str | None:
    """Why this identifier links nothing, or None when it is in identity_map."""
    if facts.value is None:
        return (
            f"{facts.text} is masked or invalid: it normalises to nothing, so it is no identifier"
        )
    if facts.reason == "placeholder" and not facts.placeholder:
        return (
            f"{facts.label} was suppressed as a placeholder value; conf/oneid.yml no longer "
            "lists it, but a suppressed value stays suppressed: it never links"
        )
    if facts.reason == "placeholder" or (
        facts.reason is None and facts.placeholder and facts.one_id is None
    ):
        return f"{facts.label} is a placeholder value (conf/oneid.yml): it never links"
    if facts.reason == "store_phone":
        return f"{facts.label} is a store's own phone (stores master): it never links"
    if facts.reason is not None:
        seen = f"seen with {facts.degree} distinct {facts.neighbour_type} values"
        if facts.limit is not None and facts.degree is not None and facts.degree <= facts.limit:
            return (
                f"{facts.label} is {facts.reason}: {seen} when it was suppressed; "
                f"conf/oneid.yml now allows {facts.limit}, but a value once shared stays "
                "shared, so it links nothing"
            )
        limit = "" if facts.limit is None else f", more than the {facts.limit} allowed"
        return f"{facts.label} is {facts.reason}: {seen}{limit}, so it links nothing"
    if facts.one_id is not None:
        return None
    if not facts.records:
        return (
            f"{facts.label} was never seen: it is neither in oneid.identity_map nor in "
            "silver.identities"
        )
    return (
        f"{facts.label} is on {facts.records} record(s) of silver.identities but not in "
        "oneid.identity_map: the One ID job has not run since it arrived"
    )


def linked_message(first: Facts, second: Facts, chain: Sequence[Hop]) -> str:
    if not chain:
        return f"{first.label} and {second.label} are the same identifier (one_id {first.one_id})"
    hops = f"{len(chain)} hop{'' if len(chain) == 1 else 's'}"
    lines = [
        f"{first.label} and {second.label} are linked: one_id {first.one_id}{_size(first)}, {hops}:"
    ]
    lines += [f"  {format_hop(hop)}" for hop in chain]
    return "\n".join(lines)


def not_linked_message(
    first: Facts,
    second: Facts,
    together: Sequence[Record] = (),
    together_count: int | None = None,
) -> str:
    """Why two identifiers are not linked. `together`: records carrying both (some of
    `together_count`), named when a suppressed value kept them from linking."""
    reasons = list(dict.fromkeys(r for r in (why_not_linking(first), why_not_linking(second)) if r))
    if not reasons:
        if first.one_id != second.one_id:
            reasons.append(
                f"they are in two different one_ids: {first.label} in {first.one_id}"
                f"{_size(first)}, {second.label} in {second.one_id}{_size(second)}"
            )
        else:
            reasons.append(
                f"both are in one_id {first.one_id}, but oneid.links holds no chain between "
                "them: identity_map and links come from different runs"
            )
    if together:
        blocked = [f.label for f in (first, second) if f.reason is not None]
        total = together_count if together_count is not None else len(together)
        shown = ", ".join(f"{source} {key}" for source, key in together)
        more = f" and {total - len(together)} more" if total > len(together) else ""
        why = (
            f"{' and '.join(blocked)} links nothing"
            if blocked
            else "the One ID job has not linked them yet"
        )
        reasons.append(f"they appear together on {shown}{more}, but {why}")
    lines = [f"{first.label} and {second.label} are not linked:"]
    lines += [f"  - {reason}" for reason in reasons]
    return "\n".join(lines)


# --- the Spark part ----------------------------------------------------------------------------


def _matches(identifiers: Sequence[Identifier]) -> Column:
    cond = F.lit(False)
    for id_type, value in identifiers:
        cond = cond | (F.col("identifier_type") == id_type) & (F.col("identifier_value") == value)
    return cond


def _normalise(spark: SparkSession, parsed: Sequence[Identifier]) -> list[str | None]:
    """Each raw value normalised as its type requires, evaluated on a one-row frame."""
    row = (
        spark.range(1)
        .select(
            *[normalised_identifier(t, F.lit(v)).alias(f"v{i}") for i, (t, v) in enumerate(parsed)]
        )
        .first()
    )
    return [row[f"v{i}"] for i in range(len(parsed))]


def _component_links(tables: Tables, one_id: str) -> tuple[int, list[Link]]:
    """Size of one_id and its links, one record per pair of identifiers (the smallest)."""
    nodes = [
        r[0]
        for r in tables.read(LAYER, "identity_map")
        .where(F.col("one_id") == one_id)
        .select("node_id")
        .collect()
    ]
    rows = (
        tables.read(LAYER, "links")
        .where(F.col("hub_node").isin(nodes) & F.col("other_node").isin(nodes))
        .groupBy("hub_type", "hub_value", "other_type", "other_value")
        .agg(F.min(F.struct("source", "record_key")).alias("r"))
        .collect()
    )
    links = [
        Link((r.hub_type, r.hub_value), (r.other_type, r.other_value), r.r.source, r.r.record_key)
        for r in rows
    ]
    return len(nodes), links


def _one_ids(identity_map: DataFrame, wanted: Sequence[Identifier]) -> dict[Identifier, str]:
    rows = identity_map.where(_matches(wanted)).select(*IDENTIFIER, "one_id").collect()
    return {(r[0], r[1]): r[2] for r in rows}


def _sizes(identity_map: DataFrame, one_ids: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(one_ids))
    if not wanted:
        return {}
    rows = identity_map.where(F.col("one_id").isin(wanted)).groupBy("one_id").count().collect()
    return {r[0]: r[1] for r in rows}


def _suppressed(tables: Tables, wanted: Sequence[Identifier]) -> dict[Identifier, dict]:
    if not tables.exists(LAYER, "suppressed_identifiers"):
        return {}
    rows = tables.read(LAYER, "suppressed_identifiers").where(_matches(wanted)).collect()
    return {(r["identifier_type"], r["identifier_value"]): r.asDict() for r in rows}


def _sightings(
    tables: Tables, wanted: Sequence[Identifier]
) -> tuple[dict[Identifier, int], list[Record], int]:
    """Records of silver.identities per identifier, and the records carrying both (the first
    few, and how many)."""
    if not tables.exists("silver", "identities"):
        return {}, [], 0
    rows = (
        tables.read("silver", "identities")
        .where(_matches(wanted))
        .select(*RECORD, *IDENTIFIER)
        .distinct()
    )
    counts = {(r[0], r[1]): r[2] for r in rows.groupBy(*IDENTIFIER).count().collect()}
    if len(set(wanted)) < 2:
        return counts, [], 0
    both = (
        rows.groupBy(*RECORD)
        .agg(F.count(F.lit(1)).alias("n"))
        .where(F.col("n") == 2)
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.slice(F.array_sort(F.collect_list(F.struct(*RECORD))), 1, MAX_RECORDS_SHOWN).alias(
                "shown"
            ),
        )
        .first()
    )
    if both is None or not both["n"]:
        return counts, [], 0
    return counts, [(r[0], r[1]) for r in both["shown"]], both["n"]


def _complete(
    facts: Facts,
    settings: OneIdSettings,
    sizes: dict[str, int],
    suppressed: dict[Identifier, dict],
    records: dict[Identifier, int],
) -> Facts:
    if facts.identifier is None:
        return facts
    s = suppressed.get(facts.identifier, {})
    neighbour = s.get("neighbour_type")
    spec = settings.identifier_types.get(facts.id_type)
    return replace(
        facts,
        component_size=sizes.get(facts.one_id) if facts.one_id else None,
        reason=s.get("reason"),
        degree=s.get("degree"),
        neighbour_type=neighbour,
        limit=spec.limit_for(neighbour) if spec and neighbour else None,
        records=records.get(facts.identifier, 0),
        placeholder=is_configured_placeholder(settings, *facts.identifier),
    )


def is_configured_placeholder(settings: OneIdSettings, id_type: str, value: str) -> bool:
    """`graph.is_placeholder` for one value: a configured value (any case) or pattern (found
    anywhere in the value, as Spark's `rlike`) of its type or of `any`."""
    listed = [v.lower() for t in (id_type, "any") for v in settings.placeholders.get(t, [])]
    patterns = [p for t in (id_type, "any") for p in settings.placeholder_patterns.get(t, [])]
    return value.lower() in listed or any(re.search(p, value) for p in patterns)


def explain(
    spark: SparkSession, tables: Tables, oneid_settings: OneIdSettings, first: str, second: str
) -> str:
    """The answer to `lakehouse oneid explain FIRST SECOND`, as printable text.

    Raises ValueError for an argument that is not `<known type>:<value>`, FileNotFoundError when
    oneid.identity_map does not exist yet.
    """
    known = oneid_settings.by_priority()
    parsed = [parse_identifier(first, known), parse_identifier(second, known)]
    values = _normalise(spark, parsed)
    facts = [
        Facts(text=text, id_type=t, value=v)
        for text, (t, _), v in zip((first, second), parsed, values, strict=True)
    ]
    wanted = [f.identifier for f in facts if f.identifier is not None]
    identity_map = tables.read(LAYER, "identity_map")
    one_ids = _one_ids(identity_map, wanted) if wanted else {}
    a, b = (replace(f, one_id=one_ids.get(f.identifier)) if f.identifier else f for f in facts)

    if a.one_id is not None and a.identifier == b.identifier:
        return linked_message(a, b, [])
    if a.one_id is not None and a.one_id == b.one_id:
        size, links = _component_links(tables, a.one_id)
        a, b = replace(a, component_size=size), replace(b, component_size=size)
        chain = find_chain(links, a.identifier, b.identifier)  # type: ignore[arg-type]
        return linked_message(a, b, chain) if chain is not None else not_linked_message(a, b)

    if not wanted:
        return not_linked_message(a, b)
    sizes = _sizes(identity_map, [f.one_id for f in (a, b) if f.one_id])
    records, together, together_count = _sightings(tables, wanted)
    if a.one_id and b.one_id:
        # Two people, neither suppressed. A record carrying both arrived after the last
        # oneid.link run (or that day's run failed): the record is named.
        a, b = (_complete(f, oneid_settings, sizes, {}, {}) for f in (a, b))
        return not_linked_message(a, b, together, together_count)
    suppressed = _suppressed(tables, wanted)
    a, b = (_complete(f, oneid_settings, sizes, suppressed, records) for f in (a, b))
    return not_linked_message(a, b, together, together_count)
