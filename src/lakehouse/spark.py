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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from pyspark.sql import SparkSession

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
