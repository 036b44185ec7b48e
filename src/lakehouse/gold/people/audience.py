"""Audiences (人群圈选): members selected by a Spark SQL condition over portrait and tags.

The selection runs over one row per member: every gold.member_portrait column plus one column
per catalog tag (named by its code, typed by its `type`). Opted-out members
(marketing_opt_out) are removed after the condition, whatever it says, and the
gold.audience_members gate checks it again against the portrait before anything is written.

Tables: gold.audience_members (audience, one_id, created_at), one slice per audience, replaced
when the audience is created again; gold.audiences (audience, where_expr, members, as_of,
created_at), one row per audience.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from pyspark.errors import AnalysisException, ParseException, PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.config import Settings
from lakehouse.gold.people import pii
from lakehouse.gold.people.settings import TagCatalog
from lakehouse.gold.people.tags import pivot_tags, redefined_tags, sql_error
from lakehouse.quality.gate import raise_if_failed, run_gate
from lakehouse.quality.results import record_results
from lakehouse.spark import small_frame
from lakehouse.tables import Tables

LAYER = "gold"
AUDIENCE_RUN = "audience-"  # run ids of audience gates: audience-<name>-<12 hex digits>
NAME = re.compile(r"^[\w\-\u4e00-\u9fff]{1,64}$")


class AudienceError(ValueError):
    """A bad audience name, expression or channel; the message says which and why."""


@dataclass(frozen=True)
class Created:
    audience: str
    members: int
    opted_out_removed: int
    as_of: date
    version: int


@dataclass(frozen=True)
class Exported:
    audience: str
    channel: str
    rows: int
    without_identifier: int
    path: str
    opted_out: int = 0  # members opted out since the audience was created: left out
    # members whose One ID was merged away, split or dissolved since: no golden record to read
    no_longer_in_oneid: int = 0


def check_name(name: str) -> str:
    if not NAME.fullmatch(name or ""):
        raise AudienceError(
            f"audience name {name!r}: use 1-64 letters, digits, _ or - (Chinese allowed)"
        )
    return name


def selection_view(tables: Tables, settings: Settings) -> DataFrame:
    """One row per member: portrait columns and one column per catalog tag."""
    if not tables.exists(LAYER, "member_portrait"):
        raise AudienceError(
            "gold.member_portrait does not exist: run gold.member_portrait (and gold.member_tags)"
            " first"
        )
    portrait = tables.read(LAYER, "member_portrait")
    catalog = settings.tags
    if len(catalog):
        _require_current_tags(tables, portrait, catalog)
        tags = pivot_tags(tables.read(LAYER, "member_tags"), catalog)
    else:
        schema = ", ".join(["one_id string", *[f"`{t.code}` {t.type}" for t in catalog]])
        tags = small_frame(tables.spark, [], schema)
    shadowed = [t.code for t in catalog if t.code.lower() in {c.lower() for c in portrait.columns}]
    if shadowed:
        tags = tags.drop(*shadowed)
    return portrait.join(tags, "one_id", "left")


def _require_current_tags(tables: Tables, portrait: DataFrame, catalog: TagCatalog) -> None:
    """AudienceError unless gold.member_tags was built for the portrait's day with the tags of
    conf/tags.yml as they are now.

    Why: a member the tags table has not seen reads null in every tag column, and both
    `bought_30d` and `NOT bought_30d` leave a null out; an audience over missing or stale tags
    would be silently short. gold.tag_catalog is republished with the tags (`published_on`), so
    it says which day they are of even when every row of a tag was carried over, and which
    definitions they were computed with: a tag added to conf/tags.yml since has no row at all,
    a changed one holds the old definition's values.
    """
    portrait_day = portrait.agg(F.max("as_of")).first()[0]
    if portrait_day is None:
        return  # no member: nothing to select, whatever the tags
    if not (tables.exists(LAYER, "member_tags") and tables.exists(LAYER, "tag_catalog")):
        raise AudienceError(
            "gold.member_tags does not exist: run gold.member_tags for "
            f"{portrait_day} first (its tags are columns of the selection)"
        )
    published = tables.read(LAYER, "tag_catalog").collect()  # one row per tag
    tags_day = max((r["published_on"] for r in published), default=None)
    if tags_day != portrait_day:
        raise AudienceError(
            f"gold.member_tags is as of {tags_day}, gold.member_portrait as of {portrait_day}: "
            f"run gold.member_tags for {portrait_day} first (members it has not seen would read "
            "null in every tag and fall out of the audience)"
        )
    latest = [r for r in published if r["published_on"] == tags_day]
    stale = [f"{code} ({kind})" for code, kind in redefined_tags(catalog, latest).items()]
    if stale:
        raise AudienceError(
            f"conf/tags.yml has tags gold.member_tags of {portrait_day} was not built with: "
            f"{', '.join(stale)}: run gold.member_tags for {portrait_day} again (every member "
            "would read null, or the old definition's value, in them)"
        )


def select(view: DataFrame, where: str) -> DataFrame:
    """Rows of `view` meeting `where`; AudienceError naming the unknown column or the syntax
    fault. The check is eager (analysis), before any data is read."""
    if not where or not where.strip():
        raise AudienceError("--where is empty: give a condition, e.g. \"lifecycle = '忠诚'\"")
    try:
        condition = F.expr(where)
        alias = _trailing_alias(view.sparkSession, where)
        if alias is not None:
            raise AudienceError(
                f"--where {where!r}: syntax error: the condition ends in `{alias}`, which Spark "
                "would read as a column alias; finish or remove it"
            )
        chosen = view.where(condition)
        chosen.schema  # noqa: B018 - forces analysis now
    except (AnalysisException, ParseException) as exc:
        raise AudienceError(f"--where {where!r}: {sql_error(exc)}") from None
    # A condition that draws anew each time it is evaluated (rand(), uuid()) selects other
    # members in the count, the gate and the write: the opted-out count went negative, and no
    # two creates agreed. A hash of one_id samples the same members every time.
    if _deterministic(chosen) is False:
        raise AudienceError(
            f"--where {where!r}: the condition is not deterministic (rand(), random(), uuid(), "
            "shuffle() ...), so each evaluation would select other members; for a sample use "
            "a hash of one_id, e.g. pmod(xxhash64(one_id, 'hold-out-1'), 100) < 10"
        )
    return chosen


def _deterministic(chosen: DataFrame) -> bool | None:
    """Whether the filter `view.where` added is deterministic: read from the analysed plan (its
    Filter, under any single-child node); None when the plan cannot be read (Spark Connect)."""
    try:
        plan = chosen._jdf.queryExecution().analyzed()
        while plan.nodeName() != "Filter":
            if plan.children().size() != 1:
                return None
            plan = plan.children().head()
        return bool(plan.condition().deterministic())
    except Exception:
        return None


def _trailing_alias(spark: SparkSession, where: str) -> str | None:
    """The alias Spark's expression parser reads into `where` (`a = 1 AND` parses as
    `(a = 1) AS AND`); None when there is none or the check is unavailable (Spark Connect)."""
    try:
        parsed = spark._jsparkSession.sessionState().sqlParser().parseExpression(where)
        if parsed.getClass().getSimpleName() == "Alias":
            return str(parsed.name())
    except Exception:
        return None
    return None


def _count_selected(chosen: DataFrame, where: str) -> int:
    """The number of rows meeting the condition; AudienceError when it fails on the data.

    Why: ANSI mode (conf/*.yml) makes a division by zero or a bad cast an error raised while
    rows are read, which the eager check in `select` cannot see; it is the condition's fault
    (exit 2 with the reason), not a crash. Spark reports these as SQLSTATE class 22 (data
    exception); anything else is re-raised.
    """
    try:
        return chosen.count()
    except PySparkException as exc:
        try:
            state = exc.getSqlState() or ""
        except Exception:  # pragma: no cover - older pyspark
            state = ""
        if not state.startswith("22"):
            raise
        lines = str(exc).strip().splitlines()
        reason = lines[0] if lines else state
        # conf/*.yml requires ANSI mode: Spark's hint to turn it off does not apply
        reason = re.sub(r"\s*If necessary set .*? to bypass this error\.", "", reason)
        reason = re.sub(r"\s*SQLSTATE: \w+\s*$", "", reason).rstrip(". ")
        raise AudienceError(
            f"--where {where!r}: fails on the data: {reason}; use try_divide / try_cast (null "
            "where the value does not compute)"
        ) from None


def create(
    spark: SparkSession, tables: Tables, settings: Settings, name: str, where: str
) -> Created:
    """Select, remove opted-out members, gate and write the audience."""
    check_name(name)
    view = selection_view(tables, settings)
    chosen = select(view, where)
    as_of = view.agg(F.max("as_of")).first()[0]
    selected = _count_selected(chosen, where)
    created_at = datetime.now(UTC).replace(microsecond=0)
    members = (
        chosen.where(~F.col("marketing_opt_out"))
        .select(
            F.lit(name).alias("audience"),
            "one_id",
            F.lit(created_at).cast("timestamp").alias("created_at"),
        )
        .distinct()
        .cache()
    )
    count = members.count()
    contactable = tables.read(LAYER, "member_portrait").where(~F.col("marketing_opt_out"))
    # The name is in the run id: the report tells one audience's check from another's rerun.
    run_id, run_date = f"{AUDIENCE_RUN}{name}-{uuid.uuid4().hex[:12]}", as_of or date.today()
    summary = small_frame(
        spark,
        [(name, where, count, as_of, created_at)],
        "audience string, where_expr string, members long, as_of date, created_at timestamp",
    )
    try:
        # Both gates pass before either table is written: a failed summary gate must not leave
        # the new members under the old condition and count.
        with (
            run_gate(
                members,
                "gold.audience_members",
                key_columns=["audience", "one_id"],
                run_id=run_id,
                run_date=run_date,
                references={"contactable": contactable.select("one_id")},
            ) as members_gate,
            run_gate(
                summary,
                "gold.audiences",
                key_columns=["audience"],
                run_id=run_id,
                run_date=run_date,
            ) as summary_gate,
        ):
            for outcome in (members_gate, summary_gate):
                record_results(tables, outcome)
            for outcome in (members_gate, summary_gate):
                raise_if_failed(outcome)
            version = tables.replace_where(
                members, LAYER, "audience_members", f"audience = '{name}'"
            )
            tables.replace_where(summary, LAYER, "audiences", f"audience = '{name}'")
    finally:
        members.unpersist()
    return Created(name, count, selected - count, as_of, version)


def list_audiences(tables: Tables) -> list[dict]:
    if not tables.exists(LAYER, "audiences"):
        return []
    return [r.asDict() for r in tables.read(LAYER, "audiences").orderBy("audience").collect()]


def _export_value(value, how: str, salt_value: str | None):
    if how == "sha256":
        return F.sha2(value, 256)
    if how == "md5":
        return F.md5(value)
    if how == "salted_sha256":
        return pii.salted_hash(value, salt_value or "")
    return value


def export(
    spark: SparkSession,
    tables: Tables,
    settings: Settings,
    name: str,
    channel: str,
    out: str | None = None,
) -> Exported:
    """Write the audience's contactable identifiers for `channel` (one CSV file in a folder:
    one_id, <identifier> or <identifier>_<hash>). Members without the channel's identifier are
    counted, not written; members opted out since the audience was created are left out, and
    so are members whose One ID no longer exists (counted apart: creating the audience again
    finds the people under their current One ID)."""
    cfg = settings.gold.people
    check_name(name)
    spec = cfg.export_channels.get(channel.upper())
    if spec is None:
        raise AudienceError(
            f"unknown channel {channel!r}; configured in conf/gold.yml "
            f"(gold.people.export_channels): {', '.join(sorted(cfg.export_channels))}"
        )
    # Existence from gold.audiences, not from member rows: an audience created again with no
    # member still exists, and its export must replace the earlier file (raw contact data of
    # people the new condition leaves out) with an empty one.
    known = [a["audience"] for a in list_audiences(tables)]
    if name not in known:
        raise AudienceError(
            f"no audience {name!r}: create it first (lakehouse audience create); known: "
            f"{', '.join(known) if known else '(none)'}"
        )
    members = tables.read(LAYER, "audience_members").where(F.col("audience") == name)
    if not tables.exists("oneid", "golden_members"):
        raise AudienceError("oneid.golden_members does not exist: run oneid.golden first")
    salt_value = pii.salt(cfg) if spec.hash == "salted_sha256" else None
    golden = tables.read("oneid", "golden_members").select(
        "one_id",
        F.col(spec.identifier).alias("_id"),
        "marketing_opt_out",
        F.lit(True).alias("_golden"),
    )
    everyone = members.join(golden, "one_id", "left")
    opted_out = F.coalesce(F.col("marketing_opt_out"), F.lit(False))
    joined = everyone.where(~opted_out)
    column = spec.identifier if spec.hash == "none" else f"{spec.identifier}_{spec.hash}"
    rows = joined.where(F.col("_id").isNotNull()).select(
        "one_id", _export_value(F.col("_id"), spec.hash, salt_value).alias(column)
    )
    counts = everyone.agg(
        F.count(F.lit(1)).alias("all"),
        F.count_if(opted_out).alias("opted_out"),
        F.count_if(F.col("_golden").isNull()).alias("gone"),
    ).first()
    gone = int(counts["gone"])
    total = int(counts["all"]) - int(counts["opted_out"]) - gone
    written = rows.count()
    base = out or cfg.export_dir or f"{settings.warehouse.rstrip('/')}/_exports"
    path = f"{base.rstrip('/')}/{name}/{channel.upper()}"
    if "://" not in path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    rows.orderBy("one_id").coalesce(1).write.mode("overwrite").option("header", True).csv(path)
    return Exported(
        name, channel.upper(), written, total - written, path, int(counts["opted_out"]), gone
    )
