"""The one place a SparkSession is built: Delta configured, everything else from conf/.

Delta's jars come from Maven Central through Spark's own `spark.jars.packages` resolution, the
same coordinates a cluster user passes to `spark-submit --packages`. The first resolution is
remembered in a manifest under `spark.jar_cache`; later sessions put those local jars on the
classpath directly, so tests and demos neither resolve again nor need the network.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DataType,
    DateType,
    DecimalType,
    MapType,
    StructType,
    TimestampType,
    _parse_datatype_string,
)

from lakehouse.config import Settings

SCALA_VERSION = "2.13"
DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


class JavaMissingError(RuntimeError):
    """No usable Java: Spark cannot start."""


def delta_package() -> str:
    """Maven coordinates of the Delta jar matching the installed pyspark and delta-spark."""
    import pyspark

    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    delta_version = metadata.version("delta-spark")
    return f"io.delta:delta-spark_{spark_minor}_{SCALA_VERSION}:{delta_version}"


def check_java() -> None:
    """Fail with one sentence when Java 17+ is missing, before Spark prints a stack trace."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    hint = "install OpenJDK 17 (e.g. 'apt-get install openjdk-17-jdk-headless') or set JAVA_HOME"
    if not java or not Path(java).exists():
        raise JavaMissingError(f"lakehouse needs Java 17 or newer (Spark 4): {hint}.")
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except OSError as exc:
        raise JavaMissingError(f"lakehouse cannot run '{java}' ({exc}): {hint}.") from exc
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = 0
    if found:
        major = int(found.group(1))
        if major == 1 and found.group(2):
            major = int(found.group(2))
    if major < 17:
        raise JavaMissingError(
            f"lakehouse needs Java 17 or newer (Spark 4), but {java} is "
            f"{found.group(0) if found else 'of unknown version'}: {hint}."
        )


def _manifest(cache: Path, package: str) -> Path:
    key = hashlib.sha256(package.encode()).hexdigest()[:12]
    return cache / f"{package.replace(':', '_')}-{key}.jars"


def cached_jars(settings: Settings) -> list[str] | None:
    """The jars a previous resolution of Delta's package produced, if all are still there."""
    cache = Path(os.path.expanduser(settings.spark.jar_cache))
    manifest = _manifest(cache, delta_package())
    if not manifest.is_file():
        return None
    jars = [line.strip() for line in manifest.read_text().splitlines() if line.strip()]
    if not jars or not all(Path(j).is_file() for j in jars):
        return None
    return jars


def _remember_jars(settings: Settings, spark: SparkSession) -> None:
    cache = Path(os.path.expanduser(settings.spark.jar_cache))
    resolved = spark.sparkContext.getConf().get("spark.jars", "")
    jars = [j.removeprefix("file://") for j in resolved.split(",") if j.strip()]
    if jars and all(Path(j).is_file() for j in jars):
        _manifest(cache, delta_package()).write_text("\n".join(jars) + "\n")


def build_session(settings: Settings, app_name: str | None = None) -> SparkSession:
    """Build (or join) the session for these settings.

    Under spark-submit the session's master and jars come from spark-submit; anything this
    function sets is a default the command line already overrode.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    check_java()
    # Python workers must import this package: in local mode run them with this interpreter.
    if settings.spark.master and settings.spark.master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name or settings.spark.app_name)
    if settings.spark.master:
        builder = builder.master(settings.spark.master)
    # Schemas registered in the catalog live beside the tables, not in ./spark-warehouse.
    catalog_dir = {"spark.sql.warehouse.dir": f"{settings.warehouse.rstrip('/')}/_catalog"}
    for key, value in {**DELTA_CONF, **catalog_dir, **settings.spark.conf}.items():
        builder = builder.config(key, value)
    resolving = False
    if settings.spark.delta_jars == "cache":
        jars = cached_jars(settings)
        if jars:
            builder = builder.config("spark.jars", ",".join(jars))
        else:
            cache = Path(os.path.expanduser(settings.spark.jar_cache))
            cache.mkdir(parents=True, exist_ok=True)
            builder = builder.config("spark.jars.packages", delta_package()).config(
                "spark.jars.ivy", str(cache / "ivy")
            )
            resolving = True
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(settings.spark.log_level)
    if resolving:
        _remember_jars(settings, spark)
    return spark


@contextmanager
def session_conf(spark: SparkSession, values: Mapping[str, str]) -> Iterator[None]:
    """Set session settings for one call, then put the previous values back."""
    previous = {key: spark.conf.get(key, None) for key in values}
    for key, value in values.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def local_path(location: str) -> Path | None:
    """A local folder for `location`, or None for a remote file system (hdfs://, s3a://)."""
    if location.startswith("file:"):
        return Path(re.sub(r"^file:(//)?", "", location))
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", location):
        return None
    return Path(location)


# Above this many rows small_frame falls back to createDataFrame.
SMALL_FRAME_ROWS = 1_000


def small_frame(
    spark: SparkSession, rows: Sequence[Sequence[Any]], schema: StructType | str
) -> DataFrame:
    """A DataFrame of a few rows held by the driver (a run-log entry, a gate's results, a list
    of dates), built from literals in the JVM: one partition, no Python worker.

    `createDataFrame` ships local rows as a pickled RDD through Python worker tasks (one per
    core), every time the frame is computed: a one-row Delta append took 1.3 s that way and
    0.7 s this way, and the suite makes ~60 such writes a day. Same rows, same schema
    (`schema` a StructType or a DDL string, nullability included); a None in a non-nullable
    field is refused as `createDataFrame` refuses it. More than SMALL_FRAME_ROWS rows go
    through `createDataFrame` after all.
    """
    struct = schema if isinstance(schema, StructType) else _parse_datatype_string(schema)
    if not isinstance(struct, StructType):
        raise ValueError(f"small_frame needs a struct schema, not {schema!r}")
    if len(rows) > SMALL_FRAME_ROWS:  # a plan of literals grows with the rows
        return spark.createDataFrame(list(rows), struct)
    names = struct.fieldNames()
    literals = []
    for row in rows:
        if len(row) != len(names):
            raise ValueError(f"a row of {len(row)} values for {len(names)} columns: {row!r}")
        fields = []
        for value, field in zip(row, struct.fields, strict=True):
            if value is None and not field.nullable:
                raise ValueError(f"field {field.name}: not nullable, but got None")
            fields.append(_literal(value, field.dataType).alias(field.name))
        # The cast gives every field the schema's nullability (a literal is never null).
        literals.append(F.struct(*fields).cast(struct))
    array = F.array(*literals) if literals else F.array().cast(ArrayType(struct, False))
    return spark.range(0, 1, 1, 1).select(F.inline(array)).to(struct)


def _literal(value: Any, data_type: DataType) -> Column:
    """`value` as a literal of `data_type`, converted as `createDataFrame` converts it (naive
    datetimes in the process's local time, dates and timestamps through their internal form)."""
    if value is None:
        return F.lit(None).cast(data_type)
    if isinstance(data_type, TimestampType):
        return F.timestamp_micros(F.lit(data_type.toInternal(value)))
    if isinstance(data_type, DateType):
        return F.date_from_unix_date(F.lit(data_type.toInternal(value)))
    if isinstance(data_type, DecimalType):
        return F.lit(str(value)).cast(data_type)
    if isinstance(data_type, ArrayType):
        items = [_literal(v, data_type.elementType) for v in value]
        return F.array(*items).cast(data_type)
    if isinstance(data_type, MapType):
        pairs = [
            c
            for k, v in value.items()
            for c in (_literal(k, data_type.keyType), _literal(v, data_type.valueType))
        ]
        return F.create_map(*pairs).cast(data_type)
    if isinstance(data_type, StructType):
        values = value.asDict() if hasattr(value, "asDict") else value
        if isinstance(values, Mapping):
            values = [values.get(f.name) for f in data_type.fields]
        return F.struct(
            *[
                _literal(v, f.dataType).alias(f.name)
                for v, f in zip(values, data_type.fields, strict=True)
            ]
        )
    return F.lit(value).cast(data_type)
