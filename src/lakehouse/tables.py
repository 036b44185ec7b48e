"""Where tables live and the few ways a job may write them.

Every table is a Delta table at `<warehouse>/<layer>/<table>`, readable by any Delta reader by
path, and registered in the session's catalog as `<layer>.<table>`. Writes are idempotent by
construction: `replace_where` swaps one slice (a delivery date, a source) atomically, so a rerun
of the same day leaves the same rows, never doubles them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from delta.tables import DeltaTable
from py4j.protocol import Py4JError
from pyspark.sql import Column, DataFrame, DataFrameWriter, SparkSession
from pyspark.sql import functions as F

from lakehouse import faults

log = logging.getLogger(__name__)
LAYERS = ("bronze", "silver", "oneid", "gold", "ops")
# Delta checks conflicts by partition: two jobs replacing their own rows of one day's
# silver.quarantine partition (Airflow runs silver.members and silver.sales side by side)
# conflict though their rows do not, and two first writes race to create a table. Replacing
# one's own slice again is what the write meant, so it is retried.
WRITE_ATTEMPTS = 5


def _conflicts() -> tuple[type[BaseException], ...]:
    from delta.exceptions import (
        ConcurrentAppendException,
        MetadataChangedException,
        ProtocolChangedException,
    )

    return (ConcurrentAppendException, MetadataChangedException, ProtocolChangedException)


def _save_retrying(save: Callable[[], None], what: str) -> None:
    conflicts = _conflicts()
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            save()
            return
        except conflicts as exc:
            if attempt == WRITE_ATTEMPTS:
                raise
            log.warning("%s: concurrent write (%s), attempt %d again", what, exc, attempt + 1)
            time.sleep(0.5 * attempt)


def in_few_files(df: DataFrame) -> DataFrame:
    """`df` in at most one partition per core, for the tables small by nature (quarantines,
    reconciliations, file logs, gate results, the run log).

    A union keeps every input's partitions: a day's silver.quarantine unions a dozen frames,
    which made 132 write tasks (and up to as many tiny files) for a few dozen rows, 8.7 s of
    silver.sales at scale 0.1. Coalescing runs the same work in a few tasks, without a shuffle.
    """
    return df.coalesce(max(1, df.sparkSession.sparkContext.defaultParallelism))


@dataclass(frozen=True)
class Tables:
    """Table paths and writes under one warehouse root."""

    spark: SparkSession
    warehouse: str

    def path(self, layer: str, name: str) -> str:
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}; one of {', '.join(LAYERS)}")
        return f"{self.warehouse.rstrip('/')}/{layer}/{name}"

    def exists(self, layer: str, name: str) -> bool:
        return DeltaTable.isDeltaTable(self.spark, self.path(layer, name))

    def read(self, layer: str, name: str) -> DataFrame:
        if not self.exists(layer, name):
            raise FileNotFoundError(
                f"table {layer}.{name} does not exist yet at {self.path(layer, name)}: "
                "run the job that writes it first"
            )
        return self.spark.read.format("delta").load(self.path(layer, name))

    def version(self, layer: str, name: str) -> int | None:
        """The table's latest committed version (None when there is no table).

        Every write returns it, so it must be cheap: the DeltaLog's snapshot update lists the
        `_delta_log` folder from the driver (milliseconds), where `history(1)` runs a Spark job
        (0.1–0.3 s, once per write, ~100 times a day). `history(1)` stays as the fallback for a
        Delta build without that (internal) method.
        """
        if not self.exists(layer, name):
            return None
        path = self.path(layer, name)
        try:
            jvm = self.spark._jvm
            delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(
                self.spark._jsparkSession, path
            )
            none = jvm.scala.Option.empty()
            return int(delta_log.update(False, none, none).version())
        except Py4JError:
            history = DeltaTable.forPath(self.spark, path).history(1)
            return int(history.select("version").first()[0])

    def replace_where(
        self,
        df: DataFrame,
        layer: str,
        name: str,
        condition: str,
        partition_by: list[str] | None = None,
    ) -> int:
        """Atomically replace the rows matching `condition` with `df`; returns the version.

        Rows of `df` must all satisfy `condition` (Delta checks it), so a bug cannot spill a
        write into another day's slice.
        """
        writer = (
            df.write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", condition)
            .option("mergeSchema", "true")
        )
        return self._save(writer, layer, name, partition_by)

    def _save(
        self, writer: DataFrameWriter, layer: str, name: str, partition_by: list[str] | None
    ) -> int:
        """Save (retrying a conflict with another job's write), register; the version."""
        path = self.path(layer, name)

        def save() -> None:
            first = partition_by and not self.exists(layer, name)
            (writer.partitionBy(*partition_by) if first else writer).save(path)

        faults.before_write(f"{layer}.{name}")
        _save_retrying(save, f"{layer}.{name}")
        faults.after_write(f"{layer}.{name}")
        self.register(layer, name)
        return self.version(layer, name)  # type: ignore[return-value]

    def append(
        self, df: DataFrame, layer: str, name: str, partition_by: list[str] | None = None
    ) -> int:
        writer = df.write.format("delta").mode("append").option("mergeSchema", "true")
        return self._save(writer, layer, name, partition_by)

    def upsert(
        self,
        df: DataFrame,
        layer: str,
        name: str,
        keys: list[str],
        newer_when: str,
        partition_by: list[str] | None = None,
        delete_flag: str | None = None,
        update_as: dict[str, str] | None = None,
    ) -> int:
        """MERGE `df` on `keys`: insert new keys, replace a matched row only when `newer_when`
        (a condition over `s.` source and `t.` target columns) holds. `df` must hold one row
        per key (MERGE refuses duplicate source keys; deduplicate first).

        `update_as` gives some columns an SQL expression (over `s.` and `t.`) to take when a
        matched row is replaced, instead of the source's value: a value the target keeps.

        `delete_flag` names a boolean source column: a row with it true deletes its matched
        target row and is never inserted. Source columns named `_merge_*` (the flag among
        them) steer the MERGE and are not written; `newer_when` may use them. One commit
        either way, so a reader never sees a key deleted and its replacement not yet written.
        """
        path = self.path(layer, name)
        steering = [c for c in df.columns if c.startswith("_merge_")]
        if delete_flag is not None and delete_flag not in steering:
            raise ValueError(f"delete_flag {delete_flag!r} must be a _merge_* column of the source")
        written = [c for c in df.columns if c not in steering]
        faults.before_write(f"{layer}.{name}")
        if not self.exists(layer, name):
            rows = df.where(~F.col(delete_flag)) if delete_flag else df
            writer = rows.select(*written).write.format("delta").mode("overwrite")
            if partition_by:
                writer = writer.partitionBy(*partition_by)
            writer.save(path)
        else:
            on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
            merge = DeltaTable.forPath(self.spark, path).alias("t").merge(df.alias("s"), on)
            if not steering and not update_as:
                merge = merge.whenMatchedUpdateAll(condition=newer_when).whenNotMatchedInsertAll()
            else:
                values = {f"`{c}`": f"s.`{c}`" for c in written}
                keep = f"NOT s.`{delete_flag}`" if delete_flag else "true"
                if delete_flag:
                    merge = merge.whenMatchedDelete(condition=f"s.`{delete_flag}`")
                replaced = {**values, **{f"`{c}`": e for c, e in (update_as or {}).items()}}
                merge = merge.whenMatchedUpdate(
                    condition=f"{keep} AND ({newer_when})", set=replaced
                ).whenNotMatchedInsert(condition=keep, values=values)
            merge.execute()
        faults.after_write(f"{layer}.{name}")
        self.register(layer, name)
        return self.version(layer, name)  # type: ignore[return-value]

    def update_matching(
        self, df: DataFrame, layer: str, name: str, keys: list[str], condition: str
    ) -> int:
        """Set `df`'s other columns on the rows whose `keys` it holds, where `condition` (over
        `s.` source and `t.` target columns) holds; a key the table lacks is not inserted. One
        MERGE; `df` must hold one row per key. Returns the version."""
        path = self.path(layer, name)
        on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
        values = {f"`{c}`": f"s.`{c}`" for c in df.columns if c not in keys}
        faults.before_write(f"{layer}.{name}")
        DeltaTable.forPath(self.spark, path).alias("t").merge(df.alias("s"), on).whenMatchedUpdate(
            condition=condition, set=values
        ).execute()
        faults.after_write(f"{layer}.{name}")
        return self.version(layer, name)  # type: ignore[return-value]

    def add_missing_columns(self, layer: str, name: str, columns: dict[str, str]) -> bool:
        """Add the `columns` (name: SQL type) a table written by an older release lacks, as
        null; True when one was added. Why: a MERGE here does not evolve the schema, so a
        column new to a table must exist before the first write that sets it."""
        present = set(self.read(layer, name).columns)
        missing = {c: t for c, t in columns.items() if c not in present}
        if not missing:
            return False
        added = ", ".join(f"`{c}` {t}" for c, t in missing.items())
        self.spark.sql(f"ALTER TABLE delta.`{self.path(layer, name)}` ADD COLUMNS ({added})")
        return True

    def delete_matching(
        self,
        keys_df: DataFrame,
        layer: str,
        name: str,
        keys: list[str],
        target_where: Column | None = None,
    ) -> int:
        """Delete the rows whose `keys` appear in `keys_df` (one MERGE; duplicates in `keys_df`
        are dropped first). A missing table has nothing to delete: returns its version or -1.

        `target_where` (over `t.` columns, say partitions) limits what the MERGE reads, and so
        what a concurrent writer can conflict with."""
        if not self.exists(layer, name):
            return -1
        on = F.expr(" AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys))
        if target_where is not None:
            on = on & target_where
        faults.before_write(f"{layer}.{name}")
        _save_retrying(  # a delete made again deletes nothing more
            lambda: (
                DeltaTable.forPath(self.spark, self.path(layer, name))
                .alias("t")
                .merge(keys_df.select(*keys).distinct().alias("s"), on)
                .whenMatchedDelete()
                .execute()
            ),
            f"{layer}.{name}",
        )
        faults.after_write(f"{layer}.{name}")
        return self.version(layer, name)  # type: ignore[return-value]

    def register(self, layer: str, name: str) -> None:
        """Make `<layer>.<name>` resolvable in SQL for this session, pointing at this warehouse.

        A name registered earlier for another warehouse is re-pointed; the catalog entry is
        external, so dropping it never touches the table's files.
        """
        ident, path = f"{layer}.{name}", self.path(layer, name)
        session = self.spark._jsparkSession.hashCode()
        if _registered.get((session, ident)) == path:  # this session registered it already
            return
        self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {layer}")
        if self.spark.catalog.tableExists(ident):
            registered = _registered_location(self.spark, ident)
            # The catalog keeps the qualified location (hdfs://nn:8020/lh/...) of a warehouse
            # spelled hdfs:///lh: the same table, not one to drop and create again (which
            # parallel tasks sharing a metastore would race on).
            if registered in (_normalise(path), _normalise(_qualified(self.spark, path))):
                _registered[(session, ident)] = path
                return
            self.spark.sql(f"DROP TABLE {ident}")
        self.spark.sql(f"CREATE TABLE {ident} USING DELTA LOCATION '{path}'")
        _registered[(session, ident)] = path


# (session, `layer.name`) -> path it was registered at by this process: registering costs three
# catalog calls, and every write registers. A table dropped from the catalog behind the
# session's back is not re-registered; reading by path (Tables.read) never depends on it.
_registered: dict[tuple[int, str], str] = {}


def _normalise(location: str) -> str:
    for prefix in ("file://", "file:"):
        if location.startswith(prefix):
            return location[len(prefix) :].rstrip("/")
    return location.rstrip("/")


def _qualified(spark: SparkSession, location: str) -> str:
    """`location` as the file system qualifies it (scheme and authority filled in)."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(location)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return str(fs.makeQualified(path).toString())


def _registered_location(spark: SparkSession, ident: str) -> str | None:
    for row in spark.sql(f"DESCRIBE TABLE EXTENDED {ident}").collect():
        if row[0] == "Location":
            return _normalise(row[1])
    return None


SOURCE_FILE = "_source_file"
# Digit runs padded to this width: longer runs (no file name has one) compare on their first
# FILE_DIGITS digits only.
FILE_DIGITS = 40


def file_order_sql(column_sql: str) -> str:
    """SQL for a sort key of a file name in natural order: `_9` before `_10`.

    The contract lets a day's export come in parts (`tmall_orders_<YYYYMMDD>[_<n>].csv`); as
    strings `..._10.csv` sorts before `..._9.csv`, and the tie-breaks between versions of one
    record that name the file would pick the earlier part. Every run of digits is left-padded
    with zeros, so numbers compare as numbers and everything else as text."""
    return (
        f"array_join(transform(regexp_extract_all({column_sql}, '[0-9]+|[^0-9]+', 0), "
        f"p -> IF(p RLIKE '^[0-9]+$', lpad(p, {FILE_DIGITS}, '0'), p)), '')"
    )


def file_order(column: str = SOURCE_FILE) -> Column:
    """`column` (a file name or path) as a natural-order sort key; see `file_order_sql`."""
    return F.expr(file_order_sql(f"`{column}`"))


def newer_when(columns: list[str]) -> str:
    """A MERGE condition: the source row sorts after (or equal to) the target row on `columns`,
    compared left to right. Equal rows update, so a rerun rewrites the same values. The source
    file compares in natural order (`file_order_sql`)."""
    condition = "true"
    for column in reversed(columns):
        s, t = f"s.`{column}`", f"t.`{column}`"
        if column == SOURCE_FILE:
            s, t = file_order_sql(s), file_order_sql(t)
        condition = (
            f"({s} > {t} OR {t} IS NULL AND {s} IS NOT NULL OR ({s} <=> {t} AND {condition}))"
        )
    return condition
