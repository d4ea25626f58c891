"""The recommendation loop: logged decisions, rewards, model versions and the learner's own state."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from app.models.base import Timestamp, big_id, utcnow

DEFERRED_UNSETTLED = text("deferred AND settled_at IS NULL")


class Event(SQLModel, table=True):
    """One logged decision: what was shown, with what probability, and everything needed to learn from it again."""

    __tablename__ = "events"
    # The learner looks for due, unsettled events every second; an index of only those keeps that look
    # cheap however many settled events the log holds.
    __table_args__ = (
        Index(
            "ix_events_unsettled",
            "created_at",
            sqlite_where=text("settled_at IS NULL"),
            postgresql_where=text("settled_at IS NULL"),
        ),
        # The oldest activation among deferred events still waiting (/healthz asks), found without a scan.
        Index(
            "ix_events_deferred_unsettled", "activated_at", sqlite_where=DEFERRED_UNSETTLED, postgresql_where=DEFERRED_UNSETTLED
        ),
    )

    id: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(max_length=256, index=True)
    context: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    query: Optional[str] = Field(default=None, sa_type=Text)
    shared: dict[str, Any] = Field(sa_type=JSON)  # bandit.features.Shared.to_dict()
    candidates: list[dict[str, Any]] = Field(sa_type=JSON)  # bandit.features.Candidate.to_dict() each
    slots: list[dict[str, Any]] = Field(sa_type=JSON)  # [{"position", "item_id", "probability"}] in slot order
    segment: str = Field(max_length=500)
    model_version: str = Field(max_length=64)
    fallback: bool = False
    deferred: bool = False
    activated_at: Optional[datetime] = Field(default=None, sa_type=Timestamp())
    baseline_item_id: Optional[str] = Field(default=None, max_length=256)
    policy_item_id: Optional[str] = Field(default=None, max_length=256)  # the policy's own first choice
    created_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp(), index=True)
    # Set once the reward wait has passed and every shown slot has its final reward (or, for a deferred event
    # never activated, once it left the reward window). Rewards after this are late: stored, never learned.
    settled_at: Optional[datetime] = Field(default=None, sa_type=Timestamp())


class Reward(SQLModel, table=True):
    """A reward as received from a client, or the learner's settlement of a slot (its default or aggregate).

    `learn_value` is set on the one row per shown slot that the learner learns: the first client reward under
    `earliest`, the settlement row otherwise (and for slots nobody rewarded). Every other row is kept for the
    record and counts, and is never learned."""

    __tablename__ = "rewards"
    __table_args__ = (
        UniqueConstraint("event_id", "item_id", "source", "reward_key", name="uq_rewards_event_item_source_key"),
        # A user's own rewards, newest first, without wading through the settlement rows (most of them).
        Index("ix_rewards_user_profile", "user_id", "source", "id"),
    )

    id: Optional[int] = Field(default=None, sa_column=big_id())
    event_id: str = Field(sa_column=Column(String(32), ForeignKey("events.id"), nullable=False, index=True))
    item_id: str = Field(max_length=256, index=True)
    user_id: str = Field(max_length=256)
    source: str = Field(default="client", max_length=16)  # client, settlement
    reward_key: str = Field(default="", max_length=128)  # the client's reward_id; "" when none was sent
    value: float
    learn_value: Optional[float] = None
    is_default: bool = False  # a settlement that gave the default reward (nobody rewarded the slot)
    late: bool = False  # arrived after its slot was settled
    learn_error: Optional[str] = Field(default=None, sa_type=Text)  # set aside by the learner after failing
    excluded: bool = False  # from a user confirmed as fraudulent: kept for the record, never learned or trained on
    received_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())


class ModelVersion(SQLModel, table=True):
    """A kept model: the snapshot archive (VW model, Q-values, feature settings), for rollback and export."""

    __tablename__ = "model_versions"

    version: str = Field(primary_key=True, max_length=64)
    archive: bytes = Field(sa_type=LargeBinary)
    source: str = Field(max_length=32)  # learner, import, retrain
    rewards_learned: int = 0
    last_reward_id: int = Field(default=0, sa_type=BigInteger)
    # Lineage: this version learned the rewards in (learned_from_reward_id, last_reward_id] on top of
    # `parent_version` (None: it started untrained, or came from elsewhere).
    parent_version: Optional[str] = Field(default=None, max_length=64)
    learned_from_reward_id: int = Field(default=0, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())


class ModelRequest(SQLModel, table=True):
    """An operator's request (a rollback) that the learner, the only writer of the served model, carries out."""

    __tablename__ = "model_requests"

    id: Optional[int] = Field(default=None, primary_key=True)
    action: str = Field(max_length=16)  # rollback, promote, withdraw
    version: str = Field(max_length=64)
    status: str = Field(default="pending", max_length=16)  # pending, done, failed
    detail: str = Field(default="", sa_type=Text)
    requested_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())
    done_at: Optional[datetime] = Field(default=None, sa_type=Timestamp())


class LearnerState(SQLModel, table=True):
    """The learner's heartbeat and position, one row, so that any process can tell its lag and liveness."""

    __tablename__ = "learner_state"

    id: int = Field(default=1, primary_key=True)
    last_reward_id: int = Field(default=0, sa_type=BigInteger)
    model_version: str = Field(default="v0", max_length=64)
    heartbeat_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())
    started_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())


class QValue(SQLModel, table=True):
    __tablename__ = "qvalues"

    item_id: str = Field(primary_key=True, max_length=256)
    segment: str = Field(primary_key=True, max_length=500)
    q: float
    n: int
    updated_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())
