"""In-app polls: what is asked, of whom it was asked (survey fatigue, response rate) and what was answered."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from app.models.base import Timestamp, big_id, utcnow


class AnswerJSON(TypeDecorator):
    """A JSON answer of any shape. A JSON column has NUMERIC affinity in SQLite, which stores the text `5` (a
    rating) as the number 5 and hands it back unparsed; numbers are taken as they come."""

    impl = JSON
    cache_ok = True

    def result_processor(self, dialect, coltype):
        decode = self.impl_instance.result_processor(dialect, coltype)

        def process(value):
            if isinstance(value, (int, float)) or decode is None:
                return value
            return decode(value)

        return process


class Poll(SQLModel, table=True):
    __tablename__ = "polls"

    id: Optional[int] = Field(default=None, primary_key=True)
    public_token: str = Field(max_length=32, unique=True, index=True)  # in embed URLs; not guessable
    question: str = Field(sa_type=Text)
    kind: str = Field(max_length=16)  # single_choice, multiple_choice, rating, thumbs, text
    options: Optional[list[str]] = Field(default=None, sa_type=JSON)  # the choice kinds only
    target: str = Field(default="none", max_length=8)  # none, event, item
    target_item_id: Optional[str] = Field(default=None, max_length=256)  # a poll about one item
    starts_at: Optional[datetime] = Field(default=None, sa_type=Timestamp())
    ends_at: Optional[datetime] = Field(default=None, sa_type=Timestamp())
    sample_share: float = 1.0  # the share of respondents asked, chosen by a stable hash of the respondent
    allowed_origins: list[str] = Field(default_factory=list, sa_type=JSON)  # who may embed and call it
    allow_multiple: bool = False  # more than one answer per respondent
    recontact_seconds: int = 30 * 86400  # after an ask, this poll is not shown to the respondent again for this long
    reward_map: Optional[dict[str, float]] = Field(default=None, sa_type=JSON)  # answer → reward; None: the kind's default
    uncertain_only: bool = False  # shown only for recommendation events where the bandit was unsure
    max_probability: Optional[float] = None  # unsure: the chosen item's probability below this
    max_margin: Optional[float] = None  # unsure: the score margin between the first two candidates below this
    created_by: str = Field(max_length=64)  # "user:<id>" or "key:<id>"
    created_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())
    closed_at: Optional[datetime] = Field(default=None, sa_type=Timestamp())


class PollAsk(SQLModel, table=True):
    """A poll shown to a respondent: the fatigue rules and the response rate count these."""

    __tablename__ = "poll_asks"
    __table_args__ = (
        Index("ix_poll_asks_respondent", "respondent_id", "asked_at"),
        Index("ix_poll_asks_poll_respondent", "poll_id", "respondent_id", "asked_at"),
    )

    id: Optional[int] = Field(default=None, sa_column=big_id())
    poll_id: int = Field(sa_column=Column(Integer, ForeignKey("polls.id"), nullable=False))
    respondent_id: str = Field(max_length=256)
    event_id: Optional[str] = Field(default=None, max_length=32)
    uncertain: bool = False
    asked_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())


class PollResponse(SQLModel, table=True):
    __tablename__ = "poll_responses"
    # `once_key` is the respondent for a poll that takes one answer each (NULL otherwise): the database itself
    # refuses a second answer, however many workers race.
    __table_args__ = (
        UniqueConstraint("poll_id", "once_key", name="uq_poll_responses_once"),
        Index("ix_poll_responses_poll", "poll_id", "id"),
    )

    id: Optional[int] = Field(default=None, sa_column=big_id())
    poll_id: int = Field(sa_column=Column(Integer, ForeignKey("polls.id"), nullable=False))
    respondent_id: str = Field(max_length=256)
    once_key: Optional[str] = Field(default=None, sa_column=Column(String(256), nullable=True))
    answer: Any = Field(sa_type=AnswerJSON)
    event_id: Optional[str] = Field(default=None, max_length=32, index=True)
    item_id: Optional[str] = Field(default=None, max_length=256)
    uncertain: bool = False  # answered about an event where the bandit was unsure
    reward_value: Optional[float] = None  # the reward (or relevance label) this answer became
    created_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())
