"""What landed and what was quarantined: the reconciliation people read after a run."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def delivery_summary(ingested_files: DataFrame) -> DataFrame:
    """Per dataset: files, re-deliveries, data lines, rows landed, lines quarantined."""
    return (
        ingested_files.groupBy(F.coalesce("dataset", F.lit("(unrecognized)")).alias("dataset"))
        .agg(
            F.count_if(F.col("status") == "INGESTED").alias("files"),
            F.count_if(F.col("status") == "REDELIVERY").alias("redelivered"),
            F.count_if(F.col("status") == "UNRECOGNIZED").alias("unrecognized"),
            F.coalesce(F.sum("data_lines"), F.lit(0)).alias("data_lines"),
            F.coalesce(F.sum("rows"), F.lit(0)).alias("rows"),
            F.coalesce(F.sum("quarantined"), F.lit(0)).alias("quarantined"),
        )
        .orderBy("dataset")
    )


def quarantine_reasons(quarantine: DataFrame) -> DataFrame:
    """Per dataset and reason: how many lines were quarantined."""
    return (
        quarantine.groupBy(
            F.coalesce("dataset", F.lit("(unrecognized)")).alias("dataset"), "reason"
        )
        .agg(F.count(F.lit(1)).alias("lines"))
        .orderBy("dataset", "reason")
    )


def format_table(rows: list[dict], columns: list[str]) -> str:
    """A plain text table; wide characters are counted as two columns."""
    import unicodedata

    def width(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)

    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([width(c)] + [width(row[i]) for row in cells]) for i, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        return "  ".join(v + " " * (w - width(v)) for v, w in zip(values, widths, strict=True))

    out = [line(columns), line(["-" * w for w in widths])]
    out += [line(row) for row in cells]
    return "\n".join(out)
