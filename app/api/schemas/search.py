from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from app.api.schemas.common import Query


class SearchQuery(Query):
    q: Annotated[str, StringConstraints(min_length=1, max_length=1000, pattern=r"\S")]
    k: Annotated[int, Field(ge=1, le=1000)] = 10


class SimilarQuery(Query):
    k: Annotated[int, Field(ge=1, le=1000)] = 10


class ScoredItem(BaseModel):
    id: str
    title: str
    score: float = Field(description="cosine similarity, higher is closer")


class ScoredItems(BaseModel):
    items: list[ScoredItem]
