"""The session builder's own checks (Java 17+, Delta's coordinates) and `small_frame`."""

from __future__ import annotations

import stat
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import Row
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    ByteType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    MapType,
    ShortType,
    StringType,
    StructField,
    StructType,
)

from lakehouse.bronze.job import FILES_SCHEMA
from lakehouse.quality.results import DQ_RESULTS_SCHEMA
from lakehouse.runtime import RUN_LOG_SCHEMA
from lakehouse.spark import JavaMissingError, check_java, delta_package, small_frame


def _fake_java(home: Path, version_line: str) -> None:
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)


def test_old_java_is_one_clear_sentence(tmp_path, monkeypatch):
    _fake_java(tmp_path, 'openjdk version "11.0.2" 2019-01-15')
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(JavaMissingError, match=r"needs Java 17 or newer.*version \"11"):
        check_java()


def test_missing_java_is_one_clear_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    with pytest.raises(JavaMissingError, match=r"needs Java 17 or newer.*install OpenJDK 17"):
        check_java()


def test_java_17_passes(tmp_path, monkeypatch):
    _fake_java(tmp_path, 'openjdk version "17.0.15" 2025-04-15')
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    check_java()


def test_delta_coordinates_follow_the_installed_versions():
    assert delta_package() == "io.delta:delta-spark_4.1_2.13:4.4.0"


EVERY_KIND = (
    "name string, n int, big long, share double, ok boolean, amount decimal(18,2), day date, "
    "at timestamp, tags array<string>, versions map<string,long>, "
    "spot struct<city: string, lat: double>"
)
EVERY_KIND_ROWS = [
    (
        "上海 O'Brien; DROP TABLE x --",
        7,
        2**40,
        float("nan"),
        True,
        Decimal("-12345678.90"),
        date(1970, 1, 1),
        datetime(2026, 3, 1, 23, 59, 59, 123456),
        ["a", None],
        {"silver.orders": 3},
        ("杭州", 30.25),
    ),
    (None, None, None, None, None, None, None, None, None, None, None),
    (
        "",
        0,
        -1,
        0.5,
        False,
        Decimal("0.01"),
        date(2099, 12, 31),
        datetime(1970, 1, 1),
        [],
        {},
        (None, None),
    ),
]

# The rest of the types and the values a literal could get wrong: text SQL would have to escape,
# non-finite and negative-zero doubles, exponents, the extremes of the integers, structs given
# as a Row or a dict, nesting, and a non-null field's nullability.
MORE_KINDS = StructType(
    [
        StructField("text", StringType(), False),
        StructField("tiny", ByteType()),
        StructField("small", ShortType()),
        StructField("ratio", FloatType()),
        StructField("raw", BinaryType()),
        StructField("points", ArrayType(DoubleType(), False)),
        StructField("tiny_amount", DecimalType(38, 10)),
        StructField("at_most", LongType()),
        StructField(
            "lines",
            ArrayType(
                StructType([StructField("sku", StringType()), StructField("qty", IntegerType())])
            ),
        ),
        StructField("by_store", MapType(StringType(), ArrayType(IntegerType()))),
        StructField("where", StructType([StructField("city", StringType(), False)])),
    ]
)
MORE_KINDS_ROWS = [
    (
        "it's \\ a 'quote'\n\t\\x00 \\u0041 ${x} %_ 😀 \u0000",
        -128,
        32767,
        1.1,
        b"\x00\xff'",
        [float("inf"), float("-inf"), -0.0, 1e-300, 5e-324, 1.7976931348623157e308],
        Decimal("1E-10"),
        -(2**63),
        [Row(sku="A-1", qty=2), ("B-2", None), {"sku": None, "qty": -1}],
        {"S001": [1, None], "S002": []},
        {"city": "北京"},
    ),
    (
        "",
        None,
        None,
        None,
        None,
        [],
        Decimal("12345678901234567890.0123456789"),
        2**63 - 1,
        None,
        None,
        None,
    ),
]


@pytest.mark.parametrize(
    ("schema", "rows"),
    [
        (EVERY_KIND, EVERY_KIND_ROWS),
        (EVERY_KIND, []),
        (MORE_KINDS, MORE_KINDS_ROWS),
        ("business_date date", [(date(2026, 3, d),) for d in range(1, 29)]),
        (
            RUN_LOG_SCHEMA,
            [
                (
                    "silver.sales",
                    date(2026, 3, 1),
                    "run-1",
                    "local",
                    datetime(2026, 3, 1, 1, 2, 3, 4),
                    datetime(2026, 3, 1, 1, 3, 3),
                    60.0,
                    "SUCCEEDED",
                    10,
                    8,
                    2,
                    {"silver.orders": 0},
                    None,
                    "{}",
                )
            ],
        ),
        (DQ_RESULTS_SCHEMA, []),
        (FILES_SCHEMA, []),
    ],
)
def test_small_frame_equals_create_data_frame_with_no_python_task(spark, schema, rows):
    """The same rows and schema (nullability included) as `createDataFrame`, computed in the JVM:
    no scan of a Python RDD in its plan, one partition."""
    made = small_frame(spark, rows, schema)
    assert_df_equality(
        made, spark.createDataFrame(rows, schema), allow_nan_equality=True, ignore_row_order=False
    )
    plan = made._jdf.queryExecution().executedPlan().toString()
    assert "ExistingRDD" not in plan and "Python" not in plan, plan
    assert made.rdd.getNumPartitions() == 1


def test_small_frame_refuses_what_create_data_frame_refuses(spark):
    with pytest.raises(ValueError, match="field job: not nullable, but got None"):
        small_frame(spark, [(None,) * len(RUN_LOG_SCHEMA.fields)], RUN_LOG_SCHEMA)
    with pytest.raises(ValueError, match="a row of 1 values for 2 columns"):
        small_frame(spark, [("x",)], "a string, b int")


def test_small_frame_leaves_a_value_of_another_type_to_create_data_frame(spark):
    """A value the SQL text cannot spell as its field's type (a bool for a double) goes to
    `createDataFrame`, which refuses it as it always does, rather than being cast."""
    with pytest.raises(TypeError, match="share"):
        small_frame(spark, [(True,)], "share double")


def test_small_frame_hands_many_rows_to_create_data_frame(spark, monkeypatch):
    """Past SMALL_FRAME_ROWS the literal plan would grow with the rows: the same frame comes
    from `createDataFrame`."""
    from lakehouse import spark as module

    monkeypatch.setattr(module, "SMALL_FRAME_ROWS", 2)
    rows = [(date(2026, 3, d),) for d in range(1, 4)]
    made = small_frame(spark, rows, "business_date date")
    assert_df_equality(made, spark.createDataFrame(rows, "business_date date"))
    assert "ExistingRDD" in made._jdf.queryExecution().executedPlan().toString()


def test_spark_submit_settings_win_over_conf_except_what_results_depend_on():
    """Before: conf/*.yml's values were set on the builder, which pyspark applies after
    spark-submit's, so `--conf spark.sql.shuffle.partitions=400` ran with 64 and `--master
    yarn` without `--env cluster` ran on local[*]."""
    from lakehouse.config import load_settings
    from lakehouse.spark import session_options

    settings = load_settings("local")
    master, options = session_options(settings, {})
    assert master == settings.spark.master
    assert (
        options["spark.sql.shuffle.partitions"]
        == settings.spark.conf["spark.sql.shuffle.partitions"]
    )
    submitted = {
        "spark.master": "yarn",
        "spark.sql.shuffle.partitions": "400",
        "spark.sql.session.timeZone": "Asia/Shanghai",  # a cluster's spark-defaults.conf
        "spark.sql.extensions": "com.example.Other",
    }
    master, options = session_options(settings, submitted)
    assert master is None
    assert "spark.sql.shuffle.partitions" not in options  # spark-submit's 400 stands
    assert options["spark.sql.session.timeZone"] == "UTC"  # results depend on it
    assert options["spark.sql.ansi.enabled"] == "true"
    assert options["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"


def test_timestamp_type_is_one_of_the_settings_results_depend_on():
    """Before: a cluster's spark-defaults.conf with TIMESTAMP_NTZ won, and silver's parses of
    Shanghai times (lakehouse.silver.normalise) gave zone-less local times, not instants."""
    from lakehouse.config import load_settings
    from lakehouse.spark import session_options

    _, options = session_options(
        load_settings("local"), {"spark.sql.timestampType": "TIMESTAMP_NTZ"}
    )
    assert options["spark.sql.timestampType"] == "TIMESTAMP_LTZ"


class _Built(Exception):
    """Raised by the fake builder: the session would be made now."""


class _FakeBuilder:
    def __getattr__(self, name):
        return lambda *args, **kwargs: self

    def getOrCreate(self):
        raise _Built


@pytest.fixture()
def no_session(monkeypatch, tmp_path):
    """build_session up to the builder, with no JVM: no active session, Java taken as there."""
    from pyspark.sql import SparkSession

    from lakehouse import spark as module

    monkeypatch.setattr(SparkSession, "getActiveSession", staticmethod(lambda: None))
    monkeypatch.setattr(SparkSession, "builder", _FakeBuilder())
    monkeypatch.setattr(module, "check_java", lambda: None)
    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    monkeypatch.delenv("PYSPARK_SUBMIT_ARGS", raising=False)
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path / "no-spark-conf"))
    monkeypatch.setenv("LAKEHOUSE_LANDING", "hdfs:///landing")
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", "hdfs:///lakehouse")
    return module


def test_env_cluster_outside_spark_submit_is_a_configuration_error(no_session, monkeypatch):
    """Before: pyspark started local[*] without Delta's jars and the first table call failed
    with "'JavaPackage' object is not callable"."""
    from lakehouse.config import ConfigError, load_settings

    monkeypatch.setattr(no_session, "submitted_conf", lambda: {})
    with pytest.raises(ConfigError, match=r"spark.master is not set .* not running under spark"):
        no_session.build_session(load_settings("cluster"))
    # under spark-submit the master is its own: the builder is reached
    monkeypatch.setattr(no_session, "submitted_conf", lambda: {"spark.master": "yarn"})
    with pytest.raises(_Built):
        no_session.build_session(load_settings("cluster"))


@pytest.mark.parametrize(
    ("submit_args", "defaults", "master"),
    [
        ("--master spark://edge:7077 pyspark-shell", None, "spark://edge:7077"),
        ("--master=yarn --name x pyspark-shell", "spark.master local[2]", "yarn"),
        ("--conf spark.master=yarn pyspark-shell", None, "yarn"),
        ("", "# a comment\nspark.master     spark://head:7077\n", "spark://head:7077"),
        ("pyspark-shell", "spark.master = yarn\nspark.jars.packages io.delta:x", "yarn"),
        ("", "spark.executor.memory 4g\n", None),
        # spark-submit's order: --master over --conf, a --properties-file over the defaults
        ("--conf spark.master=a --master b pyspark-shell", None, "b"),
        ("--properties-file {dir}/edge.conf pyspark-shell", "spark.master local[2]", "yarn"),
    ],
)
def test_env_cluster_on_an_edge_node_takes_the_master_pyspark_s_launcher_takes(
    no_session, monkeypatch, tmp_path, submit_args, defaults, master
):
    """Before: `lakehouse report --env cluster` on an edge node whose spark-defaults.conf names
    the cluster was refused (its master is pyspark's launcher's, not spark-submit's)."""
    import os

    from lakehouse.config import ConfigError, load_settings

    conf_dir = tmp_path / "spark-conf"
    conf_dir.mkdir()
    if defaults is not None:
        (conf_dir / "spark-defaults.conf").write_text(defaults, encoding="utf-8")
    (conf_dir / "edge.conf").write_text("spark.master=yarn\n", encoding="utf-8")
    monkeypatch.setenv("SPARK_CONF_DIR", str(conf_dir))
    monkeypatch.setenv("PYSPARK_SUBMIT_ARGS", submit_args.format(dir=conf_dir))
    monkeypatch.setattr(no_session, "submitted_conf", lambda: {})
    assert no_session.launcher_master() == master
    if master is None:
        with pytest.raises(ConfigError, match=r"spark-defaults\.conf"):
            no_session.build_session(load_settings("cluster"), launcher_master_ok=True)
    else:
        with pytest.raises(_Built):
            no_session.build_session(load_settings("cluster"), launcher_master_ok=True)
        assert "PYSPARK_PYTHON" not in os.environ  # a cluster's executors have their own
    # The jobs never start that way: they need spark-submit's --py-files and executor settings.
    with pytest.raises(ConfigError, match="not running under spark-submit"):
        no_session.build_session(load_settings("cluster"))


def test_only_the_commands_without_a_spark_submit_script_take_the_launcher_s_master(monkeypatch):
    from lakehouse import cli
    from lakehouse import spark as module
    from lakehouse.config import load_settings

    asked = {}
    monkeypatch.setattr(
        module, "build_session", lambda settings, **kw: asked.setdefault("ok", []).append(kw)
    )
    for command in ("report", "erase", "audience", "summary", "oneid", "run", "run-all"):
        cli._session(load_settings("local"), command=command)
    assert [kw["launcher_master_ok"] for kw in asked["ok"]] == [True] * 5 + [False] * 2


def test_every_session_handed_out_is_checked_for_delta_s_classes(no_session, monkeypatch):
    """A session built here, and one already running (a notebook's, spark-submit's)."""
    from pyspark.sql import SparkSession

    from lakehouse.config import load_settings

    checked = []
    monkeypatch.setattr(no_session, "require_delta", checked.append)
    monkeypatch.setattr(no_session, "submitted_conf", lambda: {})

    class Session:
        sparkContext = type("Context", (), {"setLogLevel": lambda self, level: None})()

    built = Session()
    monkeypatch.setattr(
        SparkSession, "builder", type("B", (_FakeBuilder,), {"getOrCreate": lambda self: built})()
    )
    assert no_session.build_session(load_settings("local")) is built
    running = object()
    monkeypatch.setattr(SparkSession, "getActiveSession", staticmethod(lambda: running))
    assert no_session.build_session(load_settings("local")) is running
    assert checked == [built, running]


def test_workers_python_follows_the_master_spark_submit_gave(no_session, monkeypatch):
    """Before: `spark-submit --master yarn` with env local set PYSPARK_PYTHON to the driver's
    interpreter path, which the cluster's executors do not have."""
    import os
    import sys

    from lakehouse.config import load_settings

    monkeypatch.setattr(no_session, "submitted_conf", lambda: {"spark.master": "yarn"})
    with pytest.raises(_Built):
        no_session.build_session(load_settings("local"))
    assert "PYSPARK_PYTHON" not in os.environ
    monkeypatch.setattr(no_session, "submitted_conf", lambda: {})
    with pytest.raises(_Built):
        no_session.build_session(load_settings("local"))
    assert os.environ["PYSPARK_PYTHON"] == sys.executable


def test_a_session_without_delta_s_classes_is_a_configuration_error(spark):
    """Before: `delta_jars: provided` with nothing providing them failed at the first table
    call with "'JavaPackage' object is not callable"."""
    from lakehouse.config import ConfigError
    from lakehouse.spark import require_delta

    require_delta(spark)  # the test session has them
    with pytest.raises(
        ConfigError, match=r"io\.delta\.tables\.NoSuchTable\) are not on .* --packages"
    ):
        require_delta(spark, "io.delta.tables.NoSuchTable")
