"""Request and response schemas of the JSON API; they validate input and generate the OpenAPI document."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StringConstraints

ITEM_ID_PATTERN = r"^[A-Za-z0-9_:@.\-]+$"

ItemId = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=ITEM_ID_PATTERN)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=100)]
AttributeName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
AttributeValue = Union[Annotated[str, StringConstraints(max_length=1000)], StrictBool, StrictInt, StrictFloat]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ItemIn(Strict):
    """An item of the catalogue; `id` is the app's own identifier (letters, digits and _ : @ . -)."""

    id: ItemId
    title: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    description: Annotated[str, StringConstraints(max_length=10_000)] = ""
    category: Optional[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = None
    tags: Annotated[list[Tag], Field(max_length=50)] = []
    attributes: Annotated[dict[AttributeName, AttributeValue], Field(max_length=50)] = {}


class ItemBatch(Strict):
    items: Annotated[list[ItemIn], Field(min_length=1, description="at most 10,000 (FEEDLOOP_MAX_ITEMS_PER_REQUEST)")]


class ItemOut(BaseModel):
    id: str
    title: str
    description: str
    category: Optional[str]
    tags: list[str]
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class RowError(BaseModel):
    index: int = Field(description="position of the row in `items`")
    field: str
    message: str


class UpsertResult(BaseModel):
    upserted: int
    errors: list[RowError]


class SearchQuery(Strict):
    model_config = ConfigDict(extra="forbid", strict=False)

    q: Annotated[str, StringConstraints(min_length=1, max_length=1000, strip_whitespace=True)]
    k: Annotated[int, Field(ge=1, le=1000)] = 10


class SimilarQuery(Strict):
    model_config = ConfigDict(extra="forbid", strict=False)

    k: Annotated[int, Field(ge=1, le=1000)] = 10


class ScoredItem(BaseModel):
    id: str
    title: str
    score: float = Field(description="cosine similarity, higher is closer")


class ScoredItems(BaseModel):
    items: list[ScoredItem]


class ErrorBody(BaseModel):
    error: str = Field(description="machine-readable code, e.g. validation_error")
    message: str
    details: Optional[list[dict[str, Any]]] = None
