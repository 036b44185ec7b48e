"""Gold's configuration (conf/gold.yml, conf/tags.yml), validated with the rest of conf/."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from lakehouse.gold.marts.settings import MartSettings
from lakehouse.gold.people.settings import PeopleSettings


class GoldSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    people: PeopleSettings = Field(default_factory=PeopleSettings)
    marts: MartSettings = Field(default_factory=MartSettings)
