"""The bronze job of one source: land the day's delivery folder in bronze Delta tables.

Writes, each an atomic replace of this source's slice for the delivery date (so a rerun of the
same day leaves the same rows):
- `bronze.<dataset>`: one row per readable line, values as delivered, lineage columns;
- `bronze.quarantine`: one row per unreadable line (and per unrecognised file), with its reason;
- `bronze.ingested_files`: one row per delivered file: hash, status, lines, rows, quarantined.

A file delivered again in a later folder with the same name and the same bytes is recorded as a
re-delivery and adds no row.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DateType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from lakehouse.bronze.ingest import (
    UNRECOGNIZED_FILE,
    Lineage,
    bronze_rows,
    file_date,
    file_outcomes,
    parse_files,
    quarantined_lines,
)
from lakehouse.config import Dataset
from lakehouse.runtime import JobContext, JobError, JobResult
from lakehouse.spark import small_frame
from lakehouse.tables import in_few_files

QUARANTINE = "quarantine"
FILES = "ingested_files"
INGESTED, REDELIVERED, UNRECOGNIZED = "INGESTED", "REDELIVERY", "UNRECOGNIZED"

FILES_SCHEMA = StructType(
    [
        StructField("source", StringType(), False),
        StructField("dataset", StringType(), True),
        StructField("delivery_date", DateType(), False),
        StructField("file_name", StringType(), False),
        StructField("source_file", StringType(), False),
        StructField("size_bytes", LongType(), False),
        StructField("sha256", StringType(), False),
        StructField("status", StringType(), False),
        StructField("redelivery_of", DateType(), True),
        StructField("data_lines", LongType(), True),
        StructField("rows", LongType(), True),
        StructField("quarantined", LongType(), True),
        StructField("run_id", StringType(), False),
        StructField("ingest_time", TimestampType(), False),
    ]
)

QUARANTINE_SCHEMA = StructType(
    [
        StructField("source", StringType(), False),
        StructField("dataset", StringType(), True),
        StructField("delivery_date", DateType(), False),
        StructField("file_name", StringType(), False),
        StructField("source_file", StringType(), False),
        StructField("line_no", IntegerType(), True),
        StructField("reason", StringType(), False),
        StructField("detail", StringType(), True),
        StructField("raw_text", StringType(), True),
        StructField("record_hash", StringType(), True),
        StructField("run_id", StringType(), False),
        StructField("ingest_time", TimestampType(), False),
    ]
)


def delivery_folder(landing: str, source: str, run_date) -> str:
    return f"{landing.rstrip('/')}/{source}/dt={run_date.isoformat()}"


def _exists(spark: SparkSession, path: str) -> bool:
    """Whether a folder exists on any Hadoop file system (local, HDFS, S3A, ...)."""
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return bool(fs.exists(hadoop_path))


@dataclass(frozen=True)
class DeliveredFile:
    path: str
    length: int
    sha256: str


EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _delivered_files(spark: SparkSession, folder: str, listing: DataFrame) -> list[DeliveredFile]:
    """Every file of the folder with its size and SHA-256.

    Listed through the Hadoop file system, because Spark's file sources skip 0-byte files, and
    an empty file is a delivery too (a JSON Lines source with nothing new). Names starting with
    `.` or `_` are hidden files by Hadoop convention (`_SUCCESS`, `.crc`) and are not read.
    """
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(folder)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    listed = [
        (status.getPath().toString(), int(status.getLen()))
        for status in fs.listStatus(path)
        if status.isFile() and not status.getPath().getName().startswith((".", "_"))
    ]
    hashed = {
        r.path: r.sha256
        for r in listing.select("path", F.sha2("content", 256).alias("sha256")).collect()
    }
    files = []
    for name, length in listed:
        if length == 0:
            files.append(DeliveredFile(name, 0, EMPTY_SHA256))
        elif name in hashed:
            files.append(DeliveredFile(name, length, hashed[name]))
        else:
            raise JobError(
                f"{name} was listed but Spark could not read it; refusing a partial load"
            )
    return files


def _earlier_deliveries(ctx: JobContext, source: str) -> dict[tuple[str, str], object]:
    """(file name, sha256) -> first delivery date, for files ingested before the run date."""
    if not ctx.tables.exists("bronze", FILES):
        return {}
    earlier = (
        ctx.tables.read("bronze", FILES)
        .where(
            (F.col("source") == source)
            & (F.col("status") == INGESTED)
            & (F.col("delivery_date") < F.lit(ctx.run_date))
        )
        .groupBy("file_name", "sha256")
        .agg(F.min("delivery_date").alias("first"))
        .collect()
    )
    return {(r.file_name, r.sha256): r.first for r in earlier}


def ingest_source(ctx: JobContext, source: str) -> JobResult:
    """Land one source's delivery of the run date in bronze."""
    settings, spark = ctx.settings, ctx.spark
    if source not in settings.sources:
        raise JobError(f"unknown source {source!r}; known: {', '.join(settings.sources)}")
    datasets = settings.sources[source].datasets
    folder = delivery_folder(settings.landing, source, ctx.run_date)
    if not _exists(spark, folder):
        raise JobError(
            f"landing folder {folder} does not exist: no delivery of {source} for "
            f"{ctx.run_date} (check paths.landing / LAKEHOUSE_LANDING and the run date)"
        )
    lineage = Lineage(source, ctx.run_date, ctx.run_id, datetime.now(UTC))
    listing = spark.read.format("binaryFile").load(folder)
    files = _delivered_files(spark, folder, listing)

    earlier = _earlier_deliveries(ctx, source)
    routed: dict[str, list] = {name: [] for name in datasets}
    file_log: list[tuple] = []
    unrecognized: list[tuple] = []
    for f in sorted(files, key=lambda r: r.path):
        name = posixpath.basename(f.path)
        dataset = next((d for d, s in datasets.items() if re.match(s.file_pattern, name)), None)
        base = (source, dataset, ctx.run_date, name, f.path, int(f.length), f.sha256)
        if dataset is None:
            file_log.append((*base, UNRECOGNIZED, None, None, None, None))
            unrecognized.append(
                (
                    source,
                    None,
                    ctx.run_date,
                    name,
                    f.path,
                    None,
                    UNRECOGNIZED_FILE,
                    f"file name matches no dataset of source {source}",
                    None,
                    f.sha256,
                )
            )
        elif (name, f.sha256) in earlier:
            file_log.append((*base, REDELIVERED, earlier[(name, f.sha256)], 0, 0, 0))
        else:
            routed[dataset].append((f, base))

    missing = [d for d in datasets if not routed[d] and not _redelivered(file_log, d)]
    if missing and settings.bronze.fail_on_missing_files:
        raise JobError(
            f"delivery {folder} has no file for {', '.join(missing)}: the contract says every "
            "source delivers its files every day (header only when nothing is new)"
        )

    delivery = Delivery(source, lineage, listing, file_log, unrecognized)
    try:
        for dataset, entries in routed.items():
            _land_dataset(ctx, delivery, dataset, datasets[dataset], entries)
        _publish_side_tables(ctx, delivery)
    finally:
        for frame in delivery.cached:
            frame.unpersist()
    return delivery.result


@dataclass
class Delivery:
    """One source's delivery folder as it is being landed."""

    source: str
    lineage: Lineage
    listing: DataFrame
    file_log: list[tuple]
    unrecognized: list[tuple]
    quarantine_parts: list[DataFrame] = field(default_factory=list)
    cached: list[DataFrame] = field(default_factory=list)
    result: JobResult = field(default_factory=JobResult)


def _land_dataset(
    ctx: JobContext, delivery: Delivery, dataset: str, spec: Dataset, entries: list
) -> None:
    """Parse one dataset's files, check they reconcile, then replace its bronze slice."""
    result = delivery.result
    paths = [f.path for f, _ in entries]
    parsed = parse_files(
        delivery.listing.where(F.col("path").isin(paths)), spec, ctx.settings.bronze.max_raw_chars
    ).persist(StorageLevel.MEMORY_AND_DISK)
    delivery.cached.append(parsed)
    outcomes = {r.path: r for r in file_outcomes(parsed).collect()}
    counts = {"files": len(entries), "rows": 0, "quarantined": 0}
    for f, base in entries:
        o = outcomes.get(f.path)
        lines, landed, bad = (o.data_lines, o.rows, o.quarantined) if o else (0, 0, 0)
        if lines != landed + bad:
            raise JobError(
                f"{f.path}: {lines} data lines but {landed} rows + {bad} quarantined; "
                "refusing to publish a delivery that does not reconcile"
            )
        delivery.file_log.append((*base, INGESTED, None, lines, landed, bad))
        result.rows_read += lines
        result.rows_written += landed
        result.rows_quarantined += bad
        counts["rows"] += landed
        counts["quarantined"] += bad
    dates = {f.path: file_date(spec, posixpath.basename(f.path)) for f, _ in entries}
    rows = bronze_rows(parsed, spec, delivery.lineage, dates)
    result.versions[f"bronze.{dataset}"] = ctx.tables.replace_where(
        rows,
        "bronze",
        dataset,
        f"_delivery_date = '{ctx.run_date.isoformat()}'",
        partition_by=["_delivery_date"],
    )
    delivery.quarantine_parts.append(quarantined_lines(parsed, dataset, delivery.lineage))
    result.details.setdefault("datasets", {})[dataset] = counts


def _publish_side_tables(ctx: JobContext, delivery: Delivery) -> None:
    """Write this delivery's quarantine and file log slices (after the dataset tables)."""
    spark, tables, result = ctx.spark, ctx.tables, delivery.result
    stamp = (ctx.run_id, delivery.lineage.ingest_time)
    quarantine = small_frame(
        spark, [(*u, *stamp) for u in delivery.unrecognized], QUARANTINE_SCHEMA
    )
    for part in delivery.quarantine_parts:
        quarantine = quarantine.unionByName(part)
    result.rows_quarantined += len(delivery.unrecognized)
    slice_ = f"source = '{delivery.source}' AND delivery_date = '{ctx.run_date.isoformat()}'"
    partitions = ["source", "delivery_date"]
    result.versions[f"bronze.{QUARANTINE}"] = tables.replace_where(
        in_few_files(quarantine), "bronze", QUARANTINE, slice_, partitions
    )
    log = small_frame(spark, [(*e, *stamp) for e in delivery.file_log], FILES_SCHEMA)
    result.versions[f"bronze.{FILES}"] = tables.replace_where(
        in_few_files(log), "bronze", FILES, slice_, partitions
    )
    result.details["files"] = len(delivery.file_log)
    result.details["redelivered"] = sum(1 for e in delivery.file_log if e[7] == REDELIVERED)
    result.details["unrecognized"] = len(delivery.unrecognized)


def _redelivered(file_log: list[tuple], dataset: str) -> bool:
    return any(e[1] == dataset and e[7] == REDELIVERED for e in file_log)
