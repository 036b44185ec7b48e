"""Bronze transforms: delivered files (path, bytes) in, bronze rows / quarantine / file stats out.

The parsing runs in Python workers (see parse.py for why); everything around it is DataFrames.
Lineage columns start with an underscore so they never collide with a delivered field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DataType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
)

from lakehouse.bronze.parse import parse_file
from lakehouse.config import Dataset

ROW, BAD, FILE = "row", "bad", "file"
UNRECOGNIZED_FILE = "unrecognized_file"

LINEAGE_COLUMNS = [
    "_extra_fields",
    "_source_file",
    "_file_name",
    "_file_date",
    "_line_no",
    "_record_hash",
    "_delivery_date",
    "_ingest_time",
    "_run_id",
]


@dataclass(frozen=True)
class Lineage:
    """What every bronze row and quarantined line of one run carries."""

    source: str
    delivery_date: date
    run_id: str
    ingest_time: datetime


def record_schema(spec: Dataset) -> StructType:
    """The bronze columns of a dataset, every leaf a string as delivered."""
    if spec.format == "csv":
        assert spec.columns
        return StructType([StructField(c, StringType(), True) for c in spec.columns.values()])
    parsed: DataType = StructType.fromDDL(spec.schema_ddl or "")
    assert isinstance(parsed, StructType)
    return parsed


def _parsed_schema(record: StructType) -> StructType:
    return StructType(
        [
            StructField("tag", StringType(), False),
            StructField("path", StringType(), False),
            StructField("line_no", IntegerType(), True),
            StructField("record_hash", StringType(), True),
            StructField("record", record, True),
            StructField("extra_fields", MapType(StringType(), StringType()), True),
            StructField("reason", StringType(), True),
            StructField("detail", StringType(), True),
            StructField("raw_text", StringType(), True),
            StructField("data_lines", LongType(), True),
        ]
    )


def file_date(spec: Dataset, file_name: str) -> str | None:
    """The YYYY-MM-DD date a file's name carries, or None if the name does not say one."""
    match = re.match(spec.file_pattern, file_name)
    if not match:
        return None
    raw = match.group("date")
    try:
        return datetime.strptime(raw, "%Y%m%d").date().isoformat()
    except ValueError:
        return None


def parse_files(files: DataFrame, spec: Dataset, max_raw_chars: int) -> DataFrame:
    """Parse binaryFile rows (path, content) into one tagged row per line and one per file.

    tag = "row": a record; "bad": a quarantined line; "file": the file's data line count,
    counted apart from the outcomes so that the two can be reconciled.
    """
    record = record_schema(spec)
    fmt, encoding, columns = spec.format, spec.encoding, spec.columns

    def explode(row):  # runs in Python workers
        parsed = parse_file(
            bytes(row.content),
            fmt,
            encoding,
            columns=columns,
            schema=record,
            max_raw_chars=max_raw_chars,
        )
        yield (FILE, row.path, None, None, None, None, None, None, None, parsed.data_lines)
        for line in parsed.lines:
            if line.reason is None:
                yield (
                    ROW,
                    row.path,
                    line.line_no,
                    line.record_hash,
                    line.values,
                    line.extra_fields,
                    None,
                    None,
                    None,
                    None,
                )
            else:
                yield (
                    BAD,
                    row.path,
                    line.line_no,
                    line.record_hash,
                    None,
                    None,
                    line.reason,
                    line.detail,
                    line.raw_text,
                    None,
                )

    rdd = files.select("path", "content").rdd.flatMap(explode)
    return files.sparkSession.createDataFrame(rdd, _parsed_schema(record))


def _file_name(path_col: str = "path"):
    return F.element_at(F.split(F.col(path_col), "/"), -1)


def bronze_rows(
    parsed: DataFrame, spec: Dataset, lineage: Lineage, file_dates: dict[str, str | None]
) -> DataFrame:
    """The records of parsed files with their lineage columns, ready for the bronze table.

    `file_dates` maps each file path to the date its name carries (see `file_date`).
    """
    names = record_schema(spec).fieldNames()
    # A day whose only file of the dataset is a redelivery parses no file: an empty map() is
    # map<void,void>, which a string path cannot index.
    dates = (
        F.create_map(*[F.lit(x) for kv in file_dates.items() for x in kv])[F.col("path")]
        if file_dates
        else F.lit(None)
    )
    rows = parsed.where(F.col("tag") == ROW)
    return rows.select(
        *[F.col("record")[n].alias(n) for n in names],
        F.col("extra_fields").alias("_extra_fields"),
        F.col("path").alias("_source_file"),
        _file_name().alias("_file_name"),
        dates.cast("date").alias("_file_date"),
        F.col("line_no").alias("_line_no"),
        F.col("record_hash").alias("_record_hash"),
        F.lit(lineage.delivery_date).alias("_delivery_date"),
        F.lit(lineage.ingest_time).cast("timestamp").alias("_ingest_time"),
        F.lit(lineage.run_id).alias("_run_id"),
    )


def quarantined_lines(parsed: DataFrame, dataset: str, lineage: Lineage) -> DataFrame:
    """The lines of parsed files that could not be read, with their reason."""
    bad = parsed.where(F.col("tag") == BAD)
    return bad.select(
        F.lit(lineage.source).alias("source"),
        F.lit(dataset).alias("dataset"),
        F.lit(lineage.delivery_date).alias("delivery_date"),
        _file_name().alias("file_name"),
        F.col("path").alias("source_file"),
        F.col("line_no"),
        F.col("reason"),
        F.col("detail"),
        F.col("raw_text"),
        F.col("record_hash"),
        F.lit(lineage.run_id).alias("run_id"),
        F.lit(lineage.ingest_time).cast("timestamp").alias("ingest_time"),
    )


def file_outcomes(parsed: DataFrame) -> DataFrame:
    """Per file: data lines counted, rows landed, lines quarantined (to reconcile)."""
    return parsed.groupBy("path").agg(
        F.sum(F.when(F.col("tag") == FILE, F.col("data_lines")).otherwise(0)).alias("data_lines"),
        F.sum(F.when(F.col("tag") == ROW, 1).otherwise(0)).alias("rows"),
        F.sum(F.when(F.col("tag") == BAD, 1).otherwise(0)).alias("quarantined"),
    )
