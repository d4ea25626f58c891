from __future__ import annotations

from typing import Annotated, Any, Optional

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from app.api.schemas.common import ItemId, Name, RowError, Scalar, Strict


class ItemIn(Strict):
    """An item of the catalogue; `id` is the app's own identifier (letters, digits and _ : @ . -)."""

    id: ItemId
    title: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    description: Annotated[str, StringConstraints(max_length=10_000)] = ""
    category: Optional[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = None
    tags: Annotated[list[Name], Field(max_length=50)] = []
    attributes: Annotated[dict[Name, Scalar], Field(max_length=50)] = {}


class ItemBatch(Strict):
    items: Annotated[list[ItemIn], Field(min_length=1, description="at most 10,000 (FEEDLOOP_MAX_ITEMS_PER_REQUEST)")]


class ItemOut(BaseModel):
    id: str
    title: str
    description: str
    category: Optional[str]
    tags: list[str]
    attributes: dict[str, Any]
    created_at: AwareDatetime
    updated_at: AwareDatetime


class UpsertResult(BaseModel):
    upserted: int
    errors: list[RowError]
