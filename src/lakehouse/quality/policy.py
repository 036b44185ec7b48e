"""What a failed expectation does, from conf/quality.yml: quarantine its rows, warn, or fail.

The policy is configuration, not part of the suite: the same rule can quarantine in one
deployment and fail in another (its own conf folder, LAKEHOUSE_CONF; conf/<env>.yml overlays do
not reach this file) without touching the reviewed suite files. The file is
validated on load like the rest of conf/ (unknown keys or values fail with one sentence), and
a policy naming an expectation its suite does not have fails when the gate runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from lakehouse.config import URI, ConfigError, default_conf_dir, load_yaml

if TYPE_CHECKING:
    from lakehouse.quality.suite import Suite

Policy = Literal["quarantine", "warn", "fail"]
POLICIES: tuple[str, ...] = ("quarantine", "warn", "fail")
QUALITY_FILE = "quality.yml"
GOLD = "gold"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TablePolicies(_Strict):
    """Policies of one gated table: a default and overrides per expectation.

    An `expectations` key is an expectation's `meta.name`, or `<type>:<column>[,<column>...]`
    (`<type>` alone for a table-level expectation without a column).
    """

    default: Policy | None = None
    expectations: dict[str, Policy] = Field(default_factory=dict)


class DataDocs(_Strict):
    """GX's HTML data docs: cheap (~0.2 s per gate) but local file systems only."""

    enabled: bool = True
    # Relative to the project root; None means <warehouse>/_dq_docs.
    dir: str | None = None


class QualitySettings(_Strict):
    default: Policy = "fail"
    # Example failing values GX collects per expectation (its partial_unexpected_count). Each
    # expectation costs GX extra Spark jobs for them; 0 skips those queries (~40% fewer jobs).
    unexpected_examples: int = Field(default=20, ge=0, le=1000)
    data_docs: DataDocs = Field(default_factory=DataDocs)
    tables: dict[str, TablePolicies] = Field(default_factory=dict)
    # Where the file was read from; None when built in code.
    root: Path | None = None

    @field_validator("tables")
    @classmethod
    def _table_names_are_suites(cls, value: dict[str, TablePolicies]) -> dict[str, TablePolicies]:
        for name in value:
            if name.count(".") != 1 or not all(name.split(".")):
                raise ValueError(f"table {name!r} must be named '<layer>.<table>' like its suite")
        return value

    @model_validator(mode="after")
    def _gold_never_quarantines(self) -> QualitySettings:
        for name, table in self.tables.items():
            if name.startswith(f"{GOLD}.") and "quarantine" in (
                table.default,
                *table.expectations.values(),
            ):
                raise ValueError(
                    f"tables.{name}: quarantine is for bronze and silver rows; a gold table "
                    "publishes all it computed or nothing, so use warn or fail"
                )
        return self

    def for_table(self, table: str) -> TablePolicies:
        return self.tables.get(table, TablePolicies())

    def docs_dir(self, warehouse: str) -> str:
        """Where data docs go: `data_docs.dir` (relative to the project root) or the warehouse."""
        if self.data_docs.dir:
            if URI.match(self.data_docs.dir):  # s3a://, hdfs://: kept, so the docs step skips it
                return self.data_docs.dir
            path = Path(os.path.expanduser(self.data_docs.dir))
            if not path.is_absolute() and self.root is not None:
                path = self.root / path
            return str(path)
        return f"{warehouse.rstrip('/')}/_dq_docs"


def _describe(exc: ValidationError, source: str) -> str:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key '{where}'")
        elif err["type"] == "value_error":
            prefix = "" if where == "(top level)" else f"'{where}': "
            problems.append(prefix + err["msg"].removeprefix("Value error, "))
        elif err["type"] == "literal_error":
            problems.append(f"'{where}' must be one of {', '.join(POLICIES)}, not {err['input']!r}")
        else:
            problems.append(f"'{where}': {err['msg']}")
    return f"invalid quality configuration ({source}): " + "; ".join(problems)


def quality_settings(raw: dict[str, Any], source: str = "quality settings") -> QualitySettings:
    """Validate a mapping shaped like conf/quality.yml (also what callers pass as `policies`)."""
    try:
        return QualitySettings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def load_quality_settings(conf_dir: str | Path | None = None) -> QualitySettings:
    """Read and validate conf/quality.yml (from LAKEHOUSE_CONF or the checkout's conf/)."""
    conf = Path(conf_dir) if conf_dir else default_conf_dir()
    path = conf / QUALITY_FILE
    try:
        with path.open(encoding="utf-8") as fh:
            raw = load_yaml(fh)
    except FileNotFoundError:
        raise ConfigError(f"quality configuration {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping at the top level")
    if "root" in raw:
        raise ConfigError(f"invalid quality configuration ({path}): unknown key 'root'")
    settings = quality_settings({**raw, "root": conf.resolve().parent}, str(path))
    _check_tables_have_suites(settings, path)
    return settings


def _check_tables_have_suites(settings: QualitySettings, path: Path) -> None:
    """A misspelt table is not ignored: its real table would fall back to the default."""
    from lakehouse.quality.suite import default_expectations_dir

    folder = default_expectations_dir()
    if not folder.is_dir():
        return
    known = {p.stem for p in folder.glob("*.json")}
    unknown = sorted(set(settings.tables) - known)
    if unknown:
        raise ConfigError(
            f"invalid quality configuration ({path}): tables.{', tables.'.join(unknown)} "
            f"name no expectation suite in {folder}; known: {', '.join(sorted(known))}"
        )


def resolve_policies(settings: QualitySettings, suite: Suite) -> dict[str, Policy]:
    """The policy of each rule of `suite`, by rule name.

    Lookup: the table's entry for the rule's name, then for its `<type>:<columns>` key, then
    the table's default, then the global default. Quarantine means nothing for a table-level
    expectation (there is no row to move), nor for a gold table (gold publishes what it
    computed or nothing): configured explicitly it is an error, inherited from the global
    default it becomes `fail`, the safe reading.
    """
    table = settings.for_table(suite.name)
    known = {rule.name for rule in suite.rules} | {rule.key for rule in suite.rules}
    unknown = sorted(set(table.expectations) - known)
    if unknown:
        raise ConfigError(
            f"quality policies for {suite.name} name expectations its suite does not have: "
            f"{', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    policies: dict[str, Policy] = {}
    for rule in suite.rules:
        explicit = table.expectations.get(rule.name) or table.expectations.get(rule.key)
        if explicit == "quarantine" and not rule.row_level:
            raise ConfigError(
                f"quality policy for {suite.name} {rule.name}: quarantine is meaningless for "
                f"the table-level expectation {rule.type}; use warn or fail"
            )
        policy: Policy = explicit or table.default or settings.default
        if policy == "quarantine" and (not rule.row_level or suite.name.startswith(f"{GOLD}.")):
            policy = "fail"
        policies[rule.name] = policy
    return policies
