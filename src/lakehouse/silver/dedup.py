"""Exact duplicate lines, and the lines a corrected file takes back.

Exact duplicates (the same bytes twice in one delivered file) are split off before conforming:
a duplicated POS line would otherwise double its ticket. A line equal to one in an *earlier*
file is not dirt (a corrected file repeats its unchanged lines): `latest_state` resolves those.
What a corrected file no longer holds is `dropped_by_correction`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.silver import normalise as n


def mark_exact_duplicates(bronze: DataFrame) -> DataFrame:
    """Add `_duplicate_of`: the first line number of an earlier identical line in the same
    file, null for the first occurrence."""
    same = Window.partitionBy("_source_file", "_record_hash").orderBy("_line_no")
    return bronze.withColumn(
        "_duplicate_of",
        F.when(F.row_number().over(same) > 1, F.first("_line_no").over(same)),
    )


# A delivered file's day: its name without the `_<n>` a later file of the same day adds
# (`pos_S001_20260301_2.csv` → `pos_S001_20260301.csv`, `inventory_20260301_3.csv` →
# `inventory_20260301.csv`).
_DAY_FILE = r"^(.*_\d{8})(?:_\d+)?(\.[^./]*)$"


def day_file(source_file: Column) -> Column:
    """The name of the day's file a delivered file (a path or a name) is, see `_DAY_FILE`."""
    name = F.regexp_extract(source_file, r"([^/]*)$", 1)
    return F.regexp_replace(name, _DAY_FILE, "$1$2")


def dropped_by_correction(
    published: DataFrame,
    corrected_files: DataFrame,
    delivered: DataFrame,
    key: list[str],
    unreadable: DataFrame | None = None,
    named_by: Sequence[Column] = (),
) -> DataFrame:
    """The published rows of a day's file that the day's corrected file no longer holds.

    Why: a POS file is one store's day whole (`pos_<store>_<YYYYMMDD>.csv`), an inventory file
    one day's stock snapshot, so a file of the same day delivered later, under a new name or
    the same name with new bytes, is its correction (a voided ticket, a position reported by
    mistake): silver would otherwise keep what the source took back. A published row of that
    day's files that no row delivered today holds (by `key`) is dropped.

    `published`: silver rows of earlier deliveries (`_source_file` and `key`);
    `corrected_files`: `source_file` of today's correcting files; `delivered`: `key` of every
    row delivered today, good or bad (a row today's gate quarantines keeps its published
    version, as any row delivered again does; a row with a null key part keeps each row its
    other parts may be, `_without_rows_partly_keyed_lines_name`); `unreadable`, `named_by`: see
    `named_by_unreadable_lines` (such a row keeps its published version too).
    """
    days = corrected_files.select(day_file(F.col("source_file")).alias("_day_file"))
    keyed = reduce(Column.__and__, [F.col(k).isNotNull() for k in key])
    dropped = (
        published.withColumn("_day_file", day_file(F.col("_source_file")))
        .join(F.broadcast(days.distinct()), "_day_file", "left_semi")
        .drop("_day_file")
        .join(delivered.where(keyed).select(*key).distinct(), key, "left_anti")
    )
    dropped = _without_rows_partly_keyed_lines_name(dropped, delivered.where(~keyed), key)
    if unreadable is None or not named_by:
        return dropped
    named = named_by_unreadable_lines(dropped, unreadable, key, named_by)
    return dropped.join(named, key, "left_anti")


def _without_rows_partly_keyed_lines_name(
    dropped: DataFrame, partly_keyed: DataFrame, key: list[str]
) -> DataFrame:
    """`dropped` less the rows a delivered line with a null key part (an unreadable line
    number or ticket, which today's gate quarantines) may be: its other key parts equal the
    row's, in a file of the row's day when `partly_keyed` has `_source_file`.

    Why: such a line is the source still holding a row it failed to spell; an anti-join on the
    full key never matches a null, so the published row it restates would be dropped as taken
    back. The safe side, as for a line bronze could not read: keep a row a line may hold.
    """
    same_day = "_source_file" in partly_keyed.columns
    columns = [F.col(k).alias(f"_line_{k}") for k in key]
    if same_day:
        columns.append(day_file(F.col("_source_file")).alias("_line_day_file"))
    lines = partly_keyed.select(*columns).distinct()
    may_hold = [F.col(f"_line_{k}").isNull() | (F.col(f"_line_{k}") == F.col(k)) for k in key]
    rows = dropped
    if same_day:
        rows = dropped.withColumn("_row_day_file", day_file(F.col("_source_file")))
        may_hold.append(F.col("_line_day_file") == F.col("_row_day_file"))
    kept = rows.join(lines, reduce(Column.__and__, may_hold), "left_anti")
    return kept.drop("_row_day_file") if same_day else kept


def named_by_unreadable_lines(
    rows: DataFrame, unreadable: DataFrame, key: list[str], named_by: Sequence[Column]
) -> DataFrame:
    """The `key` of the `rows` (with `_source_file`) that a line bronze could not read names,
    in a file of their day: each non-null one of `named_by` (codes of the row, as silver holds
    them) is one of the line's fields. `unreadable`: `source_file`, `raw_text` of
    bronze.quarantine.

    Why: a line with a wrong number of fields or undecodable bytes never reaches silver, yet
    it is no evidence that its row is gone (silver.master keeps such a record open the same
    way, `master.keys_named_in`). Fields are split on commas without a CSV reader (the line is
    broken) and read as `normalise.code` reads codes; a field that only looks like a code keeps
    a row it should not, the safe side: a row is never dropped on a line that may hold it.
    """
    unquoted = F.transform(
        F.split(F.coalesce(F.col("raw_text"), F.lit("")), ","),
        lambda field: n.code(F.regexp_replace(field, r'^\s*"|"\s*$', "")),
    )
    lines = F.broadcast(
        unreadable.select(
            day_file(F.col("source_file")).alias("_day_file"), unquoted.alias("_fields")
        )
    )
    names = [value.isNull() | F.array_contains(F.col("_fields"), value) for value in named_by]
    return (
        rows.withColumn("_day_file", day_file(F.col("_source_file")))
        .join(lines, "_day_file")
        .where(reduce(Column.__and__, names))
        .select(*key)
        .distinct()
    )
