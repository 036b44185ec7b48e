"""Exact duplicate lines: the same bytes twice in one delivered file.

Split off before conforming: a duplicated POS line would otherwise double its ticket. A line
equal to one in an *earlier* file is not dirt (a corrected file repeats its unchanged lines):
`latest_state` resolves those.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def mark_exact_duplicates(bronze: DataFrame) -> DataFrame:
    """Add `_duplicate_of`: the first line number of an earlier identical line in the same
    file, null for the first occurrence."""
    same = Window.partitionBy("_source_file", "_record_hash").orderBy("_line_no")
    return bronze.withColumn(
        "_duplicate_of",
        F.when(F.row_number().over(same) > 1, F.first("_line_no").over(same)),
    )
