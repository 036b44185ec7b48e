"""Load conf/ (base + environment overlay + sources) into typed, validated settings.

Everything a job may be configured with is declared here, so a typo in a key, a wrong type or a
missing path fails at load time with one sentence naming the file and the key, not half-way
through a Spark job.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lakehouse.gold.people.settings import TagCatalog
from lakehouse.gold.settings import GoldSettings
from lakehouse.maintenance import MaintenanceSettings

ENV_VAR = "LAKEHOUSE_ENV"
CONF_DIR_VAR = "LAKEHOUSE_CONF"
LANDING_VAR = "LAKEHOUSE_LANDING"
WAREHOUSE_VAR = "LAKEHOUSE_WAREHOUSE"
DEFAULT_ENV = "local"
# Files every environment shares, merged in this order before the environment's overlay.
# (conf/quality.yml is read by lakehouse.quality itself.)
SHARED_FILES = ("base", "sources", "silver", "oneid", "gold", "tags", "maintenance")
NOT_ENVIRONMENTS = (*SHARED_FILES, "quality")


class ConfigError(ValueError):
    """A configuration that cannot be used; the message says which file and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Paths(_Strict):
    landing: str
    warehouse: str


class SparkSettings(_Strict):
    app_name: str = "lakehouse"
    master: str | None = "local[*]"
    delta_jars: Literal["cache", "provided"] = "cache"
    jar_cache: str = "~/.cache/lakehouse/jars"
    log_level: Literal["ALL", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF"] = "WARN"
    conf: dict[str, str] = Field(default_factory=dict)

    @field_validator("conf", mode="before")
    @classmethod
    def _conf_values_as_text(cls, value: Any) -> Any:
        # Spark settings are strings; YAML turns 4 into an int and true into a bool, and `~`
        # into None, which str() would pass to Spark as the text "None".
        if isinstance(value, dict):
            empty = sorted(str(k) for k, v in value.items() if v is None)
            if empty:
                raise ValueError(
                    f"{', '.join(empty)}: null; give a value or leave the key out (a setting "
                    "of spark.conf in base.yml cannot be unset by an overlay)"
                )
            return {
                str(k): (str(v).lower() if isinstance(v, bool) else str(v))
                for k, v in value.items()
            }
        return value


class BronzeSettings(_Strict):
    fail_on_missing_files: bool = True
    max_raw_chars: int = Field(default=1_000_000, gt=0)


class Dataset(_Strict):
    """One file family of a source folder and the bronze table it lands in."""

    file_pattern: str
    format: Literal["csv", "jsonl"]
    encoding: str
    columns: dict[str, str] | None = None
    schema_ddl: str | None = Field(default=None, alias="schema")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("columns", mode="before")
    @classmethod
    def _list_means_same_name(cls, value: Any) -> Any:
        if isinstance(value, list):
            return {str(v): str(v) for v in value}
        return value

    @field_validator("file_pattern")
    @classmethod
    def _pattern_compiles(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"file_pattern is not a valid regular expression: {exc}") from exc
        if "date" not in compiled.groupindex:
            raise ValueError("file_pattern needs a (?P<date>...) group for the file date")
        return value

    @field_validator("encoding")
    @classmethod
    def _encoding_known(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _shape_matches_format(self) -> Dataset:
        if self.format == "csv":
            if not self.columns:
                raise ValueError("a csv dataset needs 'columns' (header name: bronze column)")
            if self.schema_ddl:
                raise ValueError("a csv dataset takes 'columns', not 'schema'")
            targets = list(self.columns.values())
            if len(set(targets)) != len(targets):
                raise ValueError("two headers map to the same bronze column")
        if self.format == "jsonl" and not self.schema_ddl:
            raise ValueError("a jsonl dataset needs 'schema' (a Spark DDL string)")
        return self


class Source(_Strict):
    datasets: dict[str, Dataset]


ORDER_STATUSES = ("CREATED", "PAID", "SHIPPED", "COMPLETED", "CANCELLED", "REFUNDED")
PLATFORMS = ("TMALL", "JD", "MALL", "POS")


class SilverLimits(_Strict):
    max_order_amount: float = Field(gt=0)
    max_unit_price: float = Field(gt=0)
    max_line_quantity: int = Field(gt=0)
    max_order_units: int = Field(gt=0)
    max_stock_quantity: int = Field(gt=0)
    max_warehouse_stock_quantity: int = Field(gt=0)
    future_tolerance_hours: int = Field(ge=0)
    earliest_business_date: dt.date


class SilverSettings(_Strict):
    status_map: dict[Literal["TMALL", "JD", "MALL"], dict[str, str]]
    online_store_prefix: dict[Literal["TMALL", "JD", "MALL"], str]
    online_default_shop: dict[Literal["JD", "MALL"], str]
    limits: SilverLimits
    # None (the default): unknown SKUs never stop a run, as the landing contract demands; they
    # are kept, flagged and counted. A share makes a higher rate fail the run (opt in).
    unmapped_rate_threshold: float | None = Field(default=None, ge=0, le=1)
    unmapped_rate_min_lines: int = Field(ge=0)
    unmapped_rate_threshold_small: float = Field(ge=0, le=1)
    max_crm_departure_share: float = Field(ge=0, le=1)
    crm_departure_min_members: int = Field(ge=0)

    def crm_departures_error(self, gone: int, listed: int, last: dt.date) -> str | None:
        """Why `gone` of the `listed` members the CRM's last snapshot (of `last`) listed cannot
        all have left by the next (a cut-off export), or None when they can."""
        small = listed < self.crm_departure_min_members
        if small or gone <= listed * self.max_crm_departure_share:
            return None
        return (
            f"the CRM snapshot no longer lists {gone} of the {listed} members the snapshot of "
            f"{last} listed ({gone / listed:.1%}), more than silver.max_crm_departure_share "
            f"({self.max_crm_departure_share:.1%}): a cut-off export? silver.members is "
            "unchanged; deliver the whole snapshot and rerun, or raise the share if they did "
            "leave"
        )

    def unmapped_threshold(self, lines: int) -> tuple[float | None, str]:
        """The unmapped-rate threshold a delivery of `lines` order lines is judged by (None: not
        judged), and its setting's name (for the error message)."""
        if self.unmapped_rate_threshold is None:
            return None, "silver.unmapped_rate_threshold"
        if lines < self.unmapped_rate_min_lines:
            return (
                max(self.unmapped_rate_threshold, self.unmapped_rate_threshold_small),
                f"silver.unmapped_rate_threshold_small (fewer than {self.unmapped_rate_min_lines}"
                " lines)",
            )
        return self.unmapped_rate_threshold, "silver.unmapped_rate_threshold"

    @model_validator(mode="after")
    def _every_platform(self) -> SilverSettings:
        # A platform left out loaded, then failed its orders mid-job with a bare KeyError.
        for name, mapping, platforms in (
            ("status_map", self.status_map, ("TMALL", "JD", "MALL")),
            ("online_store_prefix", self.online_store_prefix, ("TMALL", "JD", "MALL")),
            ("online_default_shop", self.online_default_shop, ("JD", "MALL")),
        ):
            missing = [p for p in platforms if p not in mapping]
            if missing:
                raise ValueError(f"silver.{name} lacks {', '.join(missing)}: give every platform")
        return self

    @field_validator("status_map")
    @classmethod
    def _statuses_known(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        allowed = (*ORDER_STATUSES, "CLOSED")
        for platform, mapping in value.items():
            wrong = sorted({v for v in mapping.values() if v not in allowed})
            if wrong:
                raise ValueError(
                    f"{platform} maps to unknown status {', '.join(wrong)}; "
                    f"allowed: {', '.join(allowed)} (CLOSED = refunded if paid, else cancelled)"
                )
        return value


IDENTIFIER_TYPES = (
    "member_id",
    "card_no",
    "tmall_nick",
    "jd_pin",
    "unionid",
    "phone",
    "email",
    "openid",
)
IDENTITY_SOURCES = (
    "crm_members",
    "tmall_orders",
    "jd_orders",
    "mall_orders",
    "pos_sales",
    "campaign_touches",
)
GOLDEN_RULES = ("priority_then_newest", "newest", "earliest", "any_true")


class IdentifierType(_Strict):
    priority: int = Field(ge=1)
    max_links: int = Field(ge=1)
    max_links_by_type: dict[str, int] = Field(default_factory=dict)

    @field_validator("max_links_by_type")
    @classmethod
    def _known_neighbours(cls, value: dict[str, int]) -> dict[str, int]:
        for name, limit in value.items():
            if name not in IDENTIFIER_TYPES:
                raise ValueError(f"unknown identifier type {name!r}")
            if limit < 1:
                raise ValueError(f"max_links_by_type.{name} must be at least 1")
        return value

    def limit_for(self, neighbour_type: str) -> int:
        return self.max_links_by_type.get(neighbour_type, self.max_links)


class GoldenAttribute(_Strict):
    rule: Literal["priority_then_newest", "newest", "earliest", "any_true"]
    sources: list[str] = Field(min_length=1)

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, value: list[str]) -> list[str]:
        wrong = [s for s in value if s not in IDENTITY_SOURCES]
        if wrong:
            raise ValueError(
                f"unknown source {', '.join(wrong)}; known: {', '.join(IDENTITY_SOURCES)}"
            )
        return value


class OneIdSettings(_Strict):
    identifier_types: dict[str, IdentifierType]
    placeholders: dict[str, list[str]] = Field(default_factory=dict)
    placeholder_patterns: dict[str, list[str]] = Field(default_factory=dict)
    max_component_size: int = Field(ge=2)
    max_rounds: int = Field(ge=1, le=1000)
    golden_record: dict[str, GoldenAttribute] = Field(default_factory=dict)

    @field_validator("golden_record")
    @classmethod
    def _golden_record_fits(cls, value: dict[str, GoldenAttribute]) -> dict[str, GoldenAttribute]:
        # At load, not when oneid.golden starts hours into a run: an attribute no source has,
        # or one gold.member_portrait reads left out.
        from lakehouse.gold.people.portrait import GOLDEN_ATTRIBUTES_READ
        from lakehouse.oneid.golden import check_rules

        check_rules(value)
        missing = [a for a in GOLDEN_ATTRIBUTES_READ if a not in value]
        if missing:
            raise ValueError(
                f"{', '.join(missing)}: gold.member_portrait reads "
                f"{'it' if len(missing) == 1 else 'them'} from the golden record; configure "
                f"{'it' if len(missing) == 1 else 'them'}"
            )
        return value

    @field_validator("identifier_types")
    @classmethod
    def _types_known(cls, value: dict[str, IdentifierType]) -> dict[str, IdentifierType]:
        wrong = sorted(set(value) - set(IDENTIFIER_TYPES))
        if wrong:
            raise ValueError(
                f"unknown identifier type {', '.join(wrong)}; known: {', '.join(IDENTIFIER_TYPES)}"
            )
        priorities = [t.priority for t in value.values()]
        if len(set(priorities)) != len(priorities):
            raise ValueError("identifier type priorities must be distinct")
        return value

    @field_validator("placeholders", "placeholder_patterns")
    @classmethod
    def _placeholder_types(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        wrong = sorted(set(value) - {*IDENTIFIER_TYPES, "any"})
        if wrong:
            raise ValueError(f"unknown identifier type {', '.join(wrong)} (or 'any')")
        return value

    @field_validator("placeholder_patterns")
    @classmethod
    def _patterns_compile(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, patterns in value.items():
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(
                        f"{name}: {pattern!r} is not a regular expression: {exc}"
                    ) from None
        return value

    def by_priority(self) -> list[str]:
        return sorted(self.identifier_types, key=lambda t: self.identifier_types[t].priority)


class Settings(_Strict):
    env: str
    root: Path
    paths: Paths
    spark: SparkSettings = Field(default_factory=SparkSettings)
    bronze: BronzeSettings = Field(default_factory=BronzeSettings)
    sources: dict[str, Source]
    silver: SilverSettings
    oneid: OneIdSettings
    gold: GoldSettings = Field(default_factory=GoldSettings)
    tags: TagCatalog = Field(default_factory=lambda: TagCatalog([]))
    maintenance: MaintenanceSettings = Field(default_factory=MaintenanceSettings)

    @property
    def landing(self) -> str:
        return self.paths.landing

    @property
    def warehouse(self) -> str:
        return self.paths.warehouse

    def dataset(self, name: str) -> tuple[str, Dataset]:
        """The source folder and spec of a dataset, by dataset name."""
        for source_name, source in self.sources.items():
            if name in source.datasets:
                return source_name, source.datasets[name]
        raise ConfigError(f"no dataset named {name!r} in conf/sources.yml")

    @model_validator(mode="after")
    def _dataset_names_unique(self) -> Settings:
        seen: dict[str, str] = {}
        for source_name, source in self.sources.items():
            for name in source.datasets:
                if name in seen:
                    raise ValueError(
                        f"dataset {name!r} is declared under both {seen[name]!r} and "
                        f"{source_name!r}"
                    )
                seen[name] = source_name
        return self


def default_conf_dir() -> Path:
    """conf/ from LAKEHOUSE_CONF, else the checkout this package lives in, else ./conf."""
    if os.environ.get(CONF_DIR_VAR):
        return Path(os.environ[CONF_DIR_VAR])
    checkout = Path(__file__).resolve().parents[2] / "conf"
    if checkout.is_dir():
        return checkout
    return Path.cwd() / "conf"


def _refuse_repeated_keys(root: yaml.Node) -> None:
    """Raise when a mapping of the composed document names a key twice (merge keys aside).

    Why: PyYAML keeps the last of two equal keys without a word, so a block appended to a long
    file (a second `paths:` in cluster.yml, a table named twice in maintenance.yml) silently
    dropped the first one's settings. Checked on the node tree, before anything is built, so
    merge keys (`<<`) and anchors override as YAML means them.
    """
    merge = "tag:yaml.org,2002:merge"
    stack, visited = [root], set()
    while stack:
        node = stack.pop()
        if id(node) in visited:  # an alias points at a node already checked
            continue
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], yaml.Mark] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != merge:
                    seen = first.setdefault((key.tag, key.value), key.start_mark)
                    if seen is not key.start_mark:
                        raise yaml.constructor.ConstructorError(
                            "while constructing a mapping",
                            node.start_mark,
                            f"found the key {key.value!r} twice (first on line {seen.line + 1})",
                            key.start_mark,
                        )
                stack += (key, value)
        elif isinstance(node, yaml.SequenceNode):
            stack += node.value


def load_yaml(stream: Any) -> Any:
    """yaml.safe_load that refuses a key given twice in one mapping (`_refuse_repeated_keys`);
    every YAML the suite reads (conf/, the DAG's settings) goes through it."""
    loader = yaml.SafeLoader(stream)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _refuse_repeated_keys(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as fh:
            data = load_yaml(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping at the top level")
    return data


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Overlay wins key by key; nested mappings merge instead of being replaced."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# A URI as Hadoop takes one: a scheme, a colon, a slash (s3a://b/x, hdfs:///x, hdfs:/x, file:/x).
URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]+:/")


def _resolve(path: str, root: Path) -> str:
    """Relative local paths are relative to the project root; URIs (s3a://, hdfs://) stay."""
    if URI.match(path):
        return path
    expanded = Path(os.path.expanduser(path))
    return str(expanded if expanded.is_absolute() else (root / expanded).resolve())


def _describe(exc: ValidationError, files: list[Path]) -> str:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key '{where}'")
        elif err["type"] == "missing":
            problems.append(f"missing key '{where}'")
        else:
            problems.append(f"'{where}': {err['msg']}")
    names = ", ".join(str(f) for f in files)
    return f"invalid configuration ({names}): " + "; ".join(problems)


def load_settings(
    env: str | None = None, conf_dir: str | Path | None = None, *, paths_needed: bool = True
) -> Settings:
    """Merge base.yml, sources.yml and <env>.yml, apply environment overrides, validate.

    `paths_needed=False` is for the commands that touch no data (`jobs`, `fetch-jars`): an
    environment that leaves a path to its variable (cluster.yml) loads without it, the path a
    folder under the system's temporary directory that nothing writes to.
    """
    if env is None:
        env = os.environ.get(ENV_VAR, DEFAULT_ENV)
        if not env.strip():
            raise ConfigError(f"{ENV_VAR} is set but empty: unset it or name an environment")
    if not env.strip():
        raise ConfigError("the environment name is empty: name one (local, cluster, ...)")
    conf = Path(conf_dir) if conf_dir else default_conf_dir()
    if not conf.is_dir():
        raise ConfigError(f"configuration folder {conf} does not exist (set {CONF_DIR_VAR})")
    overlay_path = conf / f"{env}.yml"
    if not overlay_path.is_file() or env in NOT_ENVIRONMENTS:
        known = sorted(p.stem for p in conf.glob("*.yml") if p.stem not in NOT_ENVIRONMENTS)
        raise ConfigError(
            f"unknown environment {env!r}: there is no {overlay_path}; known: {', '.join(known)}"
        )
    files = [*(conf / f"{name}.yml" for name in SHARED_FILES), overlay_path]
    raw: dict[str, Any] = {}
    for path in files:
        raw = deep_merge(raw, _read_yaml(path))

    root = conf.resolve().parent
    paths = dict(raw.get("paths") or {})
    for key, var in (("landing", LANDING_VAR), ("warehouse", WAREHOUSE_VAR)):
        if var in os.environ:
            value = os.environ[var]
            if not value.strip():
                # An empty variable is a mistake, not "use the default": on a cluster the
                # default is a folder on the driver's own disk.
                raise ConfigError(f"{var} is set but empty: unset it or give the {key} path")
            if value != value.strip():
                # "/data/wh " is another, empty warehouse; "  /data/wh" a relative folder.
                raise ConfigError(
                    f"{var}={value!r} starts or ends with whitespace: give the path alone"
                )
            paths[key] = value
        elif key in paths and paths[key] is None:
            if not paths_needed:
                paths[key] = os.path.join(tempfile.gettempdir(), f"lakehouse-{env}-no-{key}")
                continue
            raise ConfigError(
                f"the {env} environment has no {key} path ({overlay_path} sets paths.{key}: "
                f"null): set {var} (hdfs://, s3a:// or a path every node shares)"
            )
    for key in ("landing", "warehouse"):
        value = paths.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(
                f"invalid configuration ({', '.join(map(str, files))}): 'paths.{key}' must be "
                f"a path string, not {type(value).__name__}"
            )
        if isinstance(value, str):
            paths[key] = _resolve(value, root)
    raw["paths"] = paths
    raw["env"] = env
    raw["root"] = root
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, files)) from None
    return settings
