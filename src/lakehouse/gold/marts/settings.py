"""conf/gold.yml `gold.marts`: every threshold of the business marts, validated on load.

Each block has defaults, so `marts: {}` is valid; an unknown key, a wrong type or a value out
of range is one error naming the key (pydantic's message plus the constraint below).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CategoryLevel = Literal["category_l1", "category_l2", "category_l3"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProductMartSettings(_Strict):
    """product_daily / product_rankings."""

    ranking_category: CategoryLevel = Field(
        "category_l2", description="the product category rankings are computed within"
    )
    slow_mover_days_of_supply: float = Field(
        90.0,
        gt=0,
        description="a SKU with stock on hand whose days of supply exceed this is a slow mover",
    )
    slow_mover_max_units: int = Field(
        0,
        ge=0,
        description="a SKU with stock on hand that sold at most this many units in the demand "
        "window is a slow mover",
    )


class BundleSettings(_Strict):
    """FP-Growth over baskets (the SKUs of one order; also their categories)."""

    window_days: int = Field(90, ge=1, le=3660, description="baskets of the last N business days")
    min_support: float = Field(0.01, gt=0, le=1)
    min_confidence: float = Field(0.1, gt=0, le=1)
    min_lift: float = Field(1.0, ge=0)
    max_basket_size: int = Field(
        20, ge=2, description="baskets with more distinct items are left out (bulk buys)"
    )
    category: CategoryLevel = Field("category_l2", description="the category level of rules")


class CampaignSettings(_Strict):
    attribution_window_days: int = Field(
        7, ge=1, le=90, description="a purchase up to N days after a touch converts it"
    )


class MartSettings(_Strict):
    """conf/gold.yml `gold.marts`."""

    demand_window_days: int = Field(
        28,
        ge=1,
        le=365,
        description="days of sales behind days of supply, stockouts and slow movers",
    )
    product: ProductMartSettings = Field(default_factory=ProductMartSettings)
    bundles: BundleSettings = Field(default_factory=BundleSettings)
    campaigns: CampaignSettings = Field(default_factory=CampaignSettings)
