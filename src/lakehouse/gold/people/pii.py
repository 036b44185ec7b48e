"""Masked display forms and salted hashes of phones, e-mails and names.

No gold table holds a raw phone, e-mail or name: the portrait keeps a masked display form
(`138****5678`, `l***@example.cn`, `张*`) and a salted SHA-256 hash (hex of
SHA-256(salt || ':' || normalised value)), so two tables can still be joined on a person's
phone without holding it. The salt comes from the environment variable named by
`gold.people.salt_env` (LAKEHOUSE_PII_SALT), never from the repository.
"""

from __future__ import annotations

import os

from pyspark.sql import Column
from pyspark.sql import functions as F

from lakehouse.gold.people.settings import PeopleSettings
from lakehouse.runtime import JobError


def salt(cfg: PeopleSettings) -> str:
    """The PII salt from the environment; JobError saying how to set it when missing."""
    value = os.environ.get(cfg.salt_env, "")
    if not value:
        raise JobError(
            f"the PII salt is not set: export {cfg.salt_env} with a secret of at least "
            f"{cfg.salt_min_length} characters (e.g. `export {cfg.salt_env}=$(openssl rand "
            "-hex 32)`) and keep it the same on every run, or the hashes will not match"
        )
    if len(value) < cfg.salt_min_length:
        raise JobError(
            f"{cfg.salt_env} is {len(value)} characters long; use a secret of at least "
            f"{cfg.salt_min_length} (e.g. `openssl rand -hex 32`)"
        )
    return value


def salted_hash(value: Column, salt_value: str) -> Column:
    """Hex SHA-256 of salt:value; null for a null or blank value."""
    clean = F.nullif(F.trim(value), F.lit(""))
    return F.when(clean.isNotNull(), F.sha2(F.concat(F.lit(salt_value + ":"), clean), 256))


def mask_phone(value: Column) -> Column:
    """`13812345678` → `138****5678`; shorter than 8 characters → `****`."""
    clean = F.nullif(F.trim(value), F.lit(""))
    return F.when(
        F.length(clean) >= 8,
        F.concat(F.substring(clean, 1, 3), F.lit("****"), F.substring(clean, -4, 4)),
    ).when(clean.isNotNull(), F.lit("****"))


def mask_email(value: Column) -> Column:
    """`li.lei@example.cn` → `l***@example.cn`; no @ → `***`."""
    clean = F.nullif(F.trim(value), F.lit(""))
    at = F.instr(clean, "@")
    return F.when(
        at > 1,
        F.concat(F.substring(clean, 1, 1), F.lit("***@"), F.substring_index(clean, "@", -1)),
    ).when(clean.isNotNull(), F.lit("***"))


def mask_name(value: Column) -> Column:
    """`张三丰` → `张**`, `李雷` → `李*`; one character → `*`."""
    clean = F.nullif(F.trim(value), F.lit(""))
    n = F.length(clean)
    return F.when(n >= 2, F.concat(F.substring(clean, 1, 1), F.repeat(F.lit("*"), n - 1))).when(
        clean.isNotNull(), F.lit("*")
    )
