"""Expectation suites as reviewed files: `expectations/<layer>.<table>.json`, GX 1.x's own format.

A suite file is exactly what `gx.ExpectationSuite(**json)` takes, so GX reads it unchanged. This
module adds what the gate needs on top: every expectation is checked on load (GX itself only logs
and drops an invalid one), given a name (`meta.name`, else `<type>:<columns>`), and classified as
row-level (a Spark predicate can split its rows) or table-level (GX's verdict only).
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import great_expectations as gx
from great_expectations.expectations.expectation import Expectation
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

from lakehouse.config import default_conf_dir
from lakehouse.quality import reference
from lakehouse.quality.predicates import ROW_LEVEL_TYPES

EXPECTATIONS_VAR = "LAKEHOUSE_EXPECTATIONS"
SUITE_KEYS = frozenset({"name", "id", "expectations", "suite_parameters", "meta", "notes"})
EXPECTATION_KEYS = frozenset(
    {"type", "kwargs", "meta", "notes", "description", "id", "severity", "rendered_content"}
)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:,-]*$")


class SuiteError(ValueError):
    """A suite file that cannot be used; the message names the file and the expectation."""


def default_expectations_dir() -> Path:
    """expectations/ beside conf/ (LAKEHOUSE_EXPECTATIONS overrides): suites travel with conf."""
    if os.environ.get(EXPECTATIONS_VAR):
        return Path(os.environ[EXPECTATIONS_VAR])
    return default_conf_dir().resolve().parent / "expectations"


def rule_columns(kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    if isinstance(kwargs.get("column"), str):
        return (kwargs["column"],)
    if isinstance(kwargs.get("column_list"), list | tuple):
        return tuple(str(c) for c in kwargs["column_list"])
    pair = tuple(kwargs[k] for k in ("column_A", "column_B") if isinstance(kwargs.get(k), str))
    return pair


@dataclass(frozen=True)
class Rule:
    """One expectation of a suite, with the identity policies and results use."""

    name: str  # meta.name, else the key
    key: str  # <type>:<col>[,<col>...], or <type> for a table-level expectation
    type: str
    columns: tuple[str, ...]
    row_level: bool
    config: ExpectationConfiguration  # as written: $PARAMETER entries not yet substituted
    description: str | None = None

    def configured(self, parameters: Mapping[str, Any]) -> Expectation:
        """The typed GX expectation with run-time parameters substituted, as GX validates it.

        GX's own substitution (`process_suite_parameters`) and model parsing are used, so an ISO
        date string becomes a `date` here exactly as in GX's verdict.
        """
        config = copy.deepcopy(self.config)
        config.process_suite_parameters(suite_parameters=dict(parameters))
        return config.to_domain_obj()


@dataclass(frozen=True)
class Suite:
    name: str
    rules: tuple[Rule, ...]
    document: Mapping[str, Any]  # the file's JSON
    path: Path | None = None

    @property
    def suite_parameters(self) -> dict[str, Any]:
        """Parameter defaults stored in the file; run-time parameters override them."""
        return dict(self.document.get("suite_parameters") or {})

    @property
    def references(self) -> set[str]:
        return {
            str(rule.config.kwargs["reference"])
            for rule in self.rules
            if rule.type == reference.REFERENCE_TYPE
        }

    def rule(self, name: str) -> Rule:
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise KeyError(f"suite {self.name} has no expectation named {name!r}")

    def to_gx(self, rules: Sequence[str] | None = None) -> gx.ExpectationSuite:
        """A fresh GX suite (GX mutates expectations while substituting parameters), holding
        only the expectations named in `rules` when given."""
        document = json.loads(json.dumps(self.document))
        if rules is not None:
            keep = set(rules)
            document["expectations"] = [
                entry
                for rule, entry in zip(self.rules, document["expectations"], strict=True)
                if rule.name in keep
            ]
        return gx.ExpectationSuite(**document)


def _fail(where: str, message: str) -> SuiteError:
    return SuiteError(f"invalid expectation suite {where}: {message}")


def _rule(index: int, entry: Any, where: str) -> Rule:
    if not isinstance(entry, dict):
        raise _fail(where, f"expectations[{index}] must be an object")
    label = f"expectations[{index}] ({entry.get('type', '?')})"
    extra = sorted(set(entry) - EXPECTATION_KEYS)
    if extra:
        raise _fail(where, f"{label} has unknown keys: {', '.join(extra)}")
    if not isinstance(entry.get("type"), str):
        raise _fail(where, f"{label} needs a 'type'")
    if not isinstance(entry.get("kwargs"), dict):
        raise _fail(where, f"{label} needs 'kwargs', an object")
    meta = entry.get("meta") or {}
    if not isinstance(meta, dict):
        raise _fail(where, f"{label} 'meta' must be an object")
    try:
        config = ExpectationConfiguration(**entry)
        config.to_domain_obj()  # GX's own check of the type and its kwargs
    except Exception as exc:  # GX raises several unrelated types here
        detail = " ".join(str(exc).split())[:500]
        raise _fail(where, f"{label} is not a valid GX expectation: {detail}") from None
    kwargs = config.kwargs
    columns = rule_columns(kwargs)
    key = f"{config.type}:{','.join(columns)}" if columns else config.type
    name = meta.get("name", key)
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise _fail(where, f"{label} meta.name must be a plain identifier, not {name!r}")
    row_level = config.type in ROW_LEVEL_TYPES
    condition = kwargs.get("row_condition")
    if (
        row_level
        and condition is not None
        and not (isinstance(condition, str) and kwargs.get("condition_parser") == "spark")
    ):
        raise _fail(
            where,
            f"{label}: a row-level rule's row_condition must be a Spark SQL string with "
            "condition_parser 'spark' (the gate evaluates it with F.expr, as GX does)",
        )
    return Rule(
        name=name,
        key=key,
        type=config.type,
        columns=columns,
        row_level=row_level,
        config=config,
        description=entry.get("description"),
    )


def parse_suite(document: Any, where: str, expected_name: str | None = None) -> Suite:
    """Check a suite document and build its rules; `where` names it in errors."""
    if not isinstance(document, dict):
        raise _fail(where, "the top level must be an object")
    extra = sorted(set(document) - SUITE_KEYS)
    if extra:
        raise _fail(where, f"unknown keys {', '.join(extra)}; a GX suite has {sorted(SUITE_KEYS)}")
    name = document.get("name")
    if not isinstance(name, str) or not name:
        raise _fail(where, "'name' must be a non-empty string")
    if expected_name is not None and name != expected_name:
        raise _fail(where, f"'name' is {name!r} but the file is named for {expected_name!r}")
    entries = document.get("expectations")
    if not isinstance(entries, list) or not entries:
        raise _fail(where, "'expectations' must be a non-empty list")
    params = document.get("suite_parameters")
    if params is not None and not isinstance(params, dict):
        raise _fail(where, "'suite_parameters' must be an object")
    rules = tuple(_rule(i, entry, where) for i, entry in enumerate(entries))
    seen: dict[str, int] = {}
    for i, rule in enumerate(rules):
        if rule.name in seen:
            raise _fail(
                where,
                f"expectations[{seen[rule.name]}] and [{i}] are both named {rule.name!r}: "
                "give each a distinct meta.name",
            )
        seen[rule.name] = i
    try:
        built = gx.ExpectationSuite(**json.loads(json.dumps(document)))
    except Exception as exc:
        raise _fail(where, f"GX cannot build it: {exc}") from None
    if len(built.expectations) != len(rules):
        raise _fail(where, "GX dropped some expectations (see its log)")
    return Suite(name=name, rules=rules, document=document)


def load_suite(name: str, expectations_dir: Path | str | None = None) -> Suite:
    """Read `expectations/<name>.json` and check every expectation in it."""
    folder = Path(expectations_dir) if expectations_dir else default_expectations_dir()
    path = folder / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        raise SuiteError(
            f"no expectation suite {name!r}: {path} does not exist"
            + (f"; known: {', '.join(known)}" if known else "")
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{path} is not valid JSON: {exc}") from None
    suite = parse_suite(document, str(path), expected_name=name)
    return Suite(name=suite.name, rules=suite.rules, document=suite.document, path=path)
