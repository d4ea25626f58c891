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


ContextValue = Union[Annotated[str, StringConstraints(max_length=500)], StrictBool, StrictInt, StrictFloat]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class RecommendationRequest(Strict):
    user_id: UserId
    context: Annotated[dict[AttributeName, ContextValue], Field(max_length=50)] = {}
    query: Optional[Annotated[str, StringConstraints(min_length=1, max_length=1000)]] = None
    k: Annotated[int, Field(ge=1, le=100, description="at most FEEDLOOP_MAX_K (100)")] = 10
    exclude: Annotated[list[ItemId], Field(max_length=1000)] = []
    defer: StrictBool = Field(False, description="learn only after POST /recommendations/{event_id}/activate")
    baseline_item_id: Optional[ItemId] = Field(None, description="the app's own choice, served first in apprentice mode")


class RecommendedItem(BaseModel):
    id: str
    title: str
    score: float = Field(description="the model's expected reward for the item")
    probability: float = Field(description="probability with which the policy put this item in this slot")


class RecommendationResponse(BaseModel):
    event_id: str
    model_version: str
    items: list[RecommendedItem]
    fallback: bool
    latency_ms: float


class RewardItem(Strict):
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    reward: Union[StrictFloat, StrictInt]
    item_id: Optional[ItemId] = Field(None, description="defaults to the item in the first slot")
    reward_id: Optional[Annotated[str, StringConstraints(min_length=1, max_length=128)]] = Field(
        None, description="idempotency key: rewards with distinct keys for one item are aggregated")


class RewardBatch(Strict):
    rewards: Annotated[list[RewardItem], Field(min_length=1, max_length=1000)]


class RewardResult(BaseModel):
    accepted: int
    duplicates: int
    errors: list[dict[str, Any]]


class LoggedItem(BaseModel):
    id: str
    probability: float
    explanation: list[dict[str, Any]]


class LoggedReward(BaseModel):
    item_id: str
    reward: float
    received_at: datetime
    default: bool


class EventOut(BaseModel):
    event_id: str
    user_id: str
    context: dict[str, Any]
    items: list[LoggedItem]
    model_version: str
    explained_by: str = Field(description="the model version whose weights explain the ranking: the deciding model when "
                                          "it is still serving or was kept, otherwise the one serving now")
    fallback: bool
    deferred: bool
    activated: bool
    rewards: list[LoggedReward]


class ApprenticeReport(BaseModel):
    events: int = Field(description="recent decisions that named a baseline_item_id")
    agreement: Optional[float] = Field(description="share of them where the policy's first choice was the baseline")
    baseline_reward: Optional[float] = Field(description="mean reward of the baseline items served first")


class LoopStatus(BaseModel):
    mode: str
    model_version: str
    apprentice: ApprenticeReport
