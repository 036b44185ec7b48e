"""Table maintenance (`ops.maintenance`): OPTIMIZE, Z-ORDER, VACUUM and table properties.

Runs over every Delta table of the warehouse (`<warehouse>/<layer>/<table>`); what it does to
each is configured in conf/maintenance.yml. It is not part of the daily layers (`run-layer all`
does not run it): schedule it when no daily job writes, e.g. once a week, because OPTIMIZE and
VACUUM rewrite and delete files that a concurrent writer or a long reader may still use.

VACUUM never goes below Delta's default retention (168 hours) unless the configuration says so
explicitly (`vacuum.allow_below_default_retention: true`); only then is Delta's own retention
check switched off, for that one call, and the run log says so.
"""

from __future__ import annotations

import re
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DELTA_DEFAULT_RETENTION_HOURS = 168
RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"
TABLE_NAME = re.compile(r"^(bronze|silver|oneid|gold|ops)\.[A-Za-z0-9_]+$")
PROPERTY_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class RetentionError(ValueError):
    """A VACUUM retention below Delta's default that the configuration did not allow."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_retention(hours: float, allowed: bool, where: str) -> None:
    if hours < DELTA_DEFAULT_RETENTION_HOURS and not allowed:
        raise RetentionError(
            f"{where} is {hours:g} hours, below Delta's default retention of "
            f"{DELTA_DEFAULT_RETENTION_HOURS} hours (7 days): VACUUM would delete files that a "
            "reader of an older version (time travel, a running query, a streaming or CDF "
            "reader) or a concurrent write may still need. Raise it to at least "
            f"{DELTA_DEFAULT_RETENTION_HOURS}, or set "
            "maintenance.vacuum.allow_below_default_retention: true to accept that risk"
        )


class VacuumSettings(_Strict):
    enabled: bool = True
    retention_hours: float = Field(default=DELTA_DEFAULT_RETENTION_HOURS, ge=0)
    # Below 168 hours Delta refuses VACUUM unless its retention check is switched off; only
    # this flag lets the job do that (for the one call, and the run log records it).
    allow_below_default_retention: bool = False
    # Tasks VACUUM lists files with; null: the session's default parallelism.
    parallelism: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _retention_allowed(self) -> VacuumSettings:
        try:
            _check_retention(
                self.retention_hours,
                self.allow_below_default_retention,
                "maintenance.vacuum.retention_hours",
            )
        except RetentionError as exc:
            raise ValueError(str(exc)) from None
        return self


class TableMaintenance(_Strict):
    """What to do to one table beyond the defaults."""

    optimize: bool | None = None  # None: maintenance.optimize
    vacuum: bool | None = None  # None: maintenance.vacuum.enabled
    # VACUUM keeps files this table's versions of the last N hours need (None: the default
    # maintenance.vacuum.retention_hours). Time travel to a version needs its files: a table
    # read as of an earlier day (the portrait, SCD2 history to restore) keeps them longer.
    retention_hours: float | None = Field(default=None, ge=0)
    # OPTIMIZE ... ZORDER BY these columns (instead of plain compaction). Columns missing from
    # the table, and partition columns (Delta refuses them), are left out with a note.
    zorder_by: list[str] = Field(default_factory=list)
    # Table properties set when they differ (ALTER TABLE ... SET TBLPROPERTIES).
    properties: dict[str, str] = Field(default_factory=dict)

    @field_validator("properties", mode="before")
    @classmethod
    def _values_as_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                str(k): (str(v).lower() if isinstance(v, bool) else str(v))
                for k, v in value.items()
            }
        return value

    @field_validator("properties")
    @classmethod
    def _property_names(cls, value: dict[str, str]) -> dict[str, str]:
        wrong = [k for k in value if not PROPERTY_NAME.match(k)]
        if wrong:
            raise ValueError(f"invalid table property name {', '.join(map(repr, wrong))}")
        return value

    @field_validator("zorder_by")
    @classmethod
    def _distinct_columns(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("zorder_by lists a column twice")
        return value


class MaintenanceSettings(_Strict):
    """conf/maintenance.yml `maintenance`."""

    optimize: bool = True
    vacuum: VacuumSettings = Field(default_factory=VacuumSettings)
    # By table name `<layer>.<table>`; a configured table that does not exist (yet) is skipped
    # with a note, so gold tables can be configured before their jobs land.
    tables: dict[str, TableMaintenance] = Field(default_factory=dict)

    @field_validator("tables")
    @classmethod
    def _table_names(cls, value: dict[str, TableMaintenance]) -> dict[str, TableMaintenance]:
        wrong = [name for name in value if not TABLE_NAME.match(name)]
        if wrong:
            raise ValueError(
                f"table {', '.join(map(repr, wrong))} is not <layer>.<table> with layer one of "
                "bronze, silver, oneid, gold, ops"
            )
        return value

    @model_validator(mode="after")
    def _table_retention_allowed(self) -> MaintenanceSettings:
        try:
            self.check_table_retentions()
        except RetentionError as exc:
            raise ValueError(str(exc)) from None
        return self

    def check_table_retentions(self) -> None:
        """RetentionError for a table's own retention below the default, unless allowed."""
        for name, table in self.tables.items():
            if table.retention_hours is not None:
                _check_retention(
                    table.retention_hours,
                    self.vacuum.allow_below_default_retention,
                    f"maintenance.tables.{name}.retention_hours",
                )

    def for_table(self, name: str) -> TableMaintenance:
        return self.tables.get(name, TableMaintenance())

    def retention_hours(self, name: str) -> float:
        """The VACUUM retention of table `name`: its own, or the default."""
        own = self.for_table(name).retention_hours
        return self.vacuum.retention_hours if own is None else own


# --- the job --------------------------------------------------------------------------------


def warehouse_tables(spark, warehouse: str) -> list[tuple[str, str]]:
    """Every Delta table `(layer, table)` under `<warehouse>/<layer>/`, on any Hadoop file
    system (local, hdfs://, s3a://)."""
    from delta.tables import DeltaTable

    from lakehouse.tables import LAYERS

    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    found = []
    for layer in LAYERS:
        folder = jvm.org.apache.hadoop.fs.Path(f"{warehouse.rstrip('/')}/{layer}")
        fs = folder.getFileSystem(conf)
        if not fs.exists(folder):
            continue
        for status in sorted(fs.listStatus(folder), key=lambda s: s.getPath().getName()):
            name = status.getPath().getName()
            if not status.isDirectory() or name.startswith(("_", ".")):
                continue
            if DeltaTable.isDeltaTable(spark, f"{warehouse.rstrip('/')}/{layer}/{name}"):
                found.append((layer, name))
    return found


def _detail(spark, path: str) -> dict[str, Any]:
    from delta.tables import DeltaTable

    row = DeltaTable.forPath(spark, path).detail().first()
    return {
        "files": int(row["numFiles"] or 0),
        "bytes": int(row["sizeInBytes"] or 0),
        "partition_columns": list(row["partitionColumns"] or []),
        "properties": dict(row["properties"] or {}),
    }


def _vacuum(spark, table, vacuum: VacuumSettings, hours: float) -> bool:
    """VACUUM; returns whether Delta's retention check had to be switched off for it."""
    # VACUUM lists the table's files in as many tasks as this setting (Spark's default: 10000,
    # minutes of empty tasks for a small table on a small machine).
    parallelism = vacuum.parallelism or spark.sparkContext.defaultParallelism
    conf = {LISTING_PARALLELISM: str(parallelism)}
    short = hours < DELTA_DEFAULT_RETENTION_HOURS
    if short:
        # Settings built in code bypass the model's validator: check again.
        _check_retention(hours, vacuum.allow_below_default_retention, "retention_hours")
        conf[RETENTION_CHECK] = "false"
    from lakehouse.spark import session_conf  # config imports this module; spark imports config

    with session_conf(spark, conf):
        table.vacuum(hours)
    return short


DELTA_DEFAULT_LOG_RETENTION_HOURS = 720


def time_travel_properties(hours: float | None) -> dict[str, str]:
    """The table properties that let time travel reach back as far as VACUUM keeps files.

    Why: Delta refuses to time travel (or RESTORE) beyond the table's
    `delta.deletedFileRetentionDuration` (7 days unless set), whatever VACUUM was told to keep:
    a table kept 30 days for time travel needs the property too. The log is kept as long when
    that is more than Delta's 30 days (a version without its log entry is gone as well).
    """
    if hours is None or hours <= DELTA_DEFAULT_RETENTION_HOURS:
        return {}
    interval = (
        f"interval {hours:g} hours"
        if hours == int(hours)
        else f"interval {round(hours * 60)} minutes"
    )
    properties = {"delta.deletedFileRetentionDuration": interval}
    if hours > DELTA_DEFAULT_LOG_RETENTION_HOURS:
        properties["delta.logRetentionDuration"] = interval
    return properties


def maintain_table(spark, settings: MaintenanceSettings, layer: str, name: str, path: str) -> dict:
    """Properties, then OPTIMIZE (compaction or Z-ORDER), then VACUUM, for one table."""
    from delta.tables import DeltaTable

    full = f"{layer}.{name}"
    config = settings.for_table(full)
    started = time.monotonic()
    before = _detail(spark, path)
    done: dict[str, Any] = {"table": full, "files_before": before["files"]}
    notes: list[str] = []

    vacuum_on = config.vacuum if config.vacuum is not None else settings.vacuum.enabled
    hours = settings.retention_hours(full) if vacuum_on else None
    wanted = {**time_travel_properties(hours), **config.properties}
    changed = {k: v for k, v in wanted.items() if before["properties"].get(k) != v}
    if changed:
        assignments = ", ".join(
            f"'{k}' = '{v.replace(chr(39), chr(39) * 2)}'" for k, v in sorted(changed.items())
        )
        spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ({assignments})")
    done["properties_set"] = changed

    table = DeltaTable.forPath(spark, path)
    if config.optimize if config.optimize is not None else settings.optimize:
        columns = set(spark.read.format("delta").load(path).columns)
        zorder = []
        for column in config.zorder_by:
            if column not in columns:
                notes.append(f"zorder column {column} is not in the table: left out")
            elif column in before["partition_columns"]:
                notes.append(f"zorder column {column} is a partition column: left out")
            else:
                zorder.append(column)
        if zorder:
            metrics = table.optimize().executeZOrderBy(*zorder).first()["metrics"]
            done["optimize"] = "zorder"
            done["zorder_by"] = zorder
        else:
            metrics = table.optimize().executeCompaction().first()["metrics"]
            done["optimize"] = "compaction"
        done["files_added"] = int(metrics["numFilesAdded"])
        done["files_removed"] = int(metrics["numFilesRemoved"])
    else:
        done["optimize"] = "off"

    if hours is not None:
        check_off = _vacuum(spark, table, settings.vacuum, hours)
        done["vacuum_retention_hours"] = hours
        if check_off:
            notes.append(
                f"VACUUM retained {hours:g} h, below Delta's {DELTA_DEFAULT_RETENTION_HOURS} h: "
                f"{RETENTION_CHECK} was off for this call (allow_below_default_retention)"
            )
    else:
        done["vacuum_retention_hours"] = None

    done["files_after"] = _detail(spark, path)["files"]
    done["seconds"] = round(time.monotonic() - started, 3)
    if notes:
        done["notes"] = notes
    return done


def run_maintenance(ctx):
    """The `ops.maintenance` job: every table of the warehouse, one after another."""
    from lakehouse.runtime import JobError, JobResult

    settings: MaintenanceSettings = ctx.settings.maintenance
    # Refuse a short retention before touching anything, also for settings built in code.
    try:
        _check_retention(
            settings.vacuum.retention_hours,
            settings.vacuum.allow_below_default_retention or not settings.vacuum.enabled,
            "maintenance.vacuum.retention_hours",
        )
        settings.check_table_retentions()  # settings built in code bypass the validator
    except RetentionError as exc:
        raise JobError(str(exc)) from None
    present = warehouse_tables(ctx.spark, ctx.settings.warehouse)
    names = {f"{layer}.{name}" for layer, name in present}
    missing = sorted(set(settings.tables) - names)
    report = []
    versions = {}
    failed = []
    for layer, name in present:
        path = ctx.tables.path(layer, name)
        try:  # one table's failure must not leave the others unmaintained
            report.append(maintain_table(ctx.spark, settings, layer, name, path))
        except Exception as exc:
            first = (str(exc).splitlines() or [""])[0]
            failed.append(f"{layer}.{name} ({type(exc).__name__}: {first})")
            continue
        versions[f"{layer}.{name}"] = ctx.tables.version(layer, name)
    details = {
        "tables": report,
        "skipped": [{"table": t, "note": "configured but does not exist (yet)"} for t in missing],
    }
    if not present:
        details["note"] = f"no Delta table under {ctx.settings.warehouse}"
    done = JobResult(versions=versions, details=details)
    if failed:
        # The run log keeps what was done to the others (files, retention, notes).
        details["failed"] = failed
        raise JobError(
            f"maintenance failed for {len(failed)} of {len(present)} tables (the others are "
            f"done): {'; '.join(failed)}",
            partial=done,
        )
    return done
