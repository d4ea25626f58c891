from __future__ import annotations

from typing import Annotated, Optional

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from app.api.schemas.common import EventId, ItemId, Name, Query, RowError, Scalar, Strict
from app.api.schemas.recommendations import UserId

# A user id in a path: any id the API takes, except those with a "/" (which no path segment can hold).
PathUserId = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^/]+$")]
EventType = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_.\-]*$")]


class InteractionRow(Strict):
    type: EventType = Field(description="impression, click, purchase, search, or a type of the app's own")
    user_id: UserId
    item_id: Optional[ItemId] = None
    event_id: Optional[EventId] = Field(
        None, description="the recommendation this answers: mapped types (FEEDLOOP_EVENT_REWARDS) become its reward"
    )
    ts: Annotated[Optional[AwareDatetime], Field(strict=False)] = Field(
        None, description="when it happened, with its time zone; the time of arrival when absent"
    )
    properties: Annotated[dict[Name, Scalar], Field(max_length=50)] = {}


class InteractionBatch(Strict):
    events: Annotated[list[InteractionRow], Field(min_length=1, description="at most 10,000 (FEEDLOOP_MAX_ITEMS_PER_REQUEST)")]


class InteractionResult(BaseModel):
    accepted: int = Field(description="events stored")
    errors: list[RowError] = Field(description="events refused, by their index in `events`; the others are stored")


class ActivityQuery(Query):
    at: Optional[AwareDatetime] = Field(None, description="the aggregates as they were at this time (default: now)")


class ActivityOut(BaseModel):
    at: AwareDatetime
    counts: dict[str, dict[str, int]] = Field(description="window (5m, 1h, 1d) -> event type -> count")
    click_rate: dict[str, Optional[float]] = Field(description="window -> clicks per impression, null without impressions")
    categories: list[str] = Field(description="categories clicked or bought in the last day, most first (users only)")
    features: dict[str, float] = Field(description="the context features the bandit gets from this activity")
