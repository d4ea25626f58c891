from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import AwareDatetime, BaseModel, Field, StrictFloat, StrictInt, StringConstraints

from app.api.schemas.common import NUMBER_BOUND, EventId, ItemId, Query, Strict, integer
from feedback.polls import MAX_OPTION, MAX_OPTIONS, MAX_ORIGINS, MAX_QUESTION, MAX_RECONTACT_SECONDS, MAX_TEXT, MIN_OPTIONS

PollId = Annotated[str, StringConstraints(min_length=1, max_length=9, pattern=r"^[0-9]{1,9}$")]
PollToken = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]{1,32}$")]
RespondentId = Annotated[str, StringConstraints(min_length=1, max_length=256)]

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
Origin = Annotated[
    str,
    StringConstraints(max_length=300, pattern=rf"^https?://(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::{_PORT})?$"),
]
Option = Annotated[str, StringConstraints(min_length=1, max_length=MAX_OPTION, pattern=r"^\S(?:.*\S)?$")]


def number(**bounds) -> object:
    """A JSON number within bounds (both members of the union carry them, so the document states them too)."""
    return Union[Annotated[StrictFloat, Field(allow_inf_nan=False, **bounds)], Annotated[StrictInt, Field(**bounds)]]


Share = number(gt=0, le=1)
Unit = number(ge=0, le=1)
Moment = Annotated[Optional[AwareDatetime], Field(strict=False)]
Kind = Literal["single_choice", "multiple_choice", "rating", "thumbs", "text"]


class PollIn(Strict):
    """A poll. Rules across fields (options only for the choice kinds and distinct ignoring case, an end after
    the start, reward_map keys among the poll's answers, an item for target "item") answer 422 `invalid_poll`."""

    question: Annotated[str, StringConstraints(min_length=1, max_length=MAX_QUESTION, pattern=r"\S")]
    kind: Kind
    options: Optional[Annotated[list[Option], Field(min_length=MIN_OPTIONS, max_length=MAX_OPTIONS)]] = Field(
        None, description="the choice kinds only", json_schema_extra={"uniqueItems": True}
    )
    target: Literal["none", "event", "item"] = Field(
        "none", description='"event": answers are about a recommendation event (send its event_id) and become its reward'
    )
    target_item_id: Optional[ItemId] = Field(None, description='the item of a poll with target "item"')
    starts_at: Moment = None
    ends_at: Moment = None
    sample_share: Share = Field(1.0, description="the share of respondents asked, drawn stably per respondent")
    allowed_origins: Annotated[list[Origin], Field(max_length=MAX_ORIGINS)] = Field(
        [], description="origins (scheme://host[:port]) that may embed the poll and call its public routes"
    )
    allow_multiple: bool = Field(False, description="more than one answer per respondent")
    recontact_seconds: integer(0, MAX_RECONTACT_SECONDS) = Field(30 * 86400, description="not asked again for this long")
    reward_map: Optional[
        Annotated[dict[Annotated[str, StringConstraints(max_length=MAX_OPTION)], Unit], Field(max_length=MAX_OPTIONS)]
    ] = Field(None, description="answer → reward in [0, 1]; default: thumbs up 1, down 0; rating r → (r − 1) / 4")
    uncertain_only: bool = Field(False, description="asked only about events where the bandit was unsure")
    max_probability: Optional[Share] = Field(None, description="unsure: the item's probability below this")
    max_margin: Optional[number(ge=0, le=NUMBER_BOUND)] = Field(
        None, description="unsure: the margin between the two best candidate scores (Q-values) below this"
    )


class PollCreated(BaseModel):
    id: int
    public_token: str
    embed_url: str


class PollOut(BaseModel):
    id: int
    public_token: str
    embed_url: str
    status: Literal["open", "scheduled", "ended", "closed"]
    question: str
    kind: Kind
    options: Optional[list[str]]
    target: str
    target_item_id: Optional[str]
    starts_at: Optional[AwareDatetime]
    ends_at: Optional[AwareDatetime]
    sample_share: float
    allowed_origins: list[str]
    allow_multiple: bool
    recontact_seconds: int
    reward_map: Optional[dict[str, float]]
    uncertain_only: bool
    max_probability: Optional[float]
    max_margin: Optional[float]
    responses: int
    created_by: str
    created_at: AwareDatetime
    closed_at: Optional[AwareDatetime]


class PollList(BaseModel):
    polls: list[PollOut]


class TextAnswerOut(BaseModel):
    respondent_id: str
    text: str
    created_at: AwareDatetime


class PollResults(BaseModel):
    poll_id: int
    responses: int
    counts: dict[str, int] = Field(description="answers per value (rating: per value 1-5); empty for text polls")
    asks: int = Field(description="times the poll was shown")
    asked_respondents: int
    response_rate: Optional[float] = Field(description="of the respondents asked, the share who answered")
    unsure_responses: int = Field(description="answers about events where the bandit was unsure")
    mean_reward: Optional[float] = Field(description="mean reward or relevance label the answers became")
    latest_text: list[TextAnswerOut] = Field(description="the newest text answers (text polls)")


class AskQuery(Query):
    respondent_id: RespondentId
    event_id: Optional[EventId] = None
    item_id: Optional[ItemId] = None


class PublicPoll(BaseModel):
    question: str
    kind: Kind
    options: Optional[list[str]]


class AskOut(BaseModel):
    ask: bool
    reason: Optional[str] = Field(
        description="why not: closed, not_started, ended, answered, not_sampled, recontact, quiet_period, "
        "event_required, model_sure"
    )
    poll: Optional[PublicPoll] = Field(description="what to show, when ask is true")


Answer = Union[
    Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)],
    Annotated[list[Annotated[str, StringConstraints(max_length=MAX_OPTION)]], Field(min_length=1, max_length=MAX_OPTIONS)],
    integer(1, 5),
]


class ResponseIn(Strict):
    respondent_id: RespondentId
    answer: Answer = Field(description='an option, a list of options, a rating 1-5, "up"/"down", or text')
    event_id: Optional[EventId] = Field(None, description="the recommendation event the answer is about")
    item_id: Optional[ItemId] = Field(None, description="the item the answer is about (default: the event's first)")


class ResponseCreated(BaseModel):
    id: int
    reward_value: Optional[float] = Field(description="the reward (event) or relevance label (item) the answer became")
    reward_refused: Optional[str] = Field(description="why the event took no reward, e.g. event_expired (the answer is kept)")
    uncertain: bool
