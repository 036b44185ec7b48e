"""PIPL erasure (`lakehouse erase`): remove one person from every layer, bronze included.

    lakehouse erase --identifier phone:13800138000 [--identifier email:li@x.cn] [--dry-run]
    lakehouse erase --one-id OID00000000075BCD15

Why it works the way it does (docs/privacy.md has the long form):

- **Who.** An identifier is normalised as silver does it and looked up in oneid.identity_map: the
  person is every identifier of that one_id. A value One ID suppressed (a store phone, a
  placeholder, a number shared by a family) links nothing and belongs to several people, so it
  is never used to find rows; a value in no component is erased on its own, and says so.
- **Which rows.** Records come from silver.identities (source, record_key), bronze rows from the
  same record keys recomputed from the raw columns (and from their identifier columns,
  normalised), everything derived from them through lineage (`_source_file`, `_line_no`), order
  and touch keys, and the one_id. A catch-all then takes, in every Delta table, each row whose
  JSON text holds one of the person's values in any spelling the normalisers accept (`+86 138
  0013 8000`, `LI@X.CN`) or the spellings found in bronze, their hashes (gold's salted SHA-256,
  the plain SHA-256 / MD5 ad platforms match on) and the one_id. Substring matching is bounded
  (a value is never matched inside a longer number or word) and refused for values under
  MIN_SWEEP_LENGTH characters: those are only matched exactly, column by column.
- **History.** A Delta DELETE and VACUUM RETAIN 0 HOURS remove the data files, but the commit
  files keep the data-skipping statistics of every file ever added (a phone that was a file's
  min or max value stays in `_delta_log/*.json` and the `.crc` files) until log retention
  (30 days, whole days only) expires them. So every table that holds the person, in its rows or
  in its history, is rewritten without them into a new Delta table (same schema, partitioning
  and properties) that takes the old one's place; the old folder (data, commits, checkpoints,
  change data) is deleted. Time travel to before the erasure is gone for those tables, as
  VACUUM RETAIN 0 HOURS would have made it anyway.
- **Files.** Data docs (`_dq_docs`) and report pages (`_reports`) holding a value are deleted
  (generated, rebuilt by the next gate / `lakehouse report`); export CSVs (`_exports`) lose
  the person's lines.
- **Proof.** Afterwards every file of every table (all data files, commits, checksums,
  checkpoints) and every other file under the warehouse is scanned again; anything left is
  reported and the command fails. `ops.erasure_log` records the request with identifier types
  and salted hashes only.

Run it when no job writes (as `ops.maintenance`): a table is replaced, not merged into.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import reduce
from pathlib import Path
from urllib.parse import unquote

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DoubleType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from lakehouse.config import Settings
from lakehouse.oneid.explain import label, parse_identifier
from lakehouse.runtime import JobError
from lakehouse.silver import normalise as n
from lakehouse.silver.identities import ORDER_SOURCES
from lakehouse.silver.order_lines import pos_key
from lakehouse.silver.scd2 import attribute_hash
from lakehouse.spark import local_path, session_conf, small_frame
from lakehouse.tables import Tables

Identifier = tuple[str, str]  # (identifier_type, value)

# Shorter values are matched exactly per column only, never as a substring of a row's text.
MIN_SWEEP_LENGTH = 6
ERASURE_LOG = ("ops", "erasure_log")
ONE_ID = re.compile(r"^OID[0-9A-F]{16}$")
ORDER_RECORD_SOURCES = frozenset(ORDER_SOURCES.values())
TOUCH_SOURCE = "campaign_touches"
# Written by the erasure itself; its rows hold the one_id and salted hashes, never a value.
SKIPPED_TABLES = frozenset({".".join(ERASURE_LOG)})
# Rewritten last, so that an interrupted erasure can still resolve the person when rerun; the
# history after the map, so a rerun quoting a merged-away one_id still follows it.
REWRITE_LAST = ("silver.identities", "oneid.links", "oneid.identity_map", "oneid.one_id_history")
# Files outside tables: deleted (generated pages) or rewritten line by line (exports).
LINE_FILES = (".csv", ".tsv", ".txt", ".json", ".jsonl")
FRESH, OLD = ".erasing-", ".erased-"

# (identifier type, salted SHA-256 of the normalised value) pairs: what the log keeps of a value.
HASHED_IDENTIFIERS = ArrayType(
    StructType(
        [
            StructField("identifier_type", StringType(), False),
            StructField("value_sha256", StringType(), False),
        ]
    )
)
ERASURE_LOG_SCHEMA = StructType(
    [
        StructField("request_id", StringType(), False),
        StructField("requested_at", TimestampType(), False),
        StructField("reason", StringType(), True),
        StructField("requested", HASHED_IDENTIFIERS, False),
        StructField("identifiers", HASHED_IDENTIFIERS, False),
        StructField("one_id", StringType(), True),
        StructField("rows_deleted", MapType(StringType(), LongType()), False),
        StructField("tables_rewritten", ArrayType(StringType()), False),
        StructField("files_deleted", ArrayType(StringType()), False),
        StructField("files_rewritten", ArrayType(StringType()), False),
        StructField("verified", BooleanType(), False),
        StructField("seconds", DoubleType(), False),
    ]
)


class ErasureError(JobError):
    """An erasure that cannot be carried out as asked; the message says why and what was left
    as it was (a refused request changes nothing)."""


# --- what was asked ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The request as given: `type:value` identifiers (raw values) or one one_id."""

    identifiers: tuple[Identifier, ...] = ()
    one_id: str | None = None

    def labels(self) -> list[str]:
        if self.one_id:
            return [f"one_id {self.one_id}"]
        return [label(i) for i in self.identifiers]


def parse_target(
    identifiers: Sequence[str], one_id: str | None, known_types: Sequence[str]
) -> Target:
    """`--identifier TYPE:VALUE ...` or `--one-id ID` -> Target; ValueError for anything else.

    Why: a typo in an erasure request must stop before anything is read, with the list of
    types (oneid explain's parser, so both commands accept the same spellings).
    """
    if bool(identifiers) == bool(one_id):
        raise ValueError("give either --identifier TYPE:VALUE (one or more) or --one-id ID")
    if one_id:
        value = one_id.strip().upper()
        if not ONE_ID.match(value):
            raise ValueError(f"{one_id!r} is not a one_id (OID followed by 16 hex digits)")
        return Target(one_id=value)
    parsed = tuple(dict.fromkeys(parse_identifier(text, known_types) for text in identifiers))
    return Target(identifiers=parsed)


# --- who the person is -------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """Everything the warehouse links to the person asked for.

    `identifiers` (normalised, never a suppressed value) find the rows; `requested` is what was
    asked, normalised, for the log; `notes` are sentences for the operator (they may name the
    values, so they are printed, never stored)."""

    one_id: str | None
    identifiers: tuple[Identifier, ...]
    requested: tuple[Identifier, ...]
    shared: tuple[Identifier, ...] = ()
    notes: tuple[str, ...] = ()
    # one_ids the person had before One ID merged them into `one_id` (rows may still carry them)
    former_one_ids: tuple[str, ...] = ()

    def values(self) -> dict[str, frozenset[str]]:
        out: dict[str, set[str]] = {}
        for id_type, value in self.identifiers:
            out.setdefault(id_type, set()).add(value)
        return {t: frozenset(v) for t, v in out.items()}

    def describe(self) -> str:
        """For the operator's screen (names the identifiers only when there is no one_id)."""
        if not self.one_id:
            return f"{', '.join(label(i) for i in self.identifiers)} (in no One ID component)"
        types = sorted({t for t, _ in self.identifiers})
        count = len(self.identifiers)
        what = f"{count} identifier{'' if count == 1 else 's'}" + (
            f": {', '.join(types)}" if types else ""
        )
        return f"one_id {self.one_id} ({what})"


def _suppression_note(identifier: Identifier, reason: str | None) -> str:
    why = {
        "store_phone": "a store's own phone",
        "placeholder": "a placeholder value",
    }.get(reason or "", f"suppressed ({reason}): seen with more people than its type allows")
    return (
        f"{label(identifier)} is {why}: it links nothing and may belong to other people, so no "
        "row is erased because of it; the person's own records carrying it are erased through "
        "their other identifiers"
    )


def person_from_lookups(
    target: Target,
    normalised: Mapping[Identifier, str | None],
    one_ids: Mapping[Identifier, str],
    suppressed: Mapping[Identifier, str],
    component: Sequence[Identifier],
    sightings: Mapping[Identifier, int],
) -> Person:
    """The Person from what the tables said; pure, so every branch is tested without Spark.

    `normalised`: raw identifier -> normalised value (None: masked or invalid); `one_ids`,
    `suppressed` (-> reason) and `sightings` (-> records in silver.identities) are keyed by the
    normalised identifier; `component` is every identifier of the one_id found.
    """
    if target.one_id:
        return Person(
            one_id=target.one_id,
            identifiers=tuple(sorted(set(component))),
            requested=(),
            notes=()
            if component
            else (
                f"one_id {target.one_id} is not in oneid.identity_map: only rows that still "
                "carry the one_id itself are erased",
            ),
        )
    notes: list[str] = []
    requested: list[Identifier] = []
    for raw in target.identifiers:
        value = normalised.get(raw)
        if value is None:
            raise ErasureError(
                f"{label(raw)} is masked or invalid: it normalises to nothing, so it identifies "
                "nobody; nothing was changed"
            )
        requested.append((raw[0], value))
    found = sorted({one_ids[i] for i in requested if i in one_ids})
    if len(found) > 1:
        which = ", ".join(f"{label(i)} → {one_ids[i]}" for i in requested if i in one_ids)
        raise ErasureError(
            f"the identifiers belong to {len(found)} different people ({which}); erase one "
            "person at a time; nothing was changed"
        )
    shared = tuple(i for i in requested if i in suppressed)
    notes += [_suppression_note(i, suppressed[i]) for i in shared]
    unlinked = [i for i in requested if i not in one_ids and i not in suppressed]
    for i in unlinked:
        where = (
            f"it is on {sightings[i]} record(s) of silver.identities but One ID has not linked "
            "it yet"
            if sightings.get(i)
            else "it is not in silver.identities either"
        )
        notes.append(f"{label(i)} is in no One ID component ({where}): it is erased on its own")
    one_id = found[0] if found else None
    identifiers = set(unlinked) | (set(component) if one_id else set())
    if not identifiers:
        raise ErasureError(
            "every identifier given links nothing (shared, a store phone or a placeholder), so "
            "it cannot tell this person's rows from other people's; erase by another identifier "
            "of the person or by --one-id; nothing was changed"
        )
    return Person(
        one_id=one_id,
        identifiers=tuple(sorted(identifiers)),
        requested=tuple(requested),
        shared=shared,
        notes=tuple(notes),
    )


def _matches(identifiers: Iterable[Identifier]) -> Column:
    cond = F.lit(False)
    for id_type, value in identifiers:
        cond = cond | (F.col("identifier_type") == id_type) & (F.col("identifier_value") == value)
    return cond


def normalise_values(spark: SparkSession, identifiers: Sequence[Identifier]) -> list[str | None]:
    """Each raw value normalised as its type requires (the silver normalisers, on one row)."""
    if not identifiers:
        return []
    row = (
        spark.range(1)
        .select(
            *[
                n.normalised_identifier(t, F.lit(v)).alias(f"v{i}")
                for i, (t, v) in enumerate(identifiers)
            ]
        )
        .first()
    )
    return [row[f"v{i}"] for i in range(len(identifiers))]


def _component(identity_map: DataFrame | None, one_id: str) -> list[Identifier]:
    if identity_map is None:
        return []
    rows = identity_map.where(F.col("one_id") == one_id).select(
        "identifier_type", "identifier_value"
    )
    return [(r[0], r[1]) for r in rows.collect()]


MAX_HISTORY_HOPS = 50


def follow_history(
    tables: Tables, identity_map: DataFrame, one_id: str
) -> tuple[set[str], list[str]]:
    """(the one_ids in the identity map that `one_id`'s identifiers moved to, every id passed
    on the way, `one_id` first), following oneid.one_id_history's MERGE and SPLIT rows.

    Why: an id merged away is not in the map any more, yet it names a person: a request quoting
    an old export's one_id must reach the person, not erase nothing and report success.
    """
    if not tables.exists("oneid", "one_id_history"):
        return set(), [one_id]
    history = tables.read("oneid", "one_id_history").where(F.col("new_one_id").isNotNull())
    seen, frontier, current = [one_id], {one_id}, set()
    for _ in range(MAX_HISTORY_HOPS):
        moved = {
            r[0]
            for r in history.where(F.col("old_one_id").isin(sorted(frontier)))
            .select("new_one_id")
            .distinct()
            .collect()
        } - set(seen)
        if not moved:
            break
        seen += sorted(moved)
        mapped = {
            r[0]
            for r in identity_map.where(F.col("one_id").isin(sorted(moved)))
            .select("one_id")
            .distinct()
            .collect()
        }
        current |= mapped
        frontier = moved - mapped
    return current, [i for i in seen if i not in current]


def resolve(spark: SparkSession, tables: Tables, target: Target) -> Person:
    """The person behind `target`, from oneid.identity_map and oneid.suppressed_identifiers."""
    has_map = tables.exists("oneid", "identity_map")
    identity_map = tables.read("oneid", "identity_map") if has_map else None
    if target.one_id:
        component = _component(identity_map, target.one_id)
        if component or identity_map is None:
            return person_from_lookups(target, {}, {}, {}, component, {})
        current, former = follow_history(tables, identity_map, target.one_id)
        if len(current) > 1:
            raise ErasureError(
                f"one_id {target.one_id} was split (oneid.one_id_history): its identifiers are "
                f"now under {', '.join(sorted(current))}, which One ID no longer holds for one "
                "person; erase them one by one (--one-id) after checking, or by an identifier; "
                "nothing was changed"
            )
        if not current:
            # Ids it moved to that the map no longer holds (an erasure stopped after the map was
            # rewritten, before the history): rows still quoting any of them are swept for too.
            return replace(
                person_from_lookups(target, {}, {}, {}, component, {}),
                former_one_ids=tuple(i for i in former if i != target.one_id),
            )
        [now] = current
        person = person_from_lookups(
            Target(one_id=now), {}, {}, {}, _component(identity_map, now), {}
        )
        return replace(
            person,
            former_one_ids=tuple(former),
            notes=(
                f"one_id {target.one_id} was merged into {now} (oneid.one_id_history): the "
                f"person is {now} now, and is erased with every identifier linked to it",
                *person.notes,
            ),
        )
    values = normalise_values(spark, target.identifiers)
    normalised = dict(zip(target.identifiers, values, strict=True))
    wanted = [(t, v) for (t, _), v in normalised.items() if v is not None]
    one_ids: dict[Identifier, str] = {}
    suppressed: dict[Identifier, str] = {}
    sightings: dict[Identifier, int] = {}
    component: list[Identifier] = []
    if wanted and identity_map is not None:
        for r in (
            identity_map.where(_matches(wanted))
            .select("identifier_type", "identifier_value", "one_id")
            .collect()
        ):
            one_ids[(r[0], r[1])] = r[2]
        if len(set(one_ids.values())) == 1:
            one_id = next(iter(one_ids.values()))
            component = [
                (r[0], r[1])
                for r in identity_map.where(F.col("one_id") == one_id)
                .select("identifier_type", "identifier_value")
                .collect()
            ]
    if wanted and tables.exists("oneid", "suppressed_identifiers"):
        for r in (
            tables.read("oneid", "suppressed_identifiers")
            .where(_matches(wanted))
            .select("identifier_type", "identifier_value", "reason")
            .collect()
        ):
            suppressed[(r[0], r[1])] = r[2]
    lonely = [i for i in wanted if i not in one_ids and i not in suppressed]
    if lonely and tables.exists("silver", "identities"):
        for r in (
            tables.read("silver", "identities")
            .where(_matches(lonely))
            .groupBy("identifier_type", "identifier_value")
            .count()
            .collect()
        ):
            sightings[(r[0], r[1])] = r[2]
    seen = [i for i in lonely if sightings.get(i)]
    if seen and identity_map is not None:
        via = linked_record_partners(tables.read("silver", "identities"), identity_map, seen)
        people = sorted(set(via.values()) | set(one_ids.values()))
        if len(people) > 1:
            raise ErasureError(
                f"the records carrying {', '.join(label(i) for i in seen)} (not linked by One "
                f"ID yet) also carry identifiers of {len(people)} different one_ids "
                f"({', '.join(people)}); erase one person at a time, by --one-id after checking; "
                "nothing was changed"
            )
        if via:
            # One ID has not run since these records arrived (a CRM phone changed today): the
            # records' other identifiers, already linked, say whose they are.
            one_id = people[0]
            one_ids.update(dict.fromkeys(seen, one_id))
            component = [*_component(identity_map, one_id), *seen]
            person = person_from_lookups(target, normalised, one_ids, suppressed, component, {})
            return replace(
                person,
                notes=(
                    *person.notes,
                    f"{', '.join(label(i) for i in seen)} is not linked by One ID yet; the "
                    f"records carrying it are {one_id}'s, so the person is erased as {one_id}",
                ),
            )
    return person_from_lookups(target, normalised, one_ids, suppressed, component, sightings)


def linked_record_partners(
    identities: DataFrame, identity_map: DataFrame, unlinked: Sequence[Identifier]
) -> dict[Identifier, str]:
    """identifier → one_id, for the identifiers already in the identity map that share a record
    (silver.identities) with one of `unlinked`: whose records those are, before One ID runs."""
    records = identities.where(_matches(unlinked)).select("source", "record_key").distinct()
    partners = (
        identities.join(records, ["source", "record_key"], "left_semi")
        .select("identifier_type", "identifier_value")
        .distinct()
        .join(identity_map, ["identifier_type", "identifier_value"])
        .select("identifier_type", "identifier_value", "one_id")
    )
    return {(r[0], r[1]): r[2] for r in partners.collect()}


# --- spellings: how a value may appear in a row's text or a file -------------------------------

# Whitespace the normalisers strip (ASCII, NBSP, ideographic space, zero-width space, BOM).
_WS = r"\s\u00a0\u3000\u200b\ufeff"
_PHONE_GAP = "[" + _WS + r"\-\uff0d]{0,2}"  # `138 0013 8000`, `138-0013-8000`, `138－0013`
_CODE_GAP = "[" + _WS + "]{0,2}"  # ` m0002 0971 `
_WORD = "0-9A-Za-z"
_WIDE_DIGIT = r"0-9\uff10-\uff19"  # ASCII and full-width digits
_WIDE_WORD = _WIDE_DIGIT + r"A-Za-z\uff21-\uff3a\uff41-\uff5a"  # and letters in both widths
# Letters of the scripts nicks and pins are written in (Latin with accents, kana, CJK, Hangul,
# full-width forms): a nick is not found inside a longer one, `橘子汽水123` never inside another
# person's `甜甜橘子汽水123`. Escapes, so the class means the same to Java and to Python.
_NICK_WORD = _WIDE_WORD + r"_\-\u00c0-\u024f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"


def _bounded(body: str, word: str = _WORD + "_-") -> str:
    """`body` not inside a longer word: `13800138000` never matches in `913800138000`."""
    return f"(?<![{word}])(?:{body})(?![{word}])"


def _either_width(c: str) -> str:
    """A class matching `c` in ASCII and in full width (`１` for `1`), a letter in either case:
    the normalisers read full-width forms (silver.normalise._half_width). Escapes, so the class
    means the same to Java and to Python."""
    forms = {f for f in (c, c.lower(), c.upper()) if len(f) == 1}  # `ß`.upper() is `SS`
    forms |= {chr(ord(f) + 0xFEE0) for f in forms if "!" <= f <= "~"}
    return "[" + "".join(f"\\u{ord(f):04x}" for f in sorted(forms)) + "]"


def _both_widths(chars: str) -> str:
    """The inside of a class: each ASCII character of `chars` and its full-width form."""
    return "".join(f"\\u{ord(x):04x}" for c in chars for x in (c, chr(ord(c) + 0xFEE0)))


def _json_escaped(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


def value_patterns(id_type: str, value: str) -> list[str]:
    """Regular expressions (valid for Java and Python) that find `value` of `id_type` in text,
    in every spelling its normaliser accepts; [] for a value too short to sweep for.

    Why: bronze keeps values as delivered, quarantine keeps raw lines; the same phone is
    `13800138000` in silver and `+86 138-0013-8000` in a raw line.
    """
    if len(value) < MIN_SWEEP_LENGTH:
        return []
    if id_type == "phone" and value.isascii() and value.isdigit():
        body = _PHONE_GAP.join(map(_either_width, value))
        prefix = f"(?:{_either_width('+')}|{_either_width('0') * 2})?"
        prefix += _either_width("8") + _either_width("6") + _PHONE_GAP
        return [f"(?<![{_WIDE_DIGIT}])(?:{prefix})?{body}(?![{_WIDE_DIGIT}])"]
    if id_type in ("member_id", "card_no"):
        body = _CODE_GAP.join(map(_either_width, value))
        return [_bounded(body, _WIDE_WORD)]
    if id_type == "email":
        body = "".join(map(_either_width, value))
        tail = f"(?![{_WIDE_WORD}{_both_widths('_-')}]|{_either_width('.')}[{_WIDE_WORD}])"
        return [f"(?<![{_WIDE_WORD}{_both_widths('._%+-')}]){body}{tail}"]
    spellings = dict.fromkeys([value, _json_escaped(value)])
    return [_bounded(re.escape(s), _NICK_WORD) for s in spellings]


def hash_spellings(id_type: str, value: str, salt: str | None) -> list[str]:
    """Hex digests a phone or e-mail travels as: gold's salted SHA-256 (pii.salted_hash), and
    the plain SHA-256 / MD5 an export for ad platforms carries."""
    if id_type not in ("phone", "email"):
        return []
    digests = [hashlib.sha256(value.encode()).hexdigest(), hashlib.md5(value.encode()).hexdigest()]
    if salt:
        digests.append(salted_sha256(value, salt))
    return digests


def salted_sha256(value: str, salt: str) -> str:
    """Hex SHA-256 of `salt:value`, gold's hash (lakehouse.gold.people.pii.salted_hash)."""
    return hashlib.sha256(f"{salt}:{value.strip()}".encode()).hexdigest()


def person_patterns(person: Person, salt: str | None) -> tuple[list[str], list[str]]:
    """(patterns, sentences about values too short to sweep for)."""
    patterns: list[str] = []
    skipped: list[str] = []
    for id_type, value in person.identifiers:
        found = value_patterns(id_type, value)
        if not found:
            skipped.append(
                f"{label((id_type, value))} is shorter than {MIN_SWEEP_LENGTH} characters: it is "
                "matched exactly in its own columns only, never inside other text"
            )
        patterns += found
        patterns += [
            f"(?i:{_bounded(d, '0-9A-Fa-f')})" for d in hash_spellings(id_type, value, salt)
        ]
    for one_id in (person.one_id, *person.former_one_ids):
        if one_id:
            patterns.append(_bounded(re.escape(one_id)))
    return list(dict.fromkeys(patterns)), skipped


def combine(patterns: Sequence[str]) -> str | None:
    return "|".join(f"(?:{p})" for p in patterns) if patterns else None


def extra_spellings(found: Iterable[str], patterns: Sequence[str]) -> list[str]:
    """Literal patterns for raw spellings (from bronze) the tolerant patterns do not match.

    Why: the normalisers may accept a spelling the patterns do not foresee; whatever was
    delivered is then swept for as delivered."""
    compiled = re.compile(combine(patterns) or "(?!)")
    extra = []
    for raw in sorted(set(found)):
        text = raw.strip()
        if len(text) >= MIN_SWEEP_LENGTH and not compiled.search(text):
            extra.append(_bounded(re.escape(text), "0-9A-Za-z"))
    return extra


# Order numbers of these sources are the platforms' own, long and unique (Tmall 18-19 digits, JD
# 12, mall M + 14); a POS ticket number is short and reused across stores, so it is not one.
NUMBERED_ORDER_SOURCES = ("tmall_orders", "jd_orders", "mall_orders")
MIN_ORDER_NUMBER_LENGTH = 10


def order_number_patterns(records: Mapping[str, Iterable[str]]) -> list[str]:
    """Patterns for the person's own order numbers, as raw lines carry them.

    Why: a line bronze could not read (wrong field count, invalid JSON) sits in
    bronze.quarantine as raw text; no key or lineage points at it, and when the buyer's nick is
    short and the phone masked, no value pattern finds it either. Its order number does.
    """
    numbers = {
        key.split(":", 1)[1]
        for source in NUMBERED_ORDER_SOURCES
        for key in records.get(source, ())
        if ":" in key
    }
    return [
        _bounded(re.escape(number), _WORD)
        for number in sorted(numbers)
        if len(number) >= MIN_ORDER_NUMBER_LENGTH
    ]


# --- where the person's rows are ---------------------------------------------------------------


@dataclass(frozen=True)
class BronzeRecord:
    """How silver keys a bronze dataset's rows, and which raw columns carry identifiers.

    The key expressions mirror silver's (orders, order_lines, members, campaigns): a unit test
    holds them equal, so every delivered version of a record is found, not only the latest."""

    source: str  # silver.identities `source` of the records
    key: Callable[[], Column]
    needs: tuple[str, ...]  # raw columns the key is computed from
    identifiers: Mapping[str, str] = field(default_factory=dict)  # raw column -> type


def _touch_key() -> Column:
    """silver.campaigns.campaign_touches' touch_key, from the raw columns."""
    phone = F.coalesce(n.phone(F.col("phone")), n.non_blank(F.col("phone")))
    return attribute_hash(
        [
            n.code(F.col("campaign_id")),
            n.non_blank(F.col("touch_time")),
            n.code(F.col("member_id")),
            phone,
            n.non_blank(F.col("unionid")),
        ]
    )


def _tmall_key() -> Column:
    return F.concat(F.lit("TMALL:"), n.order_number(F.col("order_no")))


BRONZE_RECORDS: dict[str, BronzeRecord] = {
    "tmall_orders": BronzeRecord(
        "tmall_orders",
        _tmall_key,
        ("order_no",),
        {"buyer_nick": "tmall_nick", "receiver_mobile": "phone"},
    ),
    "tmall_order_items": BronzeRecord("tmall_orders", _tmall_key, ("order_no",)),
    "jd_orders": BronzeRecord(
        "jd_orders",
        lambda: F.concat(F.lit("JD:"), n.order_number(F.col("orderId"))),
        ("orderId",),
        {"pin": "jd_pin", "consigneeInfo.mobile": "phone"},
    ),
    "mall_orders": BronzeRecord(
        "mall_orders",
        lambda: F.concat(F.lit("MALL:"), n.non_blank(F.col("order_id"))),
        ("order_id",),
        {"member_id": "member_id", "unionid": "unionid", "openid": "openid", "phone": "phone"},
    ),
    "pos_sales": BronzeRecord(
        "pos_sales",
        lambda: pos_key(n.code(F.col("store_code")), n.non_blank(F.col("ticket_no"))),
        ("store_code", "ticket_no"),
        {"member_card_no": "card_no", "member_phone": "phone"},
    ),
    "crm_members": BronzeRecord(
        "crm_members",
        lambda: n.code(F.col("member_id")),
        ("member_id",),
        {
            "member_id": "member_id",
            "card_no": "card_no",
            "phone": "phone",
            "email": "email",
            "unionid": "unionid",
        },
    ),
    "campaign_touches": BronzeRecord(
        TOUCH_SOURCE,
        _touch_key,
        ("campaign_id", "touch_time", "member_id", "phone", "unionid"),
        {"member_id": "member_id", "phone": "phone", "unionid": "unionid"},
    ),
}


def _has(df: DataFrame, column: str) -> bool:
    top = column.split(".")[0]
    if top not in df.columns:
        return False
    if "." not in column:
        return True
    try:
        df.select(F.col(column))
    except Exception:
        return False
    return True


def row_text(df: DataFrame) -> Column:
    """The whole row as JSON text: every column, nested ones included, in one string."""
    return F.to_json(F.struct(*[F.col(f"`{c}`") for c in df.columns]))


@dataclass(frozen=True)
class Evidence:
    """What marks a row as the person's, in any table."""

    pattern: str | None  # combined regular expression over the row's JSON text
    one_id: str | None
    values: Mapping[str, frozenset[str]]  # identifier type -> normalised values (never shared)
    records: Mapping[str, frozenset[str]]  # silver.identities source -> record keys
    lineage: Mapping[str, frozenset[int]]  # bronze _source_file -> line numbers

    def keys(self, sources: Iterable[str] | None = None) -> list[str]:
        wanted = set(self.records) if sources is None else set(sources)
        return sorted({k for s, keys in self.records.items() if s in wanted for k in keys})

    def identifier_hit(self, df: DataFrame, spec: BronzeRecord) -> Column | None:
        parts = [
            n.normalised_identifier(id_type, F.col(column)).isin(sorted(self.values[id_type]))
            for column, id_type in spec.identifiers.items()
            if id_type in self.values and _has(df, column)
        ]
        return reduce(Column.__or__, parts) if parts else None

    def condition(self, df: DataFrame, table: str) -> Column | None:
        """True for the person's rows of `table` (a `layer.name`), None when nothing could be."""
        cols = set(df.columns)
        parts: list[Column] = []
        if self.pattern:
            parts.append(row_text(df).rlike(self.pattern))
        if self.one_id and "one_id" in cols:
            parts.append(F.col("one_id") == self.one_id)
        orders = self.keys(ORDER_RECORD_SOURCES)
        if "order_key" in cols and orders:
            parts.append(F.col("order_key").isin(orders))
        touches = self.keys([TOUCH_SOURCE])
        if "touch_key" in cols and touches:
            parts.append(F.col("touch_key").isin(touches))
        if {"source", "record_key"} <= cols:
            parts += [
                (F.col("source") == source) & F.col("record_key").isin(sorted(keys))
                for source, keys in sorted(self.records.items())
                if keys
            ]
        elif "record_key" in cols and self.keys():
            parts.append(F.col("record_key").isin(self.keys()))
        for file_col, line_col in (("_source_file", "_line_no"), ("source_file", "line_no")):
            if {file_col, line_col} <= cols:
                parts += [
                    (F.col(file_col) == path) & F.col(line_col).isin(sorted(lines))
                    for path, lines in sorted(self.lineage.items())
                ]
        layer, _, name = table.partition(".")
        spec = BRONZE_RECORDS.get(name) if layer == "bronze" else None
        if spec is not None and all(_has(df, c) for c in spec.needs):
            keys = sorted(self.records.get(spec.source, ()))
            if keys:
                parts.append(spec.key().isin(keys))
            hit = self.identifier_hit(df, spec)
            if hit is not None:
                parts.append(hit)
        if not parts:
            return None
        return F.coalesce(reduce(Column.__or__, parts), F.lit(False))


# --- scanning many small tables at once -------------------------------------------------------

# Whole-stage code generation compiles one class per table scanned; for a scan over every table
# of the warehouse (a handful of expressions, every row once) compiling costs more than it saves.
SCAN_CONF = {"spark.sql.codegen.wholeStage": "false"}


def union_all(spark: SparkSession, parts: Sequence[DataFrame]) -> DataFrame:
    """One frame of many tables' scans, in as many tasks as the session has cores (one task per
    small file of every table costs more in scheduling than in reading)."""
    union = reduce(DataFrame.unionByName, parts)
    return union.coalesce(max(1, spark.sparkContext.defaultParallelism))


# --- the warehouse's files ---------------------------------------------------------------------


def fs_path(location: str) -> str:
    """`location` as file listings spell it: a plain path locally, the URI elsewhere."""
    local = local_path(location)
    return str(local) if local is not None else location.rstrip("/")


def _hadoop_fs(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hpath


def list_files(spark: SparkSession, root: str) -> list[str]:
    """Every file under `root`, hidden ones included (os.walk locally, Hadoop elsewhere)."""
    local = local_path(root)
    if local is not None:
        if not local.exists():
            return []
        return sorted(str(Path(d) / f) for d, _, files in os.walk(local) for f in files)
    fs, hpath = _hadoop_fs(spark, root)
    if not fs.exists(hpath):
        return []
    # Hadoop lists qualified paths (hdfs://nn:8020/lakehouse/...) whatever the spelling of
    # `root` (hdfs:///lakehouse): spell them under `root`, as table_files matches them.
    qualified = str(fs.makeQualified(hpath).toString()).rstrip("/")
    found = []
    it = fs.listFiles(hpath, True)
    while it.hasNext():
        listed = str(it.next().getPath().toString())
        if listed.startswith(qualified + "/"):
            listed = root.rstrip("/") + listed[len(qualified) :]
        found.append(listed)
    return sorted(found)


@dataclass(frozen=True)
class TableFiles:
    """A table's files by kind: data (current and old), log text, log checkpoints."""

    data: list[str]
    log_text: list[str]
    checkpoints: list[str]


def table_files(files: Iterable[str], table_root: str) -> TableFiles:
    prefix = table_root.rstrip("/") + "/"
    data, text, checkpoints = [], [], []
    for f in files:
        if not f.startswith(prefix):
            continue
        rel = f[len(prefix) :]
        name = rel.rsplit("/", 1)[-1]
        if rel.startswith("_delta_log/"):
            if name.endswith(".parquet"):
                checkpoints.append(f)
            elif not name.startswith("."):  # Hadoop's .crc checksums of checksums: binary
                text.append(f)
        elif name.endswith(".parquet") and not name.startswith("."):
            data.append(f)
    return TableFiles(data, text, checkpoints)


# The parts of a checkpoint that can hold values: file stats and partition values.
CHECKPOINT_SCHEMA = StructType(
    [
        StructField(
            "add",
            StructType(
                [
                    StructField("path", StringType()),
                    StructField("partitionValues", MapType(StringType(), StringType())),
                    StructField("stats", StringType()),
                ]
            ),
        ),
        StructField(
            "remove",
            StructType(
                [
                    StructField("path", StringType()),
                    StructField("partitionValues", MapType(StringType(), StringType())),
                    StructField("stats", StringType()),
                ]
            ),
        ),
    ]
)


def current_rows(
    spark: SparkSession, tables: Tables, names: Sequence[tuple[str, str]], evidence: Evidence
) -> tuple[dict[str, int], set[str]]:
    """The person's rows per table (the current versions), and every current data file; one
    Spark job over every table."""
    parts = []
    for layer, name in names:
        df = tables.read(layer, name)
        cond = evidence.condition(df, f"{layer}.{name}")
        parts.append(
            df.select(
                F.lit(f"{layer}.{name}").alias("table"),
                F.col("_metadata.file_path").alias("file"),
                (cond if cond is not None else F.lit(False)).cast("int").alias("hit"),
            )
        )
    if not parts:
        return {}, set()
    found = union_all(spark, parts).groupBy("table", "file").agg(F.sum("hit").alias("hits"))
    counts: dict[str, int] = {}
    current: set[str] = set()
    for r in found.collect():
        current.add(_plain(r.file))
        if r.hits:
            counts[r.table] = counts.get(r.table, 0) + int(r.hits)
    return counts, current


def trace_files(
    spark: SparkSession,
    tables: Tables,
    names: Sequence[tuple[str, str]],
    files: Sequence[str],
    evidence: Evidence,
    current: Iterable[str] = (),
) -> dict[str, set[str]]:
    """`layer.name` -> files of the table that hold the person besides its current rows: data
    files of old versions (what VACUUM would delete), commits, checksums and checkpoints (what
    it would not). `current` data files are skipped (their rows are counted through Delta),
    unless the table has deletion vectors: a deleted row stays in its file until rewritten."""
    skip = set(current)
    data_parts, text_files, checkpoint_files, owner = [], [], [], {}
    for layer, name in names:
        root = fs_path(tables.path(layer, name))
        found = table_files(files, root)
        for f in (*found.log_text, *found.checkpoints):
            owner[f] = f"{layer}.{name}"
        text_files += found.log_text
        checkpoint_files += found.checkpoints
        vectors = any(
            f.rsplit("/", 1)[-1].startswith("deletion_vector_")
            for f in files
            if f.startswith(root + "/")
        )
        data = [f for f in found.data if vectors or _plain(f) not in skip]
        if not data:
            continue
        schema = tables.read(layer, name).schema
        df = (
            spark.read.schema(schema)
            .option("recursiveFileLookup", "true")
            .option("ignoreCorruptFiles", "false")
            .parquet(*data)
        )
        cond = evidence.condition(df, f"{layer}.{name}")
        if cond is not None:
            data_parts.append(
                df.where(cond).select(
                    F.lit(f"{layer}.{name}").alias("table"),
                    F.col("_metadata.file_path").alias("file"),
                )
            )
    hits: dict[str, set[str]] = {}
    if data_parts:
        for r in union_all(spark, data_parts).distinct().collect():
            hits.setdefault(r.table, set()).add(r.file)
    if evidence.pattern:
        log_hits = []
        if text_files:
            log_hits += (
                spark.read.text(text_files)
                .where(F.col("value").rlike(evidence.pattern))
                .select(F.col("_metadata.file_path").alias("file"))
                .distinct()
                .collect()
            )
        if checkpoint_files:
            checkpoints = spark.read.schema(CHECKPOINT_SCHEMA).parquet(*checkpoint_files)
            log_hits += (
                checkpoints.where(row_text(checkpoints).rlike(evidence.pattern))
                .select(F.col("_metadata.file_path").alias("file"))
                .distinct()
                .collect()
            )
        for r in log_hits:
            table = owner.get(_plain(r.file)) or owner.get(r.file)
            if table:
                hits.setdefault(table, set()).add(r.file)
    return hits


def _plain(uri: str) -> str:
    """`file:///a/b` -> `/a/b` (Spark reports file paths as URIs)."""
    return unquote(re.sub(r"^file:(//)?", "", uri))


def _outside_tables(files: Iterable[str], table_roots: Iterable[str]) -> list[str]:
    roots = tuple(r.rstrip("/") + "/" for r in table_roots)
    return [f for f in files if not f.startswith(roots)]


def file_hits(paths: Iterable[str], pattern: str | None) -> list[str]:
    """Local files whose text holds the pattern (decoded as UTF-8, then GB18030)."""
    if not pattern:
        return []
    compiled = re.compile(pattern)
    hits = []
    for path in paths:
        try:
            raw = Path(path).read_bytes()
        except OSError:
            continue
        texts = [raw.decode("utf-8", errors="replace")]
        with suppress(UnicodeDecodeError):
            texts.append(raw.decode("gb18030"))
        if any(compiled.search(t) for t in texts):
            hits.append(path)
    return hits


def scrub_lines(text: str, pattern: str) -> tuple[str, int]:
    """`text` without the lines holding the pattern, and how many went (a CSV keeps its header
    and everyone else's lines)."""
    compiled = re.compile(pattern)
    kept, removed = [], 0
    for line in text.splitlines(keepends=True):
        if compiled.search(line):
            removed += 1
        else:
            kept.append(line)
    return "".join(kept), removed


def clean_files(
    paths: Sequence[str], pattern: str, *, dry_run: bool
) -> tuple[list[str], list[str]]:
    """Delete generated pages, rewrite line files without the person's lines.

    Returns (deleted, rewritten). A rewritten file's Hadoop checksum (`.name.crc`) is deleted
    too, or the next Spark read of it fails its checksum."""
    deleted, rewritten = [], []
    for path in paths:
        p = Path(path)
        checksum = p.with_name(f".{p.name}.crc")
        if p.suffix.lower() in LINE_FILES:
            rewritten.append(path)
            if not dry_run:
                text = p.read_bytes().decode("utf-8", errors="surrogateescape")
                kept, _ = scrub_lines(text, pattern)
                p.write_bytes(kept.encode("utf-8", errors="surrogateescape"))
        else:
            deleted.append(path)
            if not dry_run:
                p.unlink(missing_ok=True)
        if not dry_run and checksum.exists():
            checksum.unlink()
    return deleted, rewritten


# --- replacing a table without the person ------------------------------------------------------


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def rewrite_table(
    spark: SparkSession,
    tables: Tables,
    layer: str,
    name: str,
    evidence: Evidence,
    request_id: str,
    expected: int,
) -> None:
    """Replace the table by a fresh Delta table holding every row but the person's.

    Same schema, partitioning and properties; a new history (version 0 is this rewrite). The
    new table is written beside the old one and checked (row count down by exactly `expected`)
    before the two folders are swapped; only then is the old folder deleted."""
    from delta.tables import DeltaTable

    path = tables.path(layer, name)
    parent = path.rsplit("/", 1)[0]
    fresh, old = f"{parent}/{FRESH}{name}-{request_id}", f"{parent}/{OLD}{name}-{request_id}"
    detail = DeltaTable.forPath(spark, path).detail().first()
    partitions = list(detail["partitionColumns"] or [])
    properties = dict(detail["properties"] or {})
    current = spark.read.format("delta").load(path)
    cond = evidence.condition(current, f"{layer}.{name}")
    keep = current.where(~cond) if cond is not None else current
    before = current.count()
    writer = keep.write.format("delta").mode("errorifexists")
    if partitions:
        writer = writer.partitionBy(*partitions)
    writer.save(fresh)
    fs, fresh_path = _hadoop_fs(spark, fresh)
    if properties:
        assignments = ", ".join(f"{_quote(k)} = {_quote(v)}" for k, v in sorted(properties.items()))
        spark.sql(f"ALTER TABLE delta.`{fresh}` SET TBLPROPERTIES ({assignments})")
    after = spark.read.format("delta").load(fresh).count()
    if before - after != expected:
        fs.delete(fresh_path, True)
        raise ErasureError(
            f"{layer}.{name} changed while it was being erased ({before - after} rows of the "
            f"person now, {expected} when planned): is a job writing? Run the erasure again "
            "when none is; this table was left as it was"
        )
    jvm = spark.sparkContext._jvm
    table_path, old_path = jvm.org.apache.hadoop.fs.Path(path), jvm.org.apache.hadoop.fs.Path(old)
    if not fs.rename(table_path, old_path):
        fs.delete(fresh_path, True)
        raise ErasureError(f"could not move {path} aside to {old}; {layer}.{name} is unchanged")
    if not fs.rename(fresh_path, table_path):
        fs.rename(old_path, table_path)
        raise ErasureError(f"could not move {fresh} to {path}; {layer}.{name} was put back")
    fs.delete(old_path, True)
    _forget(spark, layer, name, path)


def _forget(spark: SparkSession, layer: str, name: str, path: str) -> None:
    """Drop what this session cached about the replaced table (Delta's log, the catalog); the
    other tables' cached snapshots stay (rebuilding all of them costs more than the erasure)."""
    jvm = spark.sparkContext._jvm
    jvm.org.apache.spark.sql.delta.DeltaLog.invalidateCache(
        spark._jsparkSession, jvm.org.apache.hadoop.fs.Path(path)
    )
    spark.catalog.refreshByPath(path)
    if spark.catalog.tableExists(f"{layer}.{name}"):
        spark.catalog.refreshTable(f"{layer}.{name}")


def recover(spark: SparkSession, warehouse: str) -> list[str]:
    """Finish or undo table swaps an interrupted erasure left behind; sentences saying what.

    A `.erased-<t>-<id>` folder is the old table: deleted when `<t>` (the new one) is in place,
    moved back otherwise. A `.erasing-<t>-<id>` folder is an unfinished new table: deleted."""
    from lakehouse.tables import LAYERS

    jvm = spark.sparkContext._jvm
    done = []
    for layer in LAYERS:
        fs, folder = _hadoop_fs(spark, f"{warehouse.rstrip('/')}/{layer}")
        if not fs.exists(folder):
            continue
        for status in fs.listStatus(folder):
            entry = status.getPath().getName()
            if not status.isDirectory() or not entry.startswith((FRESH, OLD)):
                continue
            kind = OLD if entry.startswith(OLD) else FRESH
            table, request = entry[len(kind) :].rsplit("-", 1)
            target = jvm.org.apache.hadoop.fs.Path(folder, table)
            twin = FRESH if kind == OLD else OLD
            unfinished = fs.exists(
                jvm.org.apache.hadoop.fs.Path(folder, f"{twin}{table}-{request}")
            )
            if unfinished and fs.exists(target):
                # Interrupted between the two moves, and `<t>` written since (a daily job made
                # a new table): neither folder is ours to delete; the old one is the history.
                done.append(
                    f"{layer}.{table}: left {entry} alone: the table was written again after an "
                    f"interrupted erasure moved it aside; check {table} against {OLD}{table}-"
                    f"{request}, put the right one back by hand, then erase again"
                )
                continue
            if kind == OLD and not fs.exists(target):
                fs.rename(status.getPath(), target)
                done.append(
                    f"{layer}.{table}: put back the copy an interrupted erasure moved aside"
                )
            else:
                fs.delete(status.getPath(), True)
                done.append(f"{layer}.{table}: removed {entry} left by an interrupted erasure")
    if done:
        spark.sparkContext._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
    return done


# --- the log ----------------------------------------------------------------------------------


def log_record(
    request_id: str,
    requested_at: datetime,
    reason: str | None,
    person: Person,
    salt: str,
    rows: Mapping[str, int],
    rewritten: Sequence[str],
    files_deleted: Sequence[str],
    files_rewritten: Sequence[str],
    verified: bool,
    seconds: float,
) -> tuple:
    """One ops.erasure_log row: identifier types and salted hashes, never a value.

    Why: the log must prove the request was carried out without becoming a copy of what was
    erased; the hash is gold's, so a later "was this phone erased?" is answered by hashing it."""

    def hashed(identifiers: Iterable[Identifier]) -> list[tuple[str, str]]:
        return [(t, salted_sha256(v, salt)) for t, v in identifiers]

    return (
        request_id,
        requested_at.astimezone(UTC),
        reason,
        hashed(person.requested),
        hashed(person.identifiers),
        person.one_id,
        dict(rows),
        list(rewritten),
        list(files_deleted),
        list(files_rewritten),
        verified,
        round(seconds, 3),
    )


def previous_requests(tables: Tables, person: Person, salt: str | None) -> list[tuple[str, str]]:
    """(request_id, time) of earlier erasures of any of the person's identifiers or one_id."""
    if not tables.exists(*ERASURE_LOG):
        return []
    log = tables.read(*ERASURE_LOG)
    cond = F.lit(False)
    if person.one_id:
        cond = cond | (F.col("one_id") == person.one_id)
    if salt:
        hashes = [salted_sha256(v, salt) for _, v in person.identifiers]
        if hashes:
            cond = cond | F.exists("identifiers", lambda x: x["value_sha256"].isin(hashes))
    return [
        (r.request_id, r.requested_at.isoformat(sep=" ", timespec="seconds"))
        for r in log.where(cond).orderBy("requested_at").collect()
    ]


# --- the entry point ---------------------------------------------------------------------------


@dataclass
class ErasureResult:
    """What an erasure found and did (or, in a dry run, would do)."""

    person: Person
    dry_run: bool
    request_id: str | None = None
    rows: dict[str, int] = field(default_factory=dict)  # table -> the person's rows
    history: dict[str, int] = field(default_factory=dict)  # table -> old files holding a value
    rewritten: list[str] = field(default_factory=list)
    files_deleted: list[str] = field(default_factory=list)
    files_rewritten: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    spellings: int = 0
    delivery_dates: list[date] = field(default_factory=list)
    previous: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def found(self) -> bool:
        return bool(self.rows or self.history or self.files_deleted or self.files_rewritten)

    @property
    def exit_code(self) -> int:
        """0 done (or nothing left after an earlier erasure); 1 never seen, or traces left."""
        if self.leftovers:
            return 1
        if not self.found and not self.previous:
            return 1
        return 0

    def describe(self) -> str:
        doing = "Dry run: would erase" if self.dry_run else "Erasing"
        lines = [f"{doing if self.found else 'Looked for'} {self.person.describe()}"]
        lines += [f"  note: {note}" for note in (*self.person.notes, *self.notes)]
        if not self.found:
            if self.previous:
                when = ", ".join(f"request {r} at {t} UTC" for r, t in self.previous)
                lines.append(f"Nothing left to erase: no table or file holds it ({when}).")
            else:
                lines.append(
                    "Nothing to erase: no table or file under the warehouse holds it (never "
                    "seen); nothing was changed."
                )
            return "\n".join(lines)
        verb = "would delete" if self.dry_run else "deleted"
        width = max(len(t) for t in (*self.rows, *self.history, "table"))
        lines.append(f"  {'table':<{width}}  rows {verb}")
        for table in sorted(set(self.rows) | set(self.history)):
            old = self.history.get(table)
            extra = f"  (+ {old} old file(s) holding a value)" if old else ""
            lines.append(f"  {table:<{width}}  {self.rows.get(table, 0):>6}{extra}")
        lines.append(f"  total {sum(self.rows.values())} row(s) in {len(self.rows)} table(s)")
        if self.spellings:
            lines.append(
                f"  {self.spellings} delivered spelling(s) of the identifiers found in bronze"
            )
        tables = len(set(self.rows) | set(self.history))
        if self.dry_run:
            lines.append(
                f"  {tables} table(s) would be rewritten without the person (their Delta history "
                "truncated: old versions, commits and checkpoints deleted)"
            )
        else:
            lines.append(
                f"  {len(self.rewritten)} table(s) rewritten without the person; their old data "
                "files, commits, checksums and checkpoints were deleted (history truncated)"
            )
        for path in self.files_deleted:
            lines.append(f"  file {'to delete' if self.dry_run else 'deleted'}: {path}")
        for path in self.files_rewritten:
            lines.append(
                f"  file {'to rewrite' if self.dry_run else 'rewritten'} without the person's "
                f"lines: {path}"
            )
        if self.delivery_dates:
            days = ", ".join(d.isoformat() for d in self.delivery_dates)
            lines.append(
                f"  note: the landing zone still holds the delivered files of {days}; rerunning "
                "bronze for those days would bring the person back, and sources keep delivering "
                "them until they erase the person too"
            )
        if self.dry_run:
            lines.append("Dry run: nothing was changed.")
        elif self.leftovers:
            lines.append("NOT COMPLETE: these still hold one of the person's values:")
            lines += [f"  {f}" for f in self.leftovers]
            lines.append(
                f"Request {self.request_id} recorded in ops.erasure_log with verified = false; "
                "remove what is listed (or run the erasure again once no job writes)."
            )
        else:
            lines.append(
                "Verified: no file of any table and no other file under the warehouse holds "
                "the person's values."
            )
            lines.append(f"Request {self.request_id} recorded in ops.erasure_log.")
        return "\n".join(lines)


def _collect_bronze(
    spark: SparkSession, tables: Tables, evidence: Evidence, datasets: Sequence[str]
) -> list:
    """The person's rows of these bronze datasets: (source, key, file, line, date, spellings)."""
    parts = []
    for dataset in datasets:
        spec = BRONZE_RECORDS[dataset]
        if not tables.exists("bronze", dataset):
            continue
        df = tables.read("bronze", dataset)
        if not all(_has(df, c) for c in spec.needs):
            continue
        cond = evidence.condition(df, f"bronze.{dataset}")
        if cond is None:
            continue
        spellings = [
            F.struct(
                F.lit(id_type).alias("t"),
                F.when(
                    n.normalised_identifier(id_type, F.col(column)).isin(
                        sorted(evidence.values[id_type])
                    ),
                    F.col(column).cast("string"),
                ).alias("v"),
            )
            for column, id_type in spec.identifiers.items()
            if id_type in evidence.values and _has(df, column)
        ]
        empty = F.array().cast("array<struct<t:string,v:string>>")
        parts.append(
            df.where(cond).select(
                F.lit(spec.source).alias("source"),
                spec.key().alias("record_key"),
                F.col("_source_file").alias("file"),
                F.col("_line_no").alias("line"),
                F.col("_delivery_date").cast("date").alias("delivery_date"),
                (F.array(*spellings) if spellings else empty).alias("spellings"),
            )
        )
    if not parts:
        return []
    return union_all(spark, parts).collect()


def _with_bronze(evidence: Evidence, rows: Sequence) -> Evidence:
    records = {s: set(k) for s, k in evidence.records.items()}
    lineage = {f: set(lines) for f, lines in evidence.lineage.items()}
    for r in rows:
        if r.record_key is not None:
            records.setdefault(r.source, set()).add(r.record_key)
        if r.file is not None and r.line is not None:
            lineage.setdefault(r.file, set()).add(int(r.line))
    return Evidence(
        evidence.pattern,
        evidence.one_id,
        evidence.values,
        {s: frozenset(k) for s, k in records.items()},
        {f: frozenset(v) for f, v in lineage.items()},
    )


def _rewrite_order(names: Iterable[str]) -> list[str]:
    last = {t: i for i, t in enumerate(REWRITE_LAST)}
    return sorted(names, key=lambda t: (last.get(t, -1), t))


def file_roots(settings: Settings) -> list[str]:
    """The warehouse and, when configured outside it, the data docs and export folders."""
    from lakehouse.quality.policy import load_quality_settings

    roots = [settings.warehouse]
    # Without a quality configuration, data docs can only be under the warehouse.
    with suppress(Exception):
        roots.append(load_quality_settings().docs_dir(settings.warehouse))
    if settings.gold.people.export_dir:
        roots.append(settings.gold.people.export_dir)
    roots = [fs_path(r) for r in roots]
    base = roots[0] + "/"
    return list(dict.fromkeys([roots[0], *[r for r in roots[1:] if not r.startswith(base)]]))


def _relative(path: str, roots: Sequence[str]) -> str:
    for root in roots:
        if path.startswith(root.rstrip("/") + "/"):
            return path[len(root.rstrip("/")) + 1 :]
    return path


@dataclass(frozen=True)
class Survey:
    """Where the person is: rows per table, other files per table, files outside tables."""

    rows: dict[str, int]
    traces: dict[str, set[str]]
    files: list[str]

    @property
    def history(self) -> dict[str, int]:
        return {t: len(found) for t, found in self.traces.items()}

    @property
    def clean(self) -> bool:
        return not (self.rows or self.traces or self.files)


def survey(
    spark: SparkSession,
    tables: Tables,
    names: Sequence[tuple[str, str]],
    roots: Sequence[str],
    evidence: Evidence,
) -> Survey:
    """Every trace of the person: their rows in every table, every other file of every table
    holding a value (old versions, commits, checkpoints), and local files outside tables."""
    rows, current = current_rows(spark, tables, names, evidence)
    files = [f for root in roots for f in list_files(spark, root)]
    traces = trace_files(spark, tables, names, files, evidence, current)
    table_roots = [fs_path(tables.path(layer, name)) for layer, name in names]
    table_roots.append(fs_path(tables.path(*ERASURE_LOG)))
    other = [
        f
        for f in _outside_tables(files, table_roots)
        # a file of a Delta table is never cleaned as a loose file, whatever its folder
        if local_path(f) is not None and "/_delta_log/" not in f and not f.endswith(".parquet")
    ]
    return Survey(rows, traces, file_hits(other, evidence.pattern))


def erase(
    spark: SparkSession,
    settings: Settings,
    target: Target,
    *,
    reason: str | None = None,
    dry_run: bool = False,
) -> ErasureResult:
    """Erase the person behind `target` from every table and file under the warehouse.

    Raises ErasureError (nothing changed) for a request that cannot be carried out as asked,
    JobError when the PII salt is missing (it is needed for the log)."""
    with session_conf(spark, SCAN_CONF):
        return _erase(spark, settings, target, reason, dry_run)


def _erase(
    spark: SparkSession,
    settings: Settings,
    target: Target,
    reason: str | None,
    dry_run: bool,
) -> ErasureResult:
    from lakehouse.gold.people.pii import salt as pii_salt
    from lakehouse.maintenance import warehouse_tables

    started = time.monotonic()
    requested_at = datetime.now(UTC)
    salt = (
        pii_salt(settings.gold.people)
        if not dry_run
        else os.environ.get(settings.gold.people.salt_env)
    )
    tables = Tables(spark, settings.warehouse)
    notes = [] if dry_run else recover(spark, settings.warehouse)
    if stuck := [note for note in notes if "by hand" in note]:
        raise ErasureError(
            "an earlier erasure was interrupted and a table was written since: "
            + "; ".join(stuck)
            + "; nothing was changed"
        )
    person = resolve(spark, tables, target)
    patterns, short = person_patterns(person, salt)
    notes += short
    if reason and combine(patterns) and re.search(combine(patterns) or "", reason):
        raise ErasureError(
            "--reason holds one of the values being erased; the log must not: say why without "
            "it (e.g. 'PIPL request 2026-031')"
        )
    names = [
        (layer, name)
        for layer, name in warehouse_tables(spark, settings.warehouse)
        if f"{layer}.{name}" not in SKIPPED_TABLES
    ]
    records: dict[str, frozenset[str]] = {}
    if person.identifiers and tables.exists("silver", "identities"):
        found: dict[str, set[str]] = {}
        for r in (
            tables.read("silver", "identities")
            .where(_matches(person.identifiers))
            .select("source", "record_key")
            .distinct()
            .collect()
        ):
            found.setdefault(r.source, set()).add(r.record_key)
        records = {s: frozenset(k) for s, k in found.items()}
    evidence = Evidence(combine(patterns), person.one_id, person.values(), records, {})

    # Bronze: records with identifiers first (they add keys), then their items.
    present = {name for layer, name in names if layer == "bronze"}
    with_ids = [d for d, spec in BRONZE_RECORDS.items() if spec.identifiers and d in present]
    without = [d for d, spec in BRONZE_RECORDS.items() if not spec.identifiers and d in present]
    first = _collect_bronze(spark, tables, evidence, with_ids)
    evidence = _with_bronze(evidence, first)
    second = _collect_bronze(spark, tables, evidence, without)
    evidence = _with_bronze(evidence, second)
    raw = {s.v for r in first for s in r.spellings if s.v is not None}
    extra = [*extra_spellings(raw, patterns), *order_number_patterns(evidence.records)]
    if extra:
        evidence = Evidence(
            combine([*patterns, *extra]),
            evidence.one_id,
            evidence.values,
            evidence.records,
            evidence.lineage,
        )
    delivery_dates = sorted({r.delivery_date for r in (*first, *second) if r.delivery_date})

    roots = file_roots(settings)
    found = survey(spark, tables, names, roots, evidence)
    result = ErasureResult(
        person=person,
        dry_run=dry_run,
        rows=found.rows,
        history=found.history,
        spellings=len(raw),
        delivery_dates=delivery_dates,
        notes=notes,
    )
    pattern = evidence.pattern or "(?!)"
    if not result.found:
        result.previous = previous_requests(tables, person, salt)
    elif dry_run:
        deleted, rewritten = clean_files(found.files, pattern, dry_run=True)
        result.files_deleted = [_relative(f, roots) for f in deleted]
        result.files_rewritten = [_relative(f, roots) for f in rewritten]
    if dry_run or not result.found:
        result.seconds = round(time.monotonic() - started, 3)
        return result

    request_id = uuid.uuid4().hex
    result.request_id = request_id
    for table in _rewrite_order(set(found.rows) | set(found.history)):
        layer, name = table.split(".", 1)
        rewrite_table(spark, tables, layer, name, evidence, request_id, found.rows.get(table, 0))
        result.rewritten.append(table)
    deleted, rewritten = clean_files(found.files, pattern, dry_run=False)
    result.files_deleted = [_relative(f, roots) for f in deleted]
    result.files_rewritten = [_relative(f, roots) for f in rewritten]

    # The proof: every file of every table (any version), every other file, scanned again.
    after = survey(spark, tables, names, roots, evidence)
    result.leftovers = sorted(
        {f"{t}: {n} row(s)" for t, n in after.rows.items()}
        | {_plain(f) for found_files in after.traces.values() for f in found_files}
        | set(after.files)
    )
    result.seconds = round(time.monotonic() - started, 3)
    record = log_record(
        request_id,
        requested_at,
        reason,
        person,
        salt or "",
        found.rows,
        result.rewritten,
        result.files_deleted,
        result.files_rewritten,
        not result.leftovers,
        result.seconds,
    )
    tables.append(small_frame(spark, [record], ERASURE_LOG_SCHEMA), *ERASURE_LOG)
    return result
