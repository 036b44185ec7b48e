"""conf/gold.yml `gold.people` (portrait thresholds) and the tag catalog conf/tags.yml.

Everything a portrait, a tag or an audience export is configured with is declared here and
validated when conf/ is loaded: an unknown key, a band out of order or a malformed tag is one
sentence naming the key or the tag. What only Spark can judge (a tag's SQL) is checked at job
start by `lakehouse.gold.people.tags.check_catalog`, again naming the tag.
"""

from __future__ import annotations

import itertools
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator, model_validator

# Platforms of silver.orders; each gets a channel-mix share column `share_<platform>`.
PLATFORMS = ("TMALL", "JD", "MALL", "POS")
# Golden-record attributes an export channel may send (oneid.golden_members columns).
CONTACT_IDENTIFIERS = ("phone", "email", "unionid", "openid", "member_id", "tmall_nick", "jd_pin")
TAG_CODE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RfmSettings(_Strict):
    """RFM over the `window_days` ending on the run date (inclusive)."""

    window_days: int = Field(default=365, ge=1)
    # Number of score bins (quintiles: 5). Scores run 1..bins, higher is better.
    bins: int = Field(default=5, ge=2, le=10)


class LifecycleSettings(_Strict):
    """The member depth model. A purchase counts toward `loyal` when it falls in the
    `loyal_window_days` ending on the run date."""

    loyal_min_purchases: int = Field(default=4, ge=2)
    loyal_window_days: int = Field(default=365, ge=1)
    # Loyal needs the last purchase at most this many days before the run date (inclusive).
    loyal_max_recency_days: int = Field(default=90, ge=0)
    # A buyer whose last purchase is MORE than this many days old is a churn risk.
    churn_after_days: int = Field(default=180, ge=1)
    # Labels of each stage (code: Chinese label).
    labels: dict[Literal["prospect", "potential", "new", "repeat", "loyal"], str] = Field(
        default_factory=lambda: {
            "prospect": "无消费",
            "potential": "潜力",
            "new": "普通",
            "repeat": "复购",
            "loyal": "忠诚",
        }
    )

    @field_validator("labels")
    @classmethod
    def _all_stages(cls, value: dict[str, str]) -> dict[str, str]:
        missing = [s for s in ("prospect", "potential", "new", "repeat", "loyal") if s not in value]
        if missing:
            raise ValueError(f"labels misses stage {', '.join(missing)}")
        return value


class Band(_Strict):
    """A labelled band [previous band's max, max); the last band has no max."""

    label: str = Field(min_length=1)
    max: float | None = None


def _check_bands(bands: list[Band], what: str) -> list[Band]:
    if not bands:
        raise ValueError(f"{what} needs at least one band")
    bounds = [b.max for b in bands[:-1]]
    if any(b is None for b in bounds):
        raise ValueError(f"{what}: only the last band may leave out 'max'")
    if bands[-1].max is not None:
        raise ValueError(f"{what}: the last band must leave out 'max' (it is open-ended)")
    if any(a >= b for a, b in itertools.pairwise(bounds)):  # type: ignore[operator]
        raise ValueError(f"{what}: the bands' 'max' must increase")
    labels = [b.label for b in bands]
    if len(set(labels)) != len(labels):
        raise ValueError(f"{what}: labels must be distinct")
    return bands


class PreferenceSettings(_Strict):
    # Product attribute the preferred category is read from (silver.products column).
    category_level: Literal["category_l1", "category_l2", "category_l3"] = "category_l1"
    # Price band of the member's average paid unit price (yuan), upper bounds exclusive.
    price_bands: list[Band] = Field(
        default_factory=lambda: [
            Band(label="低价", max=150),
            Band(label="中价", max=400),
            Band(label="高价"),
        ]
    )
    # Weekend shopper when at least this share of purchases fell on a Saturday or Sunday.
    weekend_share_min: float = Field(default=0.5, gt=0, le=1)
    weekend_label: str = "周末型"
    weekday_label: str = "工作日型"
    # Coupon sensitivity from the share of purchases that used a coupon: the first band whose
    # `min` the share reaches, top down.
    coupon_high_share: float = Field(default=0.5, gt=0, le=1)
    coupon_medium_share: float = Field(default=0.2, gt=0, le=1)
    coupon_labels: dict[Literal["high", "medium", "low"], str] = Field(
        default_factory=lambda: {"high": "高", "medium": "中", "low": "低"}
    )

    @field_validator("price_bands")
    @classmethod
    def _price_bands(cls, value: list[Band]) -> list[Band]:
        return _check_bands(value, "price_bands")

    @field_validator("coupon_labels")
    @classmethod
    def _all_coupon_bands(cls, value: dict[str, str]) -> dict[str, str]:
        # The portrait looks each band up by name: one left out was a bare KeyError mid-job.
        missing = [band for band in ("high", "medium", "low") if band not in value]
        if missing:
            raise ValueError(f"coupon_labels misses {', '.join(missing)}")
        return value

    @model_validator(mode="after")
    def _coupon_order(self) -> PreferenceSettings:
        if self.coupon_medium_share >= self.coupon_high_share:
            raise ValueError("coupon_medium_share must be below coupon_high_share")
        return self


class ExportChannel(_Strict):
    """What `lakehouse audience export --channel X` writes: one golden-record identifier,
    as is (`none`), or hashed the way the receiving platform matches (`sha256`, `md5` of the
    normalised value, unsalted, as ad platforms expect) or with the warehouse's salt
    (`salted_sha256`, matches gold's *_hash columns)."""

    identifier: Literal["phone", "email", "unionid", "openid", "member_id", "tmall_nick", "jd_pin"]
    hash: Literal["none", "sha256", "md5", "salted_sha256"] = "none"


class PeopleSettings(_Strict):
    # Environment variable holding the salt of the PII hashes (never in the repo).
    salt_env: str = Field(default="LAKEHOUSE_PII_SALT", pattern=r"^[A-Z_][A-Z0-9_]*$")
    salt_min_length: int = Field(default=16, ge=1)
    # Statuses that make a paid order no purchase (silver's unified status).
    non_purchase_statuses: list[str] = Field(default_factory=lambda: ["CANCELLED"])
    rfm: RfmSettings = Field(default_factory=RfmSettings)
    lifecycle: LifecycleSettings = Field(default_factory=LifecycleSettings)
    preferences: PreferenceSettings = Field(default_factory=PreferenceSettings)
    # Age band edges (years, ascending): [18, 25] gives <18, 18-24, 25+.
    age_band_edges: list[int] = Field(default_factory=lambda: [18, 25, 30, 35, 40, 50])
    # Audience export: channels and where the files go (null: <warehouse>/_exports).
    export_channels: dict[str, ExportChannel] = Field(
        default_factory=lambda: {
            "SMS": ExportChannel(identifier="phone"),
            "EMAIL": ExportChannel(identifier="email"),
            "WECHAT": ExportChannel(identifier="unionid"),
        }
    )
    export_dir: str | None = None

    @field_validator("age_band_edges")
    @classmethod
    def _edges(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("age_band_edges needs at least one edge")
        if any(a >= b for a, b in itertools.pairwise(value)) or value[0] <= 0:
            raise ValueError("age_band_edges must be positive and strictly increasing")
        return value

    @field_validator("export_channels")
    @classmethod
    def _channel_names(cls, value: dict[str, ExportChannel]) -> dict[str, ExportChannel]:
        wrong = [c for c in value if not re.fullmatch(r"[A-Z][A-Z0-9_]*", c)]
        if wrong:
            raise ValueError(f"channel names are upper case words: {', '.join(wrong)}")
        return value

    @field_validator("non_purchase_statuses")
    @classmethod
    def _statuses(cls, value: list[str]) -> list[str]:
        known = ("CREATED", "PAID", "SHIPPED", "COMPLETED", "CANCELLED", "REFUNDED")
        wrong = [s for s in value if s not in known]
        if wrong:
            raise ValueError(f"unknown status {', '.join(wrong)}; known: {', '.join(known)}")
        return value


class TagDefinition(_Strict):
    """One tag of the catalog.

    `expr` is a Spark SQL expression. `over: portrait` evaluates it on each portrait row
    (any gold.member_portrait column); `over: orders` evaluates it as an aggregate over the
    member's order history (lakehouse.gold.people.portrait.HISTORY_COLUMNS), grouped by
    one_id. A null value gives the member no row for the tag.
    """

    code: str
    name_cn: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    category: str = Field(min_length=1)
    over: Literal["portrait", "orders"] = "portrait"
    expr: str = Field(min_length=1)
    type: Literal["string", "boolean", "int", "double"] = "string"
    refresh: Literal["daily", "weekly", "monthly"] = "daily"
    description: str | None = None

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not TAG_CODE.fullmatch(value):
            raise ValueError(
                f"tag code {value!r} must be lower case letters, digits and _, starting with "
                "a letter (it becomes a column name in audience expressions)"
            )
        return value

    @field_validator("expr")
    @classmethod
    def _balanced(cls, value: str) -> str:
        depth, quote = 0, None
        for ch in value:
            if quote:
                if ch == quote:
                    quote = None
            elif ch in "'\"`":
                quote = ch
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth < 0:
                    break
        if quote or depth != 0:
            raise ValueError(f"expr has unbalanced quotes or parentheses: {value!r}")
        return value


class TagCatalog(RootModel[list[TagDefinition]]):
    """conf/tags.yml `tags:`, a list of TagDefinition with distinct codes."""

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _name_bad_tags(cls, value):
        # Name the tag (not just its list index) in the message of a malformed entry.
        if not isinstance(value, list):
            return value
        for index, entry in enumerate(value):
            if not isinstance(entry, dict):
                raise ValueError(f"tag #{index + 1} must be a mapping with code, name_cn, ...")
            code = entry.get("code", f"#{index + 1} (no code)")
            try:
                TagDefinition.model_validate(entry)
            except Exception as exc:  # pydantic.ValidationError
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or 'tag'}: "
                    + ("unknown key" if e["type"] == "extra_forbidden" else e["msg"])
                    for e in exc.errors()  # type: ignore[attr-defined]
                )
                raise ValueError(f"tag {code}: {problems}") from None
        return value

    @model_validator(mode="after")
    def _distinct_codes(self) -> TagCatalog:
        seen: set[str] = set()
        for tag in self.root:
            if tag.code in seen:
                raise ValueError(f"tag {tag.code}: the code is used twice")
            seen.add(tag.code)
        return self

    def __iter__(self):  # type: ignore[override]
        return iter(self.root)

    def __len__(self) -> int:
        return len(self.root)

    def by_code(self) -> dict[str, TagDefinition]:
        return {t.code: t for t in self.root}
