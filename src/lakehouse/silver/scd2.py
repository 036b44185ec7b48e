"""Slowly changing dimensions, type 2: keep every version of a master record with its validity.

Why: master data arrives as full daily snapshots, and the values that matter for analysis
change over time (a product's unit cost, a store's type). A sale must be costed with the cost
valid when it happened, not today's, so silver keeps a history table per dimension with one
row per version:

    <snapshot columns> | valid_from | valid_to | is_current | attr_hash

`valid_from` is the as-of value of the snapshot that opened the version (inclusive),
`valid_to` the as-of value of the snapshot that closed it (exclusive), null while the version
is open; `is_current` is `valid_to IS NULL`; `attr_hash` fingerprints the tracked attributes.
Columns that are not tracked (lineage: `_source_file`, `_line_no`, ...) ride along with the
version that was opened and never open a version of their own, so a re-export of the same
data under another file name changes nothing.

`scd2_changes` is pure and computes the rows a MERGE needs (the "merge key" trick of
MrPowers/mack's `type_2_scd_upsert`): a changed key is staged twice, once with its merge key
set (it matches the open version and closes it) and once with a null merge key (it never
matches and is inserted as the new version), so one atomic MERGE both closes and opens.
`apply_scd2` is the only I/O in this module: it runs that MERGE on a Delta table (see its
docstring for idempotency and for snapshots that arrive out of order). `valid_at` picks, for
each fact, the version that was valid at the fact's time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, StringType, TimestampType

from lakehouse import faults
from lakehouse.silver import normalise as n

VALID_FROM = "valid_from"
VALID_TO = "valid_to"
IS_CURRENT = "is_current"
ATTR_HASH = "attr_hash"
SCD2_COLUMNS = (VALID_FROM, VALID_TO, IS_CURRENT, ATTR_HASH)
ACTION = "_scd2_action"  # 'insert' (open a version) or 'close' (end the open version)
INSERT = "insert"
CLOSE = "close"
_MERGE_PREFIX = "_merge_"
# Table property: the latest as-of of a full snapshot applied, changes or not. A day that
# changed nothing writes no version, yet its snapshot said what held on it.
APPLIED_THROUGH = "lakehouse.scd2.applied_through"


def attribute_hash(cols: Sequence[str | Column]) -> Column:
    """SHA-256 (hex) of the values of `cols`, null-safe and unambiguous.

    Why: comparing one fingerprint is cheaper and simpler than comparing N columns null-safely.
    The values are encoded as a JSON array of their string forms, so null differs from '' and
    a value containing a separator cannot collide with two values (`["a,b"]` vs `["a","b"]`).
    Typed columns hash by their string form: compare hashes of identically typed columns only.
    """
    if not cols:
        raise ValueError("attribute_hash needs at least one column")
    values = [(F.col(c) if isinstance(c, str) else c).cast(StringType()) for c in cols]
    return F.sha2(F.to_json(F.array(*values)), 256)


def _merge_col(k: str) -> str:
    return _MERGE_PREFIX + k


def _keys_present(key: Sequence[str]) -> Column:
    cond = F.lit(True)
    for k in key:
        cond = cond & F.col(k).isNotNull()
    return cond


def _check_columns(df: DataFrame, cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {', '.join(missing)}; it has {df.columns}")


def _data_columns(snapshot: DataFrame) -> list[str]:
    """The snapshot's own columns: what a version row carries besides the SCD2 bookkeeping."""
    return [c for c in snapshot.columns if c not in SCD2_COLUMNS]


def current_versions(history: DataFrame) -> DataFrame:
    """The open versions of a history table (one per key): today's state of the dimension."""
    return history.where(F.col(VALID_TO).isNull())


def latest_versions(history: DataFrame, key: Sequence[str]) -> DataFrame:
    """The latest version of every key (one row each): the open one, else the last before the
    key left the snapshots.

    Why: a key dropped from a full snapshot has no open version, yet facts of its days (a
    product's sales in a mart's window) still need its attributes; `current_versions` would
    give them none.
    """
    latest = Window.partitionBy(*key).orderBy(
        F.col(VALID_FROM).desc(), F.col(VALID_TO).desc_nulls_first()
    )
    return (
        history.withColumn("_latest", F.row_number().over(latest))
        .where(F.col("_latest") == 1)
        .drop("_latest")
    )


def scd2_changes(
    current: DataFrame,
    snapshot: DataFrame,
    key: list[str],
    tracked: list[str],
    as_of_col: str,
    *,
    close_missing: bool = True,
    keep_open: DataFrame | None = None,
) -> DataFrame:
    """The rows to MERGE into a history table so that it reflects `snapshot` as of its date.

    `current` is the history table (only its open versions, valid_to null, are used);
    `snapshot` holds one snapshot (one value in `as_of_col`), one row per key. Returns the
    snapshot's columns plus the SCD2 columns, `_merge_<key>` columns and `_scd2_action`:

    - a key not open in `current` → 'insert', valid_from = as_of, merge key null;
    - a key whose tracked attributes changed → 'close' (merge key set, valid_to = as_of) for the
      open version, plus 'insert' of the new version (merge key null);
    - an open key absent from the snapshot → 'close' with valid_to = as_of, if `close_missing`
      (full snapshots: products, stores); a partial snapshot passes False. Keys listed in
      `keep_open` (a DataFrame with the key columns: records delivered today but quarantined)
      are not closed for their absence: a bad row is no evidence that the record is gone;
    - an unchanged key → nothing.

    Rows with a null key part are no version of anything and are ignored (the quality gate
    quarantines them). An empty snapshot closes nothing: it has no as-of value.
    """
    _check_columns(snapshot, [*key, *tracked, as_of_col], "the snapshot")
    data_cols = _data_columns(snapshot)
    as_of_type = snapshot.schema[as_of_col].dataType
    snap = snapshot.where(_keys_present(key)).select(
        *data_cols, attribute_hash(tracked).alias("_new_hash")
    )
    opened = current.where(F.col(VALID_TO).isNull()).select(
        *data_cols, attribute_hash(tracked).alias("_old_hash")
    )
    cur = opened.select(*key, "_old_hash")
    as_of = snapshot.agg(F.max(as_of_col).alias("_as_of"))

    joined = snap.join(cur, on=key, how="left")
    new_or_changed = joined.where(
        F.col("_old_hash").isNull() | (F.col("_old_hash") != F.col("_new_hash"))
    )
    inserts = new_or_changed.select(
        *data_cols,
        F.col(as_of_col).alias(VALID_FROM),
        F.lit(None).cast(as_of_type).alias(VALID_TO),
        F.lit(True).alias(IS_CURRENT),
        F.col("_new_hash").alias(ATTR_HASH),
        *[F.lit(None).cast(snapshot.schema[k].dataType).alias(_merge_col(k)) for k in key],
        F.lit(INSERT).alias(ACTION),
    )

    to_close = opened.join(
        new_or_changed.where(F.col("_old_hash").isNotNull()).select(*key), on=key, how="left_semi"
    )
    if close_missing:
        absent = opened.join(snap.select(*key), on=key, how="left_anti")
        if keep_open is not None:
            absent = absent.join(_key_rows(keep_open, key), on=key, how="left_anti")
        to_close = to_close.unionByName(absent)
    closes = to_close.crossJoin(as_of).select(
        *[F.col(c) for c in data_cols],
        F.lit(None).cast(as_of_type).alias(VALID_FROM),  # unused: the MERGE keeps the target's
        F.col("_as_of").alias(VALID_TO),
        F.lit(False).alias(IS_CURRENT),
        F.col("_old_hash").alias(ATTR_HASH),
        *[F.col(k).alias(_merge_col(k)) for k in key],
        F.lit(CLOSE).alias(ACTION),
    )
    return inserts.unionByName(closes.where(F.col(VALID_TO).isNotNull()))


def _key_rows(df: DataFrame, key: list[str]) -> DataFrame:
    """The distinct non-null keys of `df`."""
    return df.select(*key).where(_keys_present(key)).distinct()


def _state_mismatches(
    history: DataFrame,
    snapshot: DataFrame,
    key: list[str],
    tracked: list[str],
    at: Any,
    close_missing: bool,
    keep_open: DataFrame | None,
) -> DataFrame:
    """Keys where the history's state at `at` differs from the snapshot (none: same state)."""
    valid = (F.col(VALID_FROM) <= F.lit(at)) & (
        F.col(VALID_TO).isNull() | (F.col(VALID_TO) > F.lit(at))
    )
    state = history.where(valid).select(*key, attribute_hash(tracked).alias("_old_hash"))
    snap = snapshot.where(_keys_present(key)).select(*key, attribute_hash(tracked).alias("_new"))
    how = "full_outer" if close_missing else "left"
    both = snap.join(state, on=key, how=how)
    differ = both.where(~F.col("_new").eqNullSafe(F.col("_old_hash")))
    if keep_open is None or not close_missing:
        return differ
    kept = _key_rows(keep_open, key).withColumn("_kept", F.lit(True))
    absent_but_kept = F.col("_new").isNull() & F.col("_kept").isNotNull()
    return differ.join(kept, on=key, how="left").where(~absent_but_kept)


def _table_columns(snapshot: DataFrame, as_of_col: str) -> list[Column]:
    as_of_type = snapshot.schema[as_of_col].dataType
    return [
        F.col(as_of_col).alias(VALID_FROM),
        F.lit(None).cast(as_of_type).alias(VALID_TO),
        F.lit(True).alias(IS_CURRENT),
    ]


def apply_scd2(
    spark: SparkSession,
    path: str,
    snapshot: DataFrame,
    key: list[str],
    tracked: list[str],
    as_of_col: str,
    *,
    close_missing: bool = True,
    keep_open: DataFrame | None = None,
) -> dict[str, int]:
    """Bring the Delta history table at `path` up to `snapshot`; return {inserted, closed}.

    The snapshot must hold one as-of value and at most one row per key (rows with a null key
    part are skipped: the gate quarantines them). The first call creates the table (every key
    opens a version). Later calls MERGE `scd2_changes` atomically. Out-of-order and repeated
    snapshots are handled so that the history never overlaps or loses a version:

    - the snapshot equals the history's state at its as-of date → nothing is written and
      {0, 0} is returned. So applying the same snapshot twice is a no-op, and so is re-running
      an older day whose snapshot the history already reflects (a backfill re-run);
    - as-of later than every valid_from / valid_to in the table → the normal MERGE;
    - as-of equal to the table's latest change date (today's job re-run with a corrected
      snapshot) → that day's changes are rewound first (versions opened that day deleted,
      versions closed that day re-opened, in one commit) and the day is applied again. A run
      killed between the two commits leaves the state before the day; a re-run completes it;
    - as-of earlier than the latest change, or than the latest full snapshot applied (the
      table property `lakehouse.scd2.applied_through`, kept even when that snapshot changed
      nothing), and a different state → ValueError. Applying it would have to rewrite the
      later history; restore the table (Delta RESTORE / time travel) to a version before that
      date and apply the snapshots again in date order.

    An empty snapshot (a header-only file) changes nothing: no delivery is no evidence that
    every record disappeared. `close_missing` and `keep_open` work as in `scd2_changes`: pass
    the keys of today's quarantined rows as `keep_open`, or a record with one bad row would
    be closed today and re-opened as a new version tomorrow. Counts: `inserted` versions
    opened, `closed` versions ended.
    """
    from delta.tables import DeltaTable

    _check_columns(snapshot, [*key, *tracked, as_of_col], "the snapshot")
    if not key:
        raise ValueError("apply_scd2 needs a key")
    stats = (
        snapshot.where(_keys_present(key))
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.count_distinct(*key).alias("keys"),
            F.min(as_of_col).alias("first"),
            F.max(as_of_col).alias("last"),
            F.count(as_of_col).alias("dated"),
        )
        .first()
    )
    if stats is None:  # pragma: no cover - a global aggregate always returns one row
        raise RuntimeError("no statistics for the snapshot")
    rows, keys, as_of = stats["rows"], stats["keys"], stats["last"]
    if rows and (stats["dated"] != rows or stats["first"] != as_of):
        raise ValueError(
            f"apply_scd2 takes one snapshot at a time: {as_of_col} must be one non-null value, "
            f"found {stats['first']} .. {as_of} ({rows - stats['dated']} null)"
        )
    if keys != rows:
        raise ValueError(
            f"the snapshot holds {rows - keys} duplicate key(s) ({', '.join(key)}); "
            "deduplicate it first (one row per key)"
        )

    if not DeltaTable.isDeltaTable(spark, path):
        faults.before_write(path)
        snapshot.where(_keys_present(key)).select(
            *_data_columns(snapshot),
            *_table_columns(snapshot, as_of_col),
            attribute_hash(tracked).alias(ATTR_HASH),
        ).write.format("delta").mode("errorifexists").save(path)
        faults.after_write(path)
        if close_missing and rows:
            _mark_applied(spark, path, as_of, None)
        return {"inserted": rows, "closed": 0}
    if rows == 0:
        return {"inserted": 0, "closed": 0}

    table = DeltaTable.forPath(spark, path)
    applied = table.detail().first()["properties"].get(APPLIED_THROUGH)
    history = table.toDF()
    # One job: the latest change date in the table, and how many keys differ from its state.
    mismatched = _state_mismatches(history, snapshot, key, tracked, as_of, close_missing, keep_open)
    last_change = F.greatest(F.col(VALID_FROM), F.coalesce(F.col(VALID_TO), F.col(VALID_FROM)))
    probe = (
        history.agg(F.max(last_change).alias("latest"))
        .crossJoin(mismatched.agg(F.count(F.lit(1)).alias("differing")))
        .first()
    )
    latest, differing = (probe["latest"], probe["differing"]) if probe else (None, 0)
    if differing == 0:  # the history already says what the snapshot says
        if close_missing:
            _mark_applied(spark, path, as_of, applied)
        return {"inserted": 0, "closed": 0}
    if applied is not None and str(as_of) < applied and (latest is None or as_of >= latest):
        raise ValueError(
            f"{path}: the snapshot as of {as_of} is older than the latest full snapshot applied "
            f"({applied}, which changed nothing and so opened no version) and differs from the "
            f"history's state at {as_of} in {differing} key(s); history is appended in date "
            f"order only. Restore the table to a version before {as_of} and apply the "
            f"snapshots from {as_of} on again"
        )
    if latest is not None and as_of <= latest:
        if as_of < latest:
            raise ValueError(
                f"{path}: the snapshot as of {as_of} is older than the history's latest change "
                f"({latest}) and differs from the history's state at {as_of} in {differing} "
                "key(s); history is appended in date order only. Restore the table to a "
                f"version before {as_of} and apply the snapshots from {as_of} on again"
            )
        # The latest day again, with different data: rewind that day (one atomic MERGE that
        # deletes the versions it opened and re-opens the ones it closed), then apply it anew.
        day = F.lit(as_of)
        touched = history.where((F.col(VALID_FROM) == day) | (F.col(VALID_TO) == day))
        same_version = F.col(f"t.{VALID_FROM}") == F.col(f"s.{VALID_FROM}")
        for k in key:
            same_version = same_version & (F.col(f"t.{k}") == F.col(f"s.{k}"))
        faults.before_write(path)
        (
            table.alias("t")
            .merge(touched.select(*key, VALID_FROM).alias("s"), same_version)
            .whenMatchedDelete(condition=F.col(f"t.{VALID_FROM}") == day)
            .whenMatchedUpdate(
                set={
                    VALID_TO: F.lit(None).cast(history.schema[VALID_TO].dataType),
                    IS_CURRENT: F.lit(True),
                }
            )
            .execute()
        )
        faults.after_write(path)
        table = DeltaTable.forPath(spark, path)
        history = table.toDF()

    staged = scd2_changes(
        history, snapshot, key, tracked, as_of_col, close_missing=close_missing, keep_open=keep_open
    )
    on = F.col(f"t.{VALID_TO}").isNull()
    for k in key:
        on = on & (F.col(f"t.{k}") == F.col(f"s.{_merge_col(k)}"))
    insert_values = {c: F.col(f"s.{c}") for c in history.columns}
    faults.before_write(path)
    metrics = (
        table.alias("t")
        .merge(staged.alias("s"), on)
        .whenMatchedUpdate(
            condition=F.col(f"s.{ACTION}") == CLOSE,
            set={VALID_TO: F.col(f"s.{VALID_TO}"), IS_CURRENT: F.lit(False)},
        )
        .whenNotMatchedInsert(condition=F.col(f"s.{ACTION}") == INSERT, values=insert_values)
        .execute()
        .first()
    )
    faults.after_write(path)
    if close_missing:
        _mark_applied(spark, path, as_of, applied)
    if metrics is None:  # pragma: no cover - Delta always returns one metrics row
        return {"inserted": 0, "closed": 0}
    return {
        "inserted": int(metrics["num_inserted_rows"]),
        "closed": int(metrics["num_updated_rows"]),
    }


def _mark_applied(spark: SparkSession, path: str, as_of: Any, applied: str | None) -> None:
    """Move `APPLIED_THROUGH` on to `as_of` (never back: a backfill re-run confirms the past)."""
    if applied is not None and str(as_of) <= applied:
        return
    table = "delta.`" + path.replace("`", "``") + "`"
    spark.sql(f"ALTER TABLE {table} SET TBLPROPERTIES ('{APPLIED_THROUGH}' = '{as_of}')")


def valid_at(
    facts: DataFrame,
    history: DataFrame,
    key: list[str],
    fact_time_col: str,
    columns: Sequence[str] | None = None,
    *,
    prefix: str = "",
    last_holds: bool = False,
) -> DataFrame:
    """`facts` plus, from `history`, the attributes of the version valid at each fact's time.

    The version valid at t satisfies valid_from <= t < valid_to (or valid_to null). A fact
    earlier than the key's first version takes the first version: master data is delivered
    from some day on, and a late-delivered sale of the day before has no better cost. With
    `last_holds`, a version holds until the key's next one opens: a fact after the key left
    the snapshots takes its last version (the goods of a product no longer listed still cost
    what they last did), and one in a gap (absent, later back) the version before the gap, so
    a fact's attributes do not change when the key comes back. Without it, a fact whose time
    falls in a gap or after the last version closed gets nulls (a store no longer in the
    snapshot is no open store); so does, always, a fact whose key has no history or whose time
    is null. Every fact row is kept exactly once.

    A TimestampType fact time against DateType validity is compared as its Asia/Shanghai
    date: a snapshot delivered on day D is valid for the business day D.
    `columns` defaults to the history's attributes (not the key, SCD2 or `_`-lineage columns);
    they are added as `<prefix><name>`, and a name already in `facts` raises ValueError.
    """
    _check_columns(facts, [*key, fact_time_col], "the facts")
    _check_columns(history, [*key, VALID_FROM, VALID_TO], "the history")
    if columns is None:
        columns = [
            c
            for c in history.columns
            if c not in key and c not in SCD2_COLUMNS and not c.startswith("_")
        ]
    _check_columns(history, list(columns), "the history")
    clashes = [prefix + c for c in columns if prefix + c in facts.columns]
    if clashes:
        raise ValueError(
            f"the facts already have {', '.join(clashes)}; pass columns= or prefix= to valid_at"
        )

    t = F.col(fact_time_col)
    fact_type = facts.schema[fact_time_col].dataType
    if isinstance(history.schema[VALID_FROM].dataType, DateType) and isinstance(
        fact_type, TimestampType
    ):
        t = n.shanghai_date(t)
    first = Window.partitionBy(*key).orderBy(F.col(VALID_FROM).asc(), F.col(VALID_TO).desc())
    # Where a version stops holding: its close, or with last_holds the next version's opening
    # (null for the last one: it holds on).
    until = F.lead(VALID_FROM).over(first) if last_holds else F.col(VALID_TO)
    versions = history.select(
        *[F.col(k).alias(f"_va_k{i}") for i, k in enumerate(key)],
        F.col(VALID_FROM).alias("_va_from"),
        until.alias("_va_until"),
        (F.row_number().over(first) == 1).alias("_va_first"),
        *[F.col(c).alias(prefix + c) for c in columns],
    )
    facts_t = facts.withColumn("_va_t", t)
    cond = F.col("_va_t").isNotNull() & ((F.col("_va_t") >= F.col("_va_from")) | F.col("_va_first"))
    cond = cond & (F.col("_va_until").isNull() | (F.col("_va_t") < F.col("_va_until")))
    for i, k in enumerate(key):
        cond = (F.col(k) == F.col(f"_va_k{i}")) & cond
    joined = facts_t.join(versions, cond, "left")
    return joined.select(*facts.columns, *[prefix + c for c in columns])
