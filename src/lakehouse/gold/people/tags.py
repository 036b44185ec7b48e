"""The tag catalog (conf/tags.yml) computed into the tall table gold.member_tags.

A tag is a Spark SQL expression. `over: portrait` tags are evaluated on each portrait row;
`over: orders` tags are aggregates over the member's order history (portrait.HISTORY_COLUMNS),
grouped by one_id. The value is converted to the tag's `type` (try_cast: a value that does not
convert is null) and written as text; a null value gives the member no row for that tag.

Adding a tag is a catalog entry plus a test: no code. `check_catalog` runs at job start and
names the tag whose SQL does not parse, names an unknown column, is not an aggregate (orders
tags) or has a type that does not fit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from pyspark.errors import AnalysisException, ParseException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DataType,
    NullType,
    NumericType,
    StringType,
    StructField,
    StructType,
)

from lakehouse.gold.people.settings import TagCatalog, TagDefinition
from lakehouse.runtime import JobError
from lakehouse.spark import small_frame

TAG_COLUMNS = ["one_id", "tag_code", "tag_value", "as_of"]
CATALOG_SCHEMA = StructType(
    [
        StructField("tag_code", StringType(), False),
        StructField("name_cn", StringType(), False),
        StructField("name_en", StringType(), False),
        StructField("category", StringType(), False),
        StructField("over", StringType(), False),
        StructField("definition", StringType(), False),
        StructField("value_type", StringType(), False),
        StructField("refresh", StringType(), False),
        StructField("description", StringType(), True),
    ]
)


class TagError(JobError):
    """A tag of the catalog cannot be computed; the message names it."""


def sql_error(exc: Exception) -> str:
    """One readable sentence for a Spark parse or analysis error: the unknown column and the
    suggestions, or the syntax fault with its position."""
    condition = ""
    params: dict = {}
    try:
        condition = exc.getCondition() or ""  # type: ignore[attr-defined]
        params = exc.getMessageParameters() or {}  # type: ignore[attr-defined]
    except Exception:  # pragma: no cover - older pyspark
        pass
    if condition.startswith("UNRESOLVED_COLUMN") or condition.startswith("UNRESOLVED_FIELD"):
        name = params.get("objectName", "?")
        hint = params.get("proposal")
        return f"unknown column {name}" + (f" (did you mean {hint}?)" if hint else "")
    if condition.startswith("UNRESOLVED_ROUTINE"):
        return f"unknown function {params.get('routineName', '?')}"
    if isinstance(exc, ParseException) or condition.startswith("PARSE_SYNTAX_ERROR"):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else condition
        return f"syntax error: {first}"
    text = str(exc).strip().splitlines()
    return text[0] if text else condition or type(exc).__name__


def _compatible(declared: str, actual: DataType) -> bool:
    if isinstance(actual, NullType) or declared == "string":
        return True
    if declared == "boolean":
        return isinstance(actual, BooleanType)
    return isinstance(actual, NumericType)


def _expression(tag: TagDefinition, frame: DataFrame) -> DataFrame:
    """`frame` with the tag's value as column `value` (portrait: per row; orders: per one_id).
    Raises TagError naming the tag."""
    try:
        value = F.expr(tag.expr)
        if tag.over == "portrait":
            out = frame.select("one_id", value.alias("value"))
        else:
            out = frame.groupBy("one_id").agg(value.alias("value"))
        actual = out.schema["value"].dataType
    except (AnalysisException, ParseException) as exc:
        where = "the portrait" if tag.over == "portrait" else "the order history (an aggregate)"
        raise TagError(
            f"tag {tag.code} (conf/tags.yml): {sql_error(exc)} in `{tag.expr}` over {where}"
        ) from None
    if not _compatible(tag.type, actual):
        raise TagError(
            f"tag {tag.code} (conf/tags.yml): type {tag.type} but `{tag.expr}` gives "
            f"{actual.simpleString()}"
        )
    return out


def check_catalog(catalog: TagCatalog, portrait: DataFrame, history: DataFrame) -> None:
    """Fail before any work when a tag cannot be computed or shadows a portrait column."""
    columns = {c.lower() for c in portrait.columns}
    for tag in catalog:
        if tag.code.lower() in columns:
            raise TagError(
                f"tag {tag.code} (conf/tags.yml): the code is also a portrait column; audiences "
                "select on both, so pick another code"
            )
        _expression(tag, portrait.limit(0) if tag.over == "portrait" else history.limit(0))


def due(tag: TagDefinition, as_of: date) -> bool:
    """daily: every run; weekly: Mondays; monthly: the 1st."""
    return period_start(tag, as_of) == as_of


def period_start(tag: TagDefinition, as_of: date) -> date:
    """The first day of the refresh period `as_of` falls in: itself (daily), its week's Monday
    (weekly), its month's 1st (monthly)."""
    if tag.refresh == "weekly":
        return as_of - timedelta(days=as_of.weekday())
    if tag.refresh == "monthly":
        return as_of.replace(day=1)
    return as_of


def _as_text(tag: TagDefinition, value) -> object:
    typed = value if tag.type == "string" else value.try_cast(tag.type)
    return typed.cast("string")


def tag_values(
    tags: list[TagDefinition], portrait: DataFrame, history: DataFrame, as_of: date
) -> DataFrame:
    """TAG_COLUMNS for `tags`: one row per (one_id, tag) whose value is not null."""
    day = F.lit(as_of).cast("date")
    parts: list[DataFrame] = []
    row_tags = [t for t in tags if t.over == "portrait"]
    if row_tags:
        pairs = F.array(
            *[
                F.struct(
                    F.lit(t.code).alias("tag_code"),
                    _as_text(t, F.expr(t.expr)).alias("tag_value"),
                )
                for t in row_tags
            ]
        )
        parts.append(
            portrait.select("one_id", F.explode(pairs).alias("t")).select(
                "one_id", "t.tag_code", "t.tag_value"
            )
        )
    history_tags = [t for t in tags if t.over == "orders"]
    if history_tags:
        values = [F.expr(t.expr).alias(f"_v{i}") for i, t in enumerate(history_tags)]
        # A member without orders gets what the expression gives over no orders (count_if 0,
        # so "bought in 30 days" is false; sum null, so no row), not a missing row: an
        # audience's `NOT bought_30d` must not drop every prospect.
        over_nothing = history.limit(0).agg(*values)
        no_orders = (
            portrait.select("one_id")
            .join(history.select("one_id"), "one_id", "left_anti")
            .crossJoin(over_nothing)
        )
        agg = history.groupBy("one_id").agg(*values).unionByName(no_orders)
        pairs = F.array(
            *[
                F.struct(
                    F.lit(t.code).alias("tag_code"),
                    _as_text(t, F.col(f"_v{i}")).alias("tag_value"),
                )
                for i, t in enumerate(history_tags)
            ]
        )
        parts.append(
            agg.select("one_id", F.explode(pairs).alias("t")).select(
                "one_id", "t.tag_code", "t.tag_value"
            )
        )
    if not parts:
        return small_frame(
            portrait.sparkSession,
            [],
            "one_id string, tag_code string, tag_value string, as_of date",
        )
    rows = parts[0]
    for part in parts[1:]:
        rows = rows.unionByName(part)
    return rows.where(F.col("tag_value").isNotNull()).select(
        "one_id", "tag_code", "tag_value", day.alias("as_of")
    )


def redefined_tags(catalog: TagCatalog, published: Sequence[Any]) -> dict[str, str]:
    """`code -> "new" | "changed"` for each catalog tag without a row in `published` (rows of
    gold.tag_catalog), or whose value-defining fields (over, expr, type) differ from its row."""
    known = {r["tag_code"]: (r["over"], r["definition"], r["value_type"]) for r in published}
    stale = {}
    for tag in catalog:
        if tag.code not in known:
            stale[tag.code] = "new"
        elif known[tag.code] != (tag.over, tag.expr, tag.type):
            stale[tag.code] = "changed"
    return stale


def to_compute(
    catalog: TagCatalog, as_of: date, computed_on: Mapping[str, date], published: Sequence[Any]
) -> list[TagDefinition]:
    """The tags computed on `as_of`: those due, those without rows yet, those last computed
    for everyone before their period began (`computed_on`: tag code → the oldest `as_of` of its
    rows), and those whose definition changed since the catalog was last published (carried
    over, a weekly tag would keep the old definition's values until Monday under the new
    definition's name).

    Why the period: with no run on the Monday (or the 1st), a weekly tag was carried from the
    Monday before until the next one, two weeks old, while gold.tag_catalog said it was
    published today.
    """
    changed = {c for c, kind in redefined_tags(catalog, published).items() if kind == "changed"}
    return [
        t
        for t in catalog
        if due(t, as_of)
        or t.code not in computed_on
        or computed_on[t.code] < period_start(t, as_of)
        or t.code in changed
    ]


def carried_over(
    kept: list[TagDefinition],
    previous: DataFrame,
    portrait: DataFrame,
    history: DataFrame,
    as_of: date,
) -> DataFrame:
    """TAG_COLUMNS of the tags not due on `as_of`: their rows in `previous` for the people of
    `portrait`, and the tags computed for the people `previous` holds no row of theirs for.

    Why the last: a weekly tag carried from Monday holds Monday's people only; a member new on
    Tuesday, or the new piece of a One ID split, would have no value until the next Monday, and
    both `omni_channel` and `NOT omni_channel` would leave them out of an audience.
    """
    codes = [t.code for t in kept]
    carried = previous.where(F.col("tag_code").isin(codes)).join(
        portrait.select("one_id"), "one_id", "left_semi"
    )
    # Each kept tag is computed for the people it has no carried row for (a member with a row
    # of one kept tag may lack another: a null value then, a buyer since). A value that was
    # null is computed again, which gives the same null unless their orders changed.
    missing = (
        portrait.select("one_id")
        .crossJoin(small_frame(portrait.sparkSession, [(c,) for c in codes], "tag_code string"))
        .join(carried.select("one_id", "tag_code"), ["one_id", "tag_code"], "left_anti")
    )
    newcomers = portrait.join(missing.select("one_id"), "one_id", "left_semi")
    their_orders = history.join(newcomers.select("one_id"), "one_id", "left_semi")
    fresh = tag_values(kept, newcomers, their_orders, as_of).join(
        missing, ["one_id", "tag_code"], "left_semi"
    )
    return carried.select(*TAG_COLUMNS).unionByName(fresh)


def catalog_frame(spark: SparkSession, catalog: TagCatalog) -> DataFrame:
    """The catalog as gold.tag_catalog rows."""
    rows = [
        (
            t.code,
            t.name_cn,
            t.name_en,
            t.category,
            t.over,
            t.expr,
            t.type,
            t.refresh,
            t.description,
        )
        for t in catalog
    ]
    return small_frame(spark, rows, CATALOG_SCHEMA)


def pivot_tags(tags: DataFrame, catalog: TagCatalog) -> DataFrame:
    """one_id and one column per catalog tag (typed back to the tag's type), from the tall
    member_tags rows. A member without a value for a tag has null there."""
    defs = list(catalog)
    if not defs:
        return tags.select("one_id").distinct()
    return tags.groupBy("one_id").agg(
        *[
            (
                F.max(F.when(F.col("tag_code") == t.code, F.col("tag_value")))
                if t.type == "string"
                else F.max(F.when(F.col("tag_code") == t.code, F.col("tag_value"))).try_cast(t.type)
            ).alias(t.code)
            for t in defs
        ]
    )
