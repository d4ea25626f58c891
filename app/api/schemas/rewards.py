from __future__ import annotations

from typing import Annotated, Optional

from pydantic import AfterValidator, BaseModel, Field, StrictFloat, StrictInt, StringConstraints

from app.api.schemas.common import EventId, ItemId, Strict
from app.services.interactions import EVENT_REWARD_PREFIX
from app.services.polls import POLL_REWARD_PREFIX


def _not_a_poll_key(key: str) -> str:
    if key.startswith(POLL_REWARD_PREFIX):
        raise ValueError(f"reward_id values starting with {POLL_REWARD_PREFIX!r} are reserved for poll answers")
    if key.startswith(EVENT_REWARD_PREFIX):
        raise ValueError(f"reward_id values starting with {EVENT_REWARD_PREFIX!r} are reserved for rewards derived from events")
    return key


class RewardItem(Strict):
    event_id: EventId
    reward: Annotated[StrictFloat | StrictInt, Field(allow_inf_nan=False)]
    item_id: Optional[ItemId] = Field(None, description="defaults to the item in the first slot")
    reward_id: Optional[Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(_not_a_poll_key)]] = Field(
        None,
        description="idempotency key: rewards with distinct keys for one item are aggregated; the same key with "
        "another value is refused (409). Keys starting with 'poll:' (poll answers) or 'event:' (rewards derived from events) are refused (422).",
    )


class RewardBatch(Strict):
    rewards: Annotated[list[RewardItem], Field(min_length=1, max_length=1000)]


class RewardError(BaseModel):
    index: int = Field(description="position of the reward in `rewards`")
    error: str
    message: str


class RewardResult(BaseModel):
    accepted: int
    duplicates: int = Field(description="already received with the same reward_id and value: counted once")
    late: int = Field(description="accepted after the item's reward was final: kept and counted, not learned")
    errors: list[RewardError]
