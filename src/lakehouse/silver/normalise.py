"""Value normalisers: bronze's as-delivered strings -> typed, comparable silver values.

Each function takes a Column and returns a Column, so they compose freely (quinn style) and
silver jobs read as `normalise.phone(F.col("member_phone"))`. They are built from Spark
built-ins only: no Python UDF, so the work stays in the JVM where Catalyst can optimise it.
None of them raises under ANSI mode (try_cast / try_to_timestamp / try_to_date / try_divide,
regex-validated input): a value that cannot be read becomes null, and the silver job decides
whether that null is a quarantine reason. Judging a *readable* value (a negative amount, a
future date, an absurd quantity) is a quality rule's job, not a normaliser's.

Every spelling handled here is listed in docs/landing-contract.md and the source systems'
contract. Inputs are cast to string first, so a numeric column (a JSON number) works too.

Times are TimestampType instants and never depend on spark.sql.session.timeZone: Shanghai
local strings are parsed together with the zone id (`VV`), so the offset comes from the
time-zone database and not from the session zone (a round trip through the session zone
would shift wall-clock times that fall in that zone's DST gap); Shanghai dates are read off a
TIMESTAMP_NTZ wall clock. They assume spark.sql.timestampType keeps its default
(TIMESTAMP_LTZ), as conf/ does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, DecimalType, IntegerType, StringType, TimestampType

SHANGHAI = "Asia/Shanghai"
LOCAL_FORMAT = "yyyy-MM-dd HH:mm:ss"  # Tmall, JD, campaign touches
POS_FORMAT = "yyyy/MM/dd HH:mm:ss"  # store POS
MONEY = DecimalType(18, 2)

# CRM's "no birthday" placeholder; anything on or before it is no birthday either.
PLACEHOLDER_BIRTHDAY = dt.date(1900, 1, 1)

# GB/T 2261.1: 0 = unknown, 1 = male, 2 = female (9 = unspecified); CRM also spells M/F, 男/女.
GENDER_CODES: dict[str, str] = {"M": "M", "F": "F", "男": "M", "女": "F", "1": "M", "2": "F"}

YES_NO: dict[str, bool] = {
    "y": True, "yes": True, "true": True, "1": True, "是": True,
    "n": False, "no": False, "false": False, "0": False, "否": False,
}  # fmt: skip

# CRM member levels (Chinese card names) -> the level codes silver and gold use.
MEMBER_LEVELS: dict[str, str] = {
    "普卡": "REGULAR",
    "银卡": "SILVER",
    "金卡": "GOLD",
    "钻石卡": "DIAMOND",
}

# Whitespace a delivered value may carry: ASCII (space, tab, CR, LF), every Unicode space
# separator (NBSP, U+3000 ideographic space, ...), the zero-width space and a stray BOM.
_WS = r"\s\p{Z}\x{200B}\x{FEFF}"
_EDGES = "^[" + _WS + "]+|[" + _WS + "]+$"
_MOBILE = r"^1[3-9]\d{9}$"
_MASKED_MOBILE = r"^1[3-9]\d\*{4}\d{4}$"
# The full-width forms block (U+FF01-FF5E) and the ASCII characters it mirrors (`１` is `1`,
# `Ｍ` is `M`, `－` is `-`): what an input method's full-width mode types.
_ASCII_VISIBLE = "".join(chr(c) for c in range(0x21, 0x7F))
_FULL_WIDTH = "".join(chr(ord(c) + 0xFEE0) for c in _ASCII_VISIBLE)
# Country-code prefixes, stripped only when what follows is an 11-digit (or masked) mobile.
_COUNTRY_PREFIX = r"^(?:\+86|0086|86)(?=1[3-9][\d*]{9}$)"
_EMAIL = r"^[^@\s\p{Z}]+@[^@.\s\p{Z}]+(?:\.[^@.\s\p{Z}]+)+$"
_YUAN = r"^[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d{1,2}0*)?$"  # at most 2 significant decimals
_INTEGRAL = r"^[+-]?\d+(?:\.0*)?$"  # `3`, `-1`, `3.0`; not `3.5`
# Seconds may be left out (ISO 8601's `hh:mm`); a fraction comes only after seconds.
_ISO_UTC = r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(Z|[+-]\d{2}:?\d{2})?$"
_DATE_SEPARATED = r"^(\d{4})([-/])(\d{1,2})\2(\d{1,2})$"  # YYYY-MM-DD, YYYY/M/D, YYYY/MM/DD
_DATE_COMPACT = r"^(\d{4})(\d{2})(\d{2})$"  # YYYYMMDD


# --- building blocks --------------------------------------------------------------------------


def _text(col: Column) -> Column:
    """The value as a string (a JSON number arrives as a number column; the cast is safe)."""
    return col.cast(StringType())


def _strip(col: Column) -> Column:
    """Trim every kind of whitespace at both ends; F.trim only knows the ASCII space."""
    return F.regexp_replace(_text(col), _EDGES, "")


def _empty_to_null(col: Column) -> Column:
    """'' -> null: an empty delivered field carries no value."""
    return F.when(col != "", col)


def _lookup(key: Column, mapping: Mapping[str, Any]) -> Column:
    """mapping[key], null for a key the mapping does not know (never an ANSI error)."""
    pairs = [F.lit(item) for kv in mapping.items() for item in kv]
    return F.try_element_at(F.create_map(*pairs), key)


def _half_width(col: Column) -> Column:
    """Full-width letters, digits and signs as their ASCII selves: a number or a code keyed in
    with the input method's full-width mode (`１３８００１３８０００`, `ＳＫＵ－００１２３`) is the
    same value."""
    return F.translate(_text(col), _FULL_WIDTH, _ASCII_VISIBLE)


def _mobile_digits(col: Column) -> Column:
    """Phone without spaces, tabs, dashes and the +86 / 86 / 0086 country prefix."""
    compact = F.regexp_replace(_half_width(col), "[" + _WS + "-]", "")
    return F.regexp_replace(compact, _COUNTRY_PREFIX, "")


# --- identifiers --------------------------------------------------------------------------------


def phone(col: Column) -> Column:
    """The 11-digit mainland mobile, or null.

    Why: one person's mobile is spelt `13800138000`, `+86 138 0013 8000`, `86-13800138000`,
    `138-0013-8000` or in full-width digits depending on the source and the hand that keyed it;
    One ID can only match it in a single spelling.
    A masked `138****5678` identifies nobody and becomes null (see `phone_is_masked`).
    """
    digits = _mobile_digits(col)
    return F.when(digits.rlike(_MOBILE), digits)


def phone_is_masked(col: Column) -> Column:
    """True for a marketplace-masked mobile (`138****5678`), false for anything else (null too).

    Why: a masked number is no identifier, but silver keeps the fact that the buyer gave one.
    """
    return F.coalesce(_mobile_digits(col).rlike(_MASKED_MOBILE), F.lit(False))


def phone_display(col: Column) -> Column:
    """`138****5678` from a full or an already-masked mobile; null if it is neither.

    Why: reports and service screens show the masked form only (personal information law),
    and it is the one form all sources can agree on.
    """
    digits = _mobile_digits(col)
    masked = F.concat(F.substring(digits, 1, 3), F.lit("****"), F.substring(digits, 8, 4))
    return F.when(digits.rlike(_MOBILE), masked).when(digits.rlike(_MASKED_MOBILE), digits)


def email(col: Column) -> Column:
    """Trimmed, lower-cased, half-width e-mail address, or null if it is not a plausible address.

    Why: e-mail is a case-insensitive identifier (CRM spells `Li@x.com`, `LI@X.COM`, ` li@x.com `,
    `li＠x.com` in full width); plausible means one @, no whitespace, and a dot inside the domain.
    """
    s = F.lower(_strip(_half_width(col)))
    return F.when(s.rlike(_EMAIL), s)


def code(col: Column) -> Column:
    """Upper-cased, half-width code with all whitespace removed (ASCII, tabs, U+3000), or null
    if empty.

    Why: SKU, store, member and card codes are keyed by hand (` sku-00123 `, `ＳＫＵ－００１２３`)
    but joined exactly.
    """
    return _empty_to_null(F.upper(F.regexp_replace(_half_width(col), "[" + _WS + "]", "")))


def non_blank(col: Column) -> Column:
    """The value trimmed of surrounding whitespace, or null when nothing is left.

    Why: names, nicks and addresses are free text: only the blank edges are noise. Inner
    characters (any Unicode, emoji, inner spaces) are kept as delivered.
    """
    return _empty_to_null(_strip(col))


def order_number(col: Column) -> Column:
    """The order number as a string of letters/digits, or null.

    Why: Tmall exports protect 18-19 digit order numbers from Excel with `="2937..."`, a leading
    tab or a leading apostrophe; those wrappers are not part of the number. It stays a string:
    as a number it would lose digits. A value that still holds other characters (an Excel-mangled
    `2.93712E+17`) is null.
    """
    wrappers = "^[" + _WS + "'=\"]+|[" + _WS + '"]+$'
    s = F.regexp_replace(_text(col), wrappers, "")
    return F.when(s.rlike("^[0-9A-Za-z]+$"), s)


# --- money and counts ---------------------------------------------------------------------------


def readable(raw: Column, parsed: Column) -> Column:
    """True, or null where the source wrote a value its parser cannot read (`2026-02-30`,
    `N/A`): a `*_readable` rule (not null) of the gate then quarantines the row.

    Why: read as missing, such a value silently changes what the row says (an order unpaid, a
    store never closed, a campaign without cost). Blank stays allowed: it says "none".
    """
    written = non_blank(raw.cast("string")).isNotNull()
    return F.when(written & parsed.isNull(), F.lit(None).cast("boolean")).otherwise(F.lit(True))


def yuan(col: Column) -> Column:
    """DecimalType(18,2) from a yuan string (`299.00`, `1,299.00`, ` 12.5 `, `¥12.50`), or null.

    Why: amounts arrive as text with thousands separators and currency signs; money must be an
    exact decimal. The sign is kept (judging negatives is a quality rule). More than two
    significant decimals (`12.505`) is not a yuan amount and is null rather than rounded.
    """
    s = F.regexp_replace(_strip(col), "^([+-]?)[" + _WS + "]*[¥￥][" + _WS + "]*", "$1")
    return F.when(s.rlike(_YUAN), F.regexp_replace(s, ",", "")).try_cast(MONEY)


def fen_to_yuan(col: Column) -> Column:
    """DecimalType(18,2) yuan from integer fen, given as a string or a number (`29900` -> 299.00).

    Why: the mall counts money in fen; silver holds every amount in yuan. Non-integral or
    out-of-range fen is null.
    """
    s = _strip(col)
    fen = F.when(s.rlike(_INTEGRAL), F.regexp_replace(s, r"\.0*$", "")).try_cast(DecimalType(20, 0))
    return F.try_divide(fen, F.lit(100)).try_cast(MONEY)


def quantity(col: Column) -> Column:
    """IntegerType from `3`, ` 3 `, `-1`, `3.0`; null for garbage, `3.5` or out-of-int-range.

    Why: unit counts arrive as text (sometimes as an integral float from a spreadsheet); a
    fractional count is not a count. Negatives (POS returns) are kept.
    """
    s = _strip(col)
    return F.when(s.rlike(_INTEGRAL), F.regexp_replace(s, r"\.0*$", "")).try_cast(IntegerType())


# --- times and dates ----------------------------------------------------------------------------


def shanghai_local_to_utc(col: Column, fmt: str = LOCAL_FORMAT) -> Column:
    """The instant (TimestampType) of an Asia/Shanghai wall-clock string in format `fmt`.

    Why: Tmall, JD, POS and campaign times are local Shanghai times without an offset. Parsing
    them with the zone id attached makes the instant independent of the session time zone.
    Use LOCAL_FORMAT (`2026-03-01 10:22:01`) or POS_FORMAT (`2026/03/01 10:22:01`). Empty,
    garbage or impossible times (Feb 30) are null.
    """
    s = _empty_to_null(_strip(col))
    return F.try_to_timestamp(F.concat(s, F.lit(" " + SHANGHAI)), F.lit(fmt + " VV"))


def shanghai_any_local_to_utc(col: Column) -> Column:
    """The instant of a Shanghai local time in any common spelling: `2026-03-01 10:22:01`,
    `2026/3/1 10:22:01`, `20260301 10:22:01`, `2026-03-01T10:22:01` (fractions of a second
    dropped), `2026-03-01 10:22` (no seconds, as a spreadsheet saves it), or a date alone in any
    spelling `calendar_date` reads (its midnight); with an explicit offset or `Z` (ISO 8601, as
    the mall writes it, seconds optional), that offset. Null for anything else.

    Why: the contract gives the CRM's register_time and the touches' touch_time no format.
    Reading one spelling only would turn every other into a silent null, and One ID's earliest
    registration with it.
    """
    s = F.upper(_strip(col))
    if_zoned = F.regexp_extract(s, _ISO_UTC, 3) != ""
    # A fraction is dropped after seconds only: `10:22.5` is not `10:22`.
    local = F.regexp_replace(F.regexp_replace(s, "[T/]", " "), r"(:\d{1,2}:\d{1,2})\.\d+$", "$1")
    local = F.regexp_replace(local, r"^(\d{4}) (\d{1,2}) (\d{1,2})", "$1-$2-$3")
    local = F.regexp_replace(local, r"^(\d{4})(\d{2})(\d{2})(?= |$)", "$1-$2-$3")
    zone = F.lit(" " + SHANGHAI)
    parsed = F.coalesce(
        F.try_to_timestamp(F.concat(local, zone), F.lit("yyyy-M-d H:m:s VV")),
        F.try_to_timestamp(F.concat(local, zone), F.lit("yyyy-M-d H:m VV")),
        F.try_to_timestamp(F.concat(local, zone), F.lit("yyyy-M-d VV")),
    )
    return F.when(s.rlike(_ISO_UTC) & if_zoned, utc_iso_to_timestamp(col)).otherwise(parsed)


def utc_iso_to_timestamp(col: Column) -> Column:
    """The instant (TimestampType) of an ISO-8601 UTC string such as `2026-03-01T02:22:01Z`.

    Why: the mall delivers UTC times. Accepted: `Z`, `+00:00` (any explicit offset is honoured),
    fractional seconds, no seconds (`02:22Z`, ISO 8601's minute precision), and no offset at
    all, read as UTC since the source is documented UTC. Anything else is null.
    """
    s = F.upper(_strip(col))
    zone = F.regexp_extract(s, _ISO_UTC, 3)
    clock = F.regexp_extract(s, _ISO_UTC, 2)
    iso = F.concat(
        F.regexp_extract(s, _ISO_UTC, 1),
        F.lit("T"),
        # Spark's cast wants the seconds.
        F.when(F.length(clock) == 5, F.concat(clock, F.lit(":00"))).otherwise(clock),
        F.when(zone == "", F.lit("Z")).otherwise(zone),
    )
    return F.when(s.rlike(_ISO_UTC), iso).try_cast(TimestampType())


def shanghai_date(ts_col: Column) -> Column:
    """DateType: the Asia/Shanghai calendar date of an instant (2026-03-01T17:00:00Z -> 03-02).

    Why: business dates are Shanghai dates. The instant is turned into a UTC wall clock
    (TIMESTAMP_NTZ, by arithmetic on epoch microseconds) and converted to Shanghai by the
    time-zone database, so the session time zone never enters. Expects TimestampType.
    """
    epoch = F.expr("TIMESTAMP_NTZ'1970-01-01 00:00:00'")
    utc_wall_clock = F.timestamp_add("MICROSECOND", F.unix_micros(ts_col), epoch)
    local = F.convert_timezone(F.lit("UTC"), F.lit(SHANGHAI), utc_wall_clock)
    return local.cast(DateType())


def birthday(col: Column) -> Column:
    """DateType birthday from `YYYY-MM-DD`, `YYYY/M/D`, `YYYY/MM/DD` or `YYYYMMDD`; else null.

    Why: CRM spells birthdays several ways and uses 1900-01-01 as "unknown". That placeholder
    (in any spelling), dates before it and impossible dates (2026-02-30) are null. Future dates
    are kept: judging them is a quality rule (see `is_future`).
    """
    parsed = calendar_date(col)
    return F.when(parsed > F.lit(PLACEHOLDER_BIRTHDAY), parsed)


def calendar_date(col: Column) -> Column:
    """DateType from `YYYY-MM-DD`, `YYYY/M/D`, `YYYY/MM/DD` or `YYYYMMDD`; null for anything
    else and for impossible dates (2026-02-30), never an ANSI error.

    Why: the contract spells dates `YYYY-MM-DD` but names no format for the master, campaign
    and inventory dates; the CRM shows the other spellings a system writes. Reading one
    spelling only would make the others silent nulls (a store never opened, a campaign
    without dates).
    """
    s = _strip(col)
    iso = F.when(
        s.rlike(_DATE_SEPARATED),
        F.concat_ws(
            "-",
            F.regexp_extract(s, _DATE_SEPARATED, 1),
            F.lpad(F.regexp_extract(s, _DATE_SEPARATED, 3), 2, "0"),
            F.lpad(F.regexp_extract(s, _DATE_SEPARATED, 4), 2, "0"),
        ),
    ).when(s.rlike(_DATE_COMPACT), F.regexp_replace(s, _DATE_COMPACT, "$1-$2-$3"))
    return F.try_to_date(iso, "yyyy-MM-dd")


def is_future(date_col: Column, as_of: Column | dt.date | str) -> Column:
    """True when `date_col` is after `as_of`; false otherwise, and when either is null.

    Why: a helper for quality rules (a birthday or business date after the run's business date).
    `as_of` is a date Column, a datetime.date, or an ISO date string (a literal, not a column
    name).
    """
    if isinstance(as_of, Column):
        ref = as_of
    else:
        ref = F.lit(dt.date.fromisoformat(as_of) if isinstance(as_of, str) else as_of)
    return F.coalesce(date_col > ref, F.lit(False))


# --- enumerations -------------------------------------------------------------------------------


def gender(col: Column) -> Column:
    """'M', 'F' or null from M/F/m/f, 男/女, or GB/T 2261.1 codes 1/2 (0 and anything else: null).

    Why: CRM mixes three spellings of the same two values.
    """
    return _lookup(F.upper(_strip(col)), GENDER_CODES)


def yes_no(col: Column) -> Column:
    """Boolean from Y/N, y/n, 是/否, 1/0, true/false (also yes/no); anything else is null.

    Why: flags such as marketing_opt_out arrive as letters, digits or Chinese characters.
    """
    return _lookup(F.lower(_strip(col)), YES_NO)


def member_level(col: Column) -> Column:
    """Level code REGULAR / SILVER / GOLD / DIAMOND from 普卡 / 银卡 / 金卡 / 钻石卡; else null.

    Why: CRM delivers the card name in Chinese; silver and gold use stable codes. An already
    normalised code maps to itself, so normalising twice changes nothing.
    """
    known = {**MEMBER_LEVELS, **{level: level for level in MEMBER_LEVELS.values()}}
    return _lookup(F.upper(_strip(col)), known)


# --- identifier dispatch ------------------------------------------------------------------------

IDENTIFIER_NORMALISERS: dict[str, Callable[[Column], Column]] = {
    "phone": phone,
    "email": email,
    "member_id": code,
    "card_no": code,
    "unionid": non_blank,
    "openid": non_blank,
    "tmall_nick": non_blank,
    "jd_pin": non_blank,
}


def normalised_identifier(id_type: Column | str, value: Column) -> Column:
    """`value` normalised the way its identifier type requires (IDENTIFIER_NORMALISERS).

    Why: One ID collects (type, value) pairs from every source and must compare each value in
    one spelling. `id_type` is a type name (str; an unknown name raises ValueError) or a string
    Column holding type names per row (an unknown type gives null).
    """
    if isinstance(id_type, str):
        try:
            normaliser = IDENTIFIER_NORMALISERS[id_type.strip().lower()]
        except KeyError:
            known = ", ".join(IDENTIFIER_NORMALISERS)
            raise ValueError(f"unknown identifier type {id_type!r}; known: {known}") from None
        return normaliser(value)
    kind = F.lower(_strip(id_type))
    (first, first_normaliser), *rest = IDENTIFIER_NORMALISERS.items()
    result = F.when(kind == first, first_normaliser(value))
    for name, normaliser in rest:
        result = result.when(kind == name, normaliser(value))
    return result
