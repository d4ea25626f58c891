from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from app.api.schemas.common import Query


class SearchQuery(Query):
    # Not blank. Spelled out rather than `\S`, which regex engines read differently (Python's counts \x1c-\x1f
    # as space, ECMAScript's U+FEFF, Rust's U+0085): this way the document and the validation agree on every text.
    q: Annotated[str, StringConstraints(min_length=1, max_length=1000, pattern=r"[^\t\n\v\f\r ]")]
    k: Annotated[int, Field(ge=1, le=1000)] = 10


class SimilarQuery(Query):
    k: Annotated[int, Field(ge=1, le=1000)] = 10


class ScoredItem(BaseModel):
    id: str
    title: str
    score: float = Field(description="cosine similarity, higher is closer")


class ScoredItems(BaseModel):
    items: list[ScoredItem]
