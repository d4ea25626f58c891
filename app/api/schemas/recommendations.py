from __future__ import annotations

from typing import Annotated, Any, Optional

from pydantic import AwareDatetime, BaseModel, Field, StrictBool, StringConstraints

from app.api.schemas.common import ItemId, Name, Scalar, Strict, integer

UserId = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class RecommendationRequest(Strict):
    user_id: UserId
    context: Annotated[dict[Name, Scalar], Field(max_length=50)] = {}
    query: Optional[Annotated[str, StringConstraints(min_length=1, max_length=1000)]] = None
    k: integer(1, 1000, description="at most FEEDLOOP_MAX_K (100 unless configured)") = 10
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


class LoggedItem(BaseModel):
    id: str
    probability: float
    explanation: list[dict[str, Any]]


class LoggedReward(BaseModel):
    item_id: str
    reward: float
    received_at: AwareDatetime
    default: bool = Field(description="the default reward, given when nobody rewarded the item within the wait")
    settlement: bool = Field(description="written by the learner when the wait ended (the default or the aggregate)")
    learned: bool = Field(description="the one reward per shown item that the model learned")
    late: bool = Field(description="arrived after the item's reward was final: kept, not learned")


class EventOut(BaseModel):
    event_id: str
    user_id: str
    context: dict[str, Any]
    items: list[LoggedItem]
    model_version: str
    explained_by: str = Field(
        description="the model version whose weights explain the ranking: the deciding model when "
        "it is still serving or was kept, otherwise the one serving now"
    )
    fallback: bool
    deferred: bool
    activated: bool
    rewards: list[LoggedReward]
