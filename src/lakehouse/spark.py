"""The one place a SparkSession is built: Delta configured, everything else from conf/.

Delta's jars come from Maven Central through Spark's own `spark.jars.packages` resolution, the
same coordinates a cluster user passes to `spark-submit --packages`. The first resolution is
remembered in a manifest under `spark.jar_cache`; later sessions put those local jars on the
classpath directly, so tests and demos neither resolve again nor need the network.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    ByteType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    MapType,
    ShortType,
    StringType,
    StructType,
    TimestampType,
    _parse_datatype_string,
)

from lakehouse.config import URI, ConfigError, Settings

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


# Settings the suite's results depend on (times are UTC instants, bad casts fail): conf/*.yml
# sets them whatever spark-submit or spark-defaults.conf say. Everything else yields to them.
# spark.sql.timestampType: silver's parses (lakehouse.silver.normalise) must give instants
# (TIMESTAMP_LTZ); a cluster default of TIMESTAMP_NTZ would make them zone-less local times.
REQUIRED_CONF = frozenset(
    {
        *DELTA_CONF,
        "spark.sql.session.timeZone",
        "spark.sql.ansi.enabled",
        "spark.sql.timestampType",
    }
)


def submitted_conf() -> dict[str, str]:
    """What spark-submit gave this driver (--master, --conf, spark-defaults.conf), when it is
    the one that started this Python; empty otherwise."""
    if not os.environ.get("PYSPARK_GATEWAY_PORT"):
        return {}
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()
    return dict(SparkConf().getAll())


def launcher_master() -> str | None:
    """The master pyspark's own spark-submit will start this Python's JVM with, outside
    spark-submit, read as spark-submit reads it: `--master` in PYSPARK_SUBMIT_ARGS, else its
    `--conf spark.master=`, else spark.master in its `--properties-file`, else in
    spark-defaults.conf ($SPARK_CONF_DIR, else $SPARK_HOME/conf, else pyspark's own).

    Why: on an edge node that file names the cluster, and the commands with no spark-submit
    script (report, erase, audience, summary, oneid) run outside spark-submit there.
    """
    args = shlex.split(os.environ.get("PYSPARK_SUBMIT_ARGS", ""))
    given: dict[str, str] = {}
    for i, arg in enumerate(args):
        following = args[i + 1] if i + 1 < len(args) else ""
        if arg.startswith("--master="):
            given.setdefault("master", arg.split("=", 1)[1])
        elif arg == "--master" and following:
            given.setdefault("master", following)
        elif arg == "--conf" and following.startswith("spark.master="):
            given["conf"] = following.split("=", 1)[1]
        elif arg == "--properties-file" and following:
            given["file"] = following
    if given.get("master") or given.get("conf"):
        return given.get("master") or given["conf"]
    conf_dir = os.environ.get("SPARK_CONF_DIR")
    if not conf_dir:
        from pyspark.find_spark_home import _find_spark_home

        conf_dir = os.path.join(os.environ.get("SPARK_HOME") or _find_spark_home(), "conf")
    for path in (given.get("file"), os.path.join(conf_dir, "spark-defaults.conf")):
        master = _properties_master(Path(path)) if path else None
        if master:
            return master
    return None


def _properties_master(path: Path) -> str | None:
    """spark.master in a Spark properties file (`key value`, `key=value` or `key: value`)."""
    if not path.is_file():
        return None
    master = None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "!")):
            continue
        key, *value = re.split(r"\s*[=:]\s*|\s+", line, maxsplit=1)
        if key == "spark.master" and value and value[0].strip():
            master = value[0].strip()
    return master


def session_options(
    settings: Settings, submitted: Mapping[str, str]
) -> tuple[str | None, dict[str, str]]:
    """(master, options) for the session builder: conf/*.yml's values, minus what spark-submit
    already set, except REQUIRED_CONF.

    Why: a builder option overrides spark-submit's own (pyspark applies the builder last), so
    `spark-submit --conf spark.sql.shuffle.partitions=400` ran with cluster.yml's 64, and
    `--master yarn` without `--env cluster` ran on local[*].
    """
    catalog_dir = {"spark.sql.warehouse.dir": f"{settings.warehouse.rstrip('/')}/_catalog"}
    options = {
        key: str(value)
        for key, value in {**DELTA_CONF, **catalog_dir, **settings.spark.conf}.items()
        if key in REQUIRED_CONF or key not in submitted
    }
    master = settings.spark.master if "spark.master" not in submitted else None
    return master, options


def build_session(
    settings: Settings, app_name: str | None = None, *, launcher_master_ok: bool = False
) -> SparkSession:
    """Build (or join) the session for these settings.

    Under spark-submit, what its command line (or spark-defaults.conf) sets wins over
    conf/*.yml, except the few settings results depend on (REQUIRED_CONF). With
    `launcher_master_ok` (the CLI-only commands), a master pyspark's own launcher finds
    (launcher_master) will do when neither spark-submit nor conf gives one; the jobs need
    spark-submit's --py-files and executor settings, so they never start that way.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        require_delta(active)
        return active
    check_java()
    submitted = submitted_conf()
    master_in_use = submitted.get("spark.master", settings.spark.master)
    if master_in_use is None and not submitted and launcher_master_ok:
        master_in_use = launcher_master()
    if master_in_use is None:
        raise ConfigError(
            "spark.master is not set (conf/cluster.yml leaves it to spark-submit), and this is "
            "not running under spark-submit: pyspark would start local[*] without Delta's "
            "jars. Run the job through spark-submit (jobs/<job>.py, jobs/run_job.py, "
            "jobs/run_all.py); for the commands that run outside it (report, erase, audience, "
            "summary, oneid) set spark.master in spark-defaults.conf ($SPARK_CONF_DIR) or "
            "--master in PYSPARK_SUBMIT_ARGS, with Delta's jars; or use --env local"
        )
    # Python workers must import this package: in local mode run them with this interpreter
    # (the master spark-submit gave, not conf's: `--master yarn` with env local is no local).
    if master_in_use.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    if "spark.app.name" not in submitted:
        builder = builder.appName(app_name or settings.spark.app_name)
    # Schemas registered in the catalog live beside the tables, not in ./spark-warehouse.
    master, options = session_options(settings, submitted)
    if master:
        builder = builder.master(master)
    for key, value in options.items():
        builder = builder.config(key, value)
    resolving = False
    # Under spark-submit the JVM is up with its own --jars / --packages: they stand.
    if settings.spark.delta_jars == "cache" and not submitted:
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
    require_delta(spark)
    return spark


DELTA_CLASS = "io.delta.tables.DeltaTable"


def require_delta(spark: SparkSession, class_name: str = DELTA_CLASS) -> None:
    """ConfigError unless Delta's classes are on the session's classpath.

    Why: `delta_jars: provided` (or spark-submit without --packages) started a session without
    them, and the first table call failed with "'JavaPackage' object is not callable", far from
    its cause.
    """
    from py4j.java_gateway import JavaClass

    found = spark._jvm
    for part in class_name.split("."):
        found = getattr(found, part)
    if not isinstance(found, JavaClass):
        raise ConfigError(
            f"Delta Lake's classes ({class_name}) are not on this Spark session's classpath: "
            "under spark-submit give them with --packages $(lakehouse packages) (or --jars, "
            "from the manifest `lakehouse fetch-jars` leaves); outside it, an environment with "
            "spark.delta_jars: provided needs them in spark-defaults.conf or $SPARK_HOME/jars, "
            "and delta_jars: cache fetches them itself"
        )


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
    """A local folder for `location`, or None for a remote file system (hdfs://, s3a://).

    `hdfs:/x` is as remote as `hdfs:///x` (Hadoop prints the one for the other): the same test
    as the config's (`config.URI`), so no URI becomes a relative folder named `hdfs:`.
    """
    if location.startswith("file:"):
        return Path(re.sub(r"^file:(//)?", "", location))
    if URI.match(location):
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
    0.7 s this way, and the suite makes ~60 such writes a day. The rows are one SQL
    expression, parsed in the JVM in one call: built from Column objects, four or five Py4J
    calls a value, a gate's 15 results took 1.0 s to build, as SQL text 0.05 s. Same rows,
    same schema (`schema` a StructType or a DDL string, nullability included); a None in a
    non-nullable field is refused as `createDataFrame` refuses it. More than SMALL_FRAME_ROWS
    rows, or a value the text cannot spell (an interval, a value not of its field's type), go
    through `createDataFrame` after all, which converts or refuses them as it always does.
    """
    struct = schema if isinstance(schema, StructType) else _parse_datatype_string(schema)
    if not isinstance(struct, StructType):
        raise ValueError(f"small_frame needs a struct schema, not {schema!r}")
    if len(rows) > SMALL_FRAME_ROWS:  # the expression grows with the rows
        return spark.createDataFrame(list(rows), struct)
    names = struct.fieldNames()
    for row in rows:
        if len(row) != len(names):
            raise ValueError(f"a row of {len(row)} values for {len(names)} columns: {row!r}")
        for value, field in zip(row, struct.fields, strict=True):
            if value is None and not field.nullable:
                raise ValueError(f"field {field.name}: not nullable, but got None")
    try:
        literals = [_sql_literal(row, struct) for row in rows]
    except _Unspellable:
        return spark.createDataFrame(list(rows), struct)
    # One cast gives every field its name, type and nullability (a literal is never null).
    array = F.expr(f"array({', '.join(literals)})").cast(ArrayType(struct, False))
    return spark.range(0, 1, 1, 1).select(F.inline(array)).to(struct)


class _Unspellable(Exception):
    """A value `_sql_literal` leaves to `createDataFrame`."""


_INTEGRAL = (ByteType, ShortType, IntegerType, LongType)
_SPECIAL_FLOATS = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _sql_literal(value: Any, data_type: DataType) -> str:
    """`value` as Spark SQL text of `data_type`'s value, converted as `createDataFrame`
    converts it (naive datetimes in the process's local time, dates and timestamps through
    their internal form). Strings and bytes are spelled in hex, so no text needs escaping.
    Structs are positional (`struct(...)`); the caller's cast names their fields."""
    if value is None:
        return "NULL"
    if isinstance(data_type, StringType) and isinstance(value, str):
        try:
            return f"CAST(X'{value.encode('utf-8').hex()}' AS STRING)"
        except UnicodeEncodeError:  # a lone surrogate
            raise _Unspellable(repr(value)) from None
    if isinstance(data_type, BooleanType) and isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bool):
        raise _Unspellable(f"{value!r} as {data_type.simpleString()}")
    if isinstance(data_type, _INTEGRAL) and isinstance(value, int):
        return f"CAST({value} AS {data_type.simpleString()})"
    if isinstance(data_type, DoubleType | FloatType) and isinstance(value, float | int):
        number = float(value)
        # A cast from text may be null; a literal is not, nor is coalesce with one.
        double = (
            f"{number!r}D"
            if math.isfinite(number)
            else f"coalesce(CAST('{_SPECIAL_FLOATS[repr(number)]}' AS DOUBLE), 0D)"
        )
        return double if isinstance(data_type, DoubleType) else f"CAST({double} AS FLOAT)"
    if isinstance(data_type, DecimalType) and isinstance(value, Decimal | int):
        if isinstance(value, Decimal) and not value.is_finite():
            raise _Unspellable(repr(value))
        return f"CAST({value}BD AS {data_type.simpleString()})"
    if isinstance(data_type, DateType) and isinstance(value, date):
        return f"DATE_FROM_UNIX_DATE({data_type.toInternal(value)})"
    if isinstance(data_type, TimestampType) and isinstance(value, datetime):
        return f"TIMESTAMP_MICROS({data_type.toInternal(value)})"
    if isinstance(data_type, BinaryType) and isinstance(value, bytes | bytearray):
        return f"X'{bytes(value).hex()}'"
    if isinstance(data_type, ArrayType) and isinstance(value, list | tuple):
        return f"array({', '.join(_sql_literal(v, data_type.elementType) for v in value)})"
    if isinstance(data_type, MapType) and isinstance(value, Mapping):
        pairs = [
            text
            for k, v in value.items()
            for text in (_sql_literal(k, data_type.keyType), _sql_literal(v, data_type.valueType))
        ]
        return f"map({', '.join(pairs)})"
    if isinstance(data_type, StructType):
        values = value.asDict() if hasattr(value, "asDict") else value
        if isinstance(values, Mapping):
            values = [values.get(f.name) for f in data_type.fields]
        if isinstance(values, list | tuple) and len(values) == len(data_type.fields):
            fields = zip(values, data_type.fields, strict=True)
            parts = [_sql_literal(v, f.dataType) for v, f in fields]
            return f"struct({', '.join(parts)})"
    raise _Unspellable(f"{value!r} as {data_type.simpleString()}")
