"""Turn one delivered file's bytes into bronze records and quarantined lines, line by line.

Why not Spark's CSV/JSON readers: they replace undecodable bytes silently, take one header for
all files of a read (columns must be found by each file's own header name), and cannot say which
physical line a record came from. Here each physical line is decoded strictly in the file's
encoding, so every line ends either as one bronze record or as one quarantined line with its
reason: `data lines = bronze rows + quarantined lines`, exactly, per file.

One physical line is one record, except that a CSV field in double quotes may hold a line break
(the contract's CSVs are double-quoted, and an address or a name can carry one): a line whose
quotes do not close is joined with the lines after it when, and only when, that gives one record
of the header's width. The record's line number is its first physical line's, and a file's data
lines count records.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql.types import ArrayType, DataType, MapType, StructType

# Reasons a line lands in the bronze quarantine.
UNDECODABLE = "undecodable_bytes"
WRONG_FIELD_COUNT = "wrong_field_count"
MALFORMED_CSV = "malformed_csv"
EMPTY_LINE = "empty_line"
MISSING_COLUMNS = "missing_columns"
UNREADABLE_HEADER = "unreadable_header"
INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "json_not_an_object"
JSON_SHAPE = "json_shape_mismatch"

BOM = "\ufeff"

# Python's csv refuses a field over 131,072 characters; the contract sets no limit (a line is
# bounded by the dataset's max_raw_chars when it is quarantined, not when it is read).
csv.field_size_limit(2**31 - 1)


@dataclass(frozen=True)
class ParsedLine:
    """One physical data line: either a record (values) or a quarantined line (reason)."""

    line_no: int
    record_hash: str
    values: dict[str, Any] | None = None
    extra_fields: dict[str, str | None] | None = None
    reason: str | None = None
    detail: str | None = None
    raw_text: str | None = None


@dataclass
class ParsedFile:
    """What a file held: its header (CSV), its data line count, and each line's outcome."""

    data_lines: int = 0
    header: list[str] | None = None
    lines: list[ParsedLine] = field(default_factory=list)


def split_lines(content: bytes) -> list[bytes]:
    """Physical lines without their terminators: LF or CRLF, or a lone CR in a file whose lines
    end in one (old Mac exports); no phantom line after the last.

    A file is CR-ended when it holds more lone CRs (a CR not followed by an LF) than LFs, not
    when it holds no LF at all: an in-cell line break is an LF (Excel's) also in a CR-ended
    file, and splitting that file on LF made its header line swallow the first rows, which
    vanished uncounted. A CRLF file written again in text mode (CR CR LF) or a stray CR inside
    a line stays an LF file.
    """
    if not content:
        return []
    line_feeds = content.count(b"\n")
    lone_crs = content.count(b"\r") - content.count(b"\r\n")
    lines = content.split(b"\r" if lone_crs > line_feeds else b"\n")
    if lines[-1] == b"":
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def _hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _lenient(raw: bytes, encoding: str, limit: int) -> str:
    """The line as readable text for people, with undecodable bytes shown as \\xNN."""
    return raw.decode(encoding, errors="backslashreplace")[:limit]


def _decode(raw: bytes, encoding: str) -> str:
    return raw.decode(encoding, errors="strict")


def _quarantined(
    line_no: int, raw: bytes, encoding: str, reason: str, detail: str, limit: int
) -> ParsedLine:
    return ParsedLine(
        line_no=line_no,
        record_hash=_hash(raw),
        reason=reason,
        detail=detail,
        raw_text=_lenient(raw, encoding, limit),
    )


def _csv_fields(text: str) -> list[str]:
    return next(csv.reader([text], strict=True))


def parse_csv(
    content: bytes, encoding: str, columns: dict[str, str], max_raw_chars: int = 1_000_000
) -> ParsedFile:
    """Parse a CSV file whose first line is a header; columns are matched by header name.

    `columns` maps a delivered header name to its bronze column. Headers not listed land in
    each record's extra fields (a later export may append columns). A file whose header lacks
    a listed column cannot be read: each of its lines is quarantined with the missing names.
    """
    lines = split_lines(content)
    result = ParsedFile()
    if not lines:
        return result
    header_raw, data = lines[0], lines[1:]
    problem: tuple[str, str] | None = None
    try:
        header = _header(header_raw, encoding, columns)
        result.header = header
        missing = [h for h in columns if h not in header]
        if missing:
            problem = (MISSING_COLUMNS, "header lacks: " + ", ".join(missing))
    except (UnicodeDecodeError, csv.Error) as exc:
        header = []
        problem = (UNREADABLE_HEADER, f"header line cannot be read: {exc}")

    records = csv_records(data, encoding, 0 if problem else len(header))
    result.data_lines = len(records)
    for line_no, raw in records:
        if problem:
            result.lines.append(_quarantined(line_no, raw, encoding, *problem, max_raw_chars))
            continue
        result.lines.append(_csv_line(line_no, raw, encoding, header, columns, max_raw_chars))
    return result


def _header(raw: bytes, encoding: str, columns: dict[str, str]) -> list[str]:
    """The header's names, stripped. Decoded strictly; when that fails, undecodable bytes that
    only touch names of columns added after every listed one leave the file readable (those
    names keep the bytes as \\xNN). Otherwise the strict error stands: the file is unreadable,
    since a listed column might be the garbled name (and a namesake added later would stand in
    for it)."""

    def names(text: str) -> list[str]:
        found = [h.strip() for h in _csv_fields(text.lstrip(BOM))]
        if found:
            found[0] = found[0].lstrip(BOM).strip()
        return found

    try:
        return names(_decode(raw, encoding))
    except UnicodeDecodeError:
        escaped = names(raw.decode(encoding, errors="surrogateescape"))
        garbled = [i for i, h in enumerate(escaped) if any("\udc80" <= c <= "\udcff" for c in h)]
        listed = [escaped.index(h) for h in columns if h in escaped]
        if len(listed) < len(columns) or max(listed, default=-1) > min(garbled, default=-1):
            raise
        return [
            h.encode(encoding, errors="surrogateescape").decode(encoding, "backslashreplace")
            for h in escaped
        ]


# A quoted field may hold any number of line breaks; a record joined from several physical
# lines is bounded in bytes instead (a 10 MB line is dirt the contract names, not a limit).
# A stray quote whose record would pass this stays a malformed line of its own.
MAX_JOINED_RECORD_BYTES = 64 * 1024 * 1024


def csv_records(data: list[bytes], encoding: str, width: int) -> list[tuple[int, bytes]]:
    """(line number, raw bytes) of each data record, the header being line 1.

    A line with an odd number of double quotes (0x22 is never part of a multi-byte character in
    UTF-8 or GB18030) opens a quoted field that a line break continues; it is joined with the
    next lines up to the next one with an odd number of quotes (the one that can close it), if
    the joined text then reads as one record of `width` fields. Otherwise the line stays alone
    (and is quarantined with its own reason), so a stray quote cannot swallow the lines after
    it. Each line is looked at a bounded number of times: the look-ahead stops at the next odd
    line, where the following look-ahead starts.
    """
    records: list[tuple[int, bytes]] = []
    i = 0
    while i < len(data):
        raw, end = data[i], i + 1
        if width and raw.count(b'"') % 2:
            size = len(raw)
            for j in range(i + 1, len(data)):
                size += 1 + len(data[j])
                if size > MAX_JOINED_RECORD_BYTES:
                    break
                if data[j].count(b'"') % 2:
                    joined = b"\n".join(data[i : j + 1])
                    if _reads_as_record(joined, encoding, width):
                        raw, end = joined, j + 1
                    break
        records.append((i + 2, raw))
        i = end
    return records


def _reads_as_record(raw: bytes, encoding: str, width: int) -> bool:
    try:
        return len(next(csv.reader([_decode(raw, encoding)], strict=True))) == width
    except (UnicodeDecodeError, csv.Error, StopIteration):
        return False


def _csv_line(
    line_no: int,
    raw: bytes,
    encoding: str,
    header: list[str],
    columns: dict[str, str],
    limit: int,
) -> ParsedLine:
    try:
        text = _decode(raw, encoding)
    except UnicodeDecodeError as exc:
        return _quarantined(line_no, raw, encoding, UNDECODABLE, str(exc), limit)
    if not text.strip():
        return _quarantined(line_no, raw, encoding, EMPTY_LINE, "blank line", limit)
    try:
        values = _csv_fields(text)
    except csv.Error as exc:
        return _quarantined(line_no, raw, encoding, MALFORMED_CSV, str(exc), limit)
    if len(values) != len(header):
        detail = f"expected {len(header)} fields, got {len(values)}"
        return _quarantined(line_no, raw, encoding, WRONG_FIELD_COUNT, detail, limit)
    # A listed column is its name's first position: an added column may repeat the name.
    record = {target: values[header.index(name)] for name, target in columns.items()}
    extra = {
        name: value
        for name, value in zip(extra_names(header, columns), values, strict=True)
        if name is not None
    }
    return ParsedLine(
        line_no=line_no, record_hash=_hash(raw), values=record, extra_fields=extra or None
    )


def extra_names(header: list[str], columns: dict[str, str]) -> list[str | None]:
    """The extra-field name of each header position (None for a column of `columns`, at its
    name's first position): an added column whose name repeats (a listed one's too), or is
    blank, is told apart by its position (`d`, `d#5`), and again if that name is taken
    (`d#5#6`), so no value is overwritten by a namesake."""
    names: list[str | None] = []
    seen: set[str] = set()
    for position, name in enumerate(header, start=1):
        if name in columns and name not in seen:
            names.append(None)
            seen.add(name)
            continue
        extra = name if name and name not in seen else f"{name}#{position}"
        while extra in seen:
            extra = f"{extra}#{position}"
        names.append(extra)
        seen.update((name, extra))
    return names


class ShapeError(ValueError):
    """A JSON value whose shape (object, array) contradicts the declared schema."""


def _as_text(value: Any) -> str | None:
    # Numbers arrive as their literal text (parse_int/parse_float=str), so 299.00 stays 299.00.
    if value is None:
        return None  # JSON null: a null, as inside a nested value, not Python's text "None"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def conform(value: Any, dtype: DataType, path: str, extra: dict[str, str | None]) -> Any:
    """Fit a parsed JSON value to `dtype`, leaves as strings; undeclared keys go to `extra`."""
    if value is None:
        return None
    if isinstance(dtype, StructType):
        if not isinstance(value, dict):
            raise ShapeError(f"{path or '$'}: expected an object, got {type(value).__name__}")
        names = set(dtype.fieldNames())
        out = {
            f.name: conform(value.get(f.name), f.dataType, f"{path}.{f.name}".lstrip("."), extra)
            for f in dtype.fields
        }
        for key, item in value.items():
            if key not in names:
                extra[f"{path}.{key}".lstrip(".")] = _as_text(item)
        return out
    if isinstance(dtype, ArrayType):
        if not isinstance(value, list):
            raise ShapeError(f"{path}: expected an array, got {type(value).__name__}")
        return [conform(v, dtype.elementType, f"{path}[{i}]", extra) for i, v in enumerate(value)]
    if isinstance(dtype, MapType):
        if not isinstance(value, dict):
            raise ShapeError(f"{path}: expected an object, got {type(value).__name__}")
        return {str(k): conform(v, dtype.valueType, f"{path}.{k}", extra) for k, v in value.items()}
    return _as_text(value)


def parse_jsonl(
    content: bytes, encoding: str, schema: StructType, max_raw_chars: int = 1_000_000
) -> ParsedFile:
    """Parse JSON Lines: one object per physical line, conformed to `schema`."""
    lines = split_lines(content)
    result = ParsedFile(data_lines=len(lines))
    for offset, raw in enumerate(lines):
        line_no = offset + 1
        result.lines.append(_json_line(line_no, raw, encoding, schema, max_raw_chars))
    return result


def _not_json(constant: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON does not, and they are no amount either.
    raise ValueError(f"{constant} is not JSON")


def _json_line(
    line_no: int, raw: bytes, encoding: str, schema: StructType, limit: int
) -> ParsedLine:
    try:
        text = _decode(raw, encoding)
    except UnicodeDecodeError as exc:
        return _quarantined(line_no, raw, encoding, UNDECODABLE, str(exc), limit)
    if line_no == 1:
        text = text.lstrip(BOM)
    if not text.strip():
        return _quarantined(line_no, raw, encoding, EMPTY_LINE, "blank line", limit)
    try:
        obj = json.loads(text, parse_int=str, parse_float=str, parse_constant=_not_json)
    except (json.JSONDecodeError, RecursionError, ValueError) as exc:
        return _quarantined(line_no, raw, encoding, INVALID_JSON, str(exc)[:500], limit)
    if not isinstance(obj, dict):
        detail = f"top-level {type(obj).__name__}"
        return _quarantined(line_no, raw, encoding, NOT_AN_OBJECT, detail, limit)
    extra: dict[str, str | None] = {}
    try:
        record = conform(obj, schema, "", extra)
    except ShapeError as exc:
        return _quarantined(line_no, raw, encoding, JSON_SHAPE, str(exc), limit)
    except RecursionError:
        # json.loads stops a few levels short of Python's limit; keeping an unknown field as
        # text goes deeper. Before: the task failed, and the job with it.
        detail = "nested too deeply to keep"
        return _quarantined(line_no, raw, encoding, INVALID_JSON, detail, limit)
    return ParsedLine(
        line_no=line_no, record_hash=_hash(raw), values=record, extra_fields=extra or None
    )


def parse_file(
    content: bytes,
    fmt: str,
    encoding: str,
    columns: dict[str, str] | None = None,
    schema: StructType | None = None,
    max_raw_chars: int = 1_000_000,
) -> ParsedFile:
    if fmt == "csv":
        assert columns is not None
        return parse_csv(content, encoding, columns, max_raw_chars)
    if fmt == "jsonl":
        assert schema is not None
        return parse_jsonl(content, encoding, schema, max_raw_chars)
    raise ValueError(f"unknown file format {fmt!r}")
