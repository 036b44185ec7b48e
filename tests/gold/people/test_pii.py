"""Masked display forms, salted hashes, and the salt from the environment only."""

from __future__ import annotations

import hashlib

import pytest
from pyspark.sql import functions as F

from lakehouse.gold.people import pii
from lakehouse.gold.people.settings import PeopleSettings
from lakehouse.runtime import JobError

SALT = "s3cret-salt-for-tests"


def test_masks_and_hashes(spark):
    df = spark.createDataFrame(
        [
            ("13812345678", "li.lei@example.cn", "张三丰"),
            ("12345", "nobody", "李"),
            (" ", None, None),
        ],
        "phone string, email string, name string",
    )
    rows = df.select(
        pii.mask_phone(F.col("phone")).alias("p"),
        pii.mask_email(F.col("email")).alias("e"),
        pii.mask_name(F.col("name")).alias("n"),
        pii.salted_hash(F.col("phone"), SALT).alias("h"),
    ).collect()
    assert [(r.p, r.e, r.n) for r in rows] == [
        ("138****5678", "l***@example.cn", "张**"),
        ("****", "***", "*"),
        (None, None, None),
    ]
    assert rows[0].h == hashlib.sha256(f"{SALT}:13812345678".encode()).hexdigest()
    assert rows[2].h is None


def test_salt_comes_from_the_environment(monkeypatch):
    cfg = PeopleSettings()
    monkeypatch.delenv("LAKEHOUSE_PII_SALT", raising=False)
    with pytest.raises(JobError, match="export LAKEHOUSE_PII_SALT"):
        pii.salt(cfg)
    monkeypatch.setenv("LAKEHOUSE_PII_SALT", "short")
    with pytest.raises(JobError, match="at least 16"):
        pii.salt(cfg)
    monkeypatch.setenv("LAKEHOUSE_PII_SALT", SALT)
    assert pii.salt(cfg) == SALT
