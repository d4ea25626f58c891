"""Database tables. Everything that must not be lost lives here; the FAISS index is derived."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import (JSON, BigInteger, Column, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text,
                        UniqueConstraint, text)
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=16)  # shown in listings so a key can be recognised
    key_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    last_used_at: Optional[datetime] = Field(default=None, sa_type=DateTime(timezone=True))
    revoked_at: Optional[datetime] = Field(default=None, sa_type=DateTime(timezone=True))


class Item(SQLModel, table=True):
    __tablename__ = "items"

    id: str = Field(primary_key=True, max_length=256)
    title: str = Field(max_length=500)
    description: str = Field(default="", sa_type=Text)
    category: Optional[str] = Field(default=None, max_length=100, index=True)
    tags: list[str] = Field(default_factory=list, sa_type=JSON)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    # Deleted items keep their row: decisions and rewards that name them stay meaningful.
    deleted_at: Optional[datetime] = Field(default=None, sa_type=DateTime(timezone=True), index=True)


class ItemVector(SQLModel, table=True):
    """The item's embedding, kept so the index can be rebuilt without re-encoding."""

    __tablename__ = "item_vectors"

    item_id: str = Field(
        sa_column=Column(String(256), ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    )
    model_id: str = Field(max_length=64)
    text_hash: str = Field(max_length=64)
    vector: bytes = Field(sa_type=LargeBinary)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class CatalogueChange(SQLModel, table=True):
    """Ordered log of which items changed; every process replays it to keep its index current."""

    __tablename__ = "catalogue_changes"

    id: Optional[int] = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    item_id: str = Field(max_length=256)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Event(SQLModel, table=True):
    """One logged decision: what was shown, with what probability, and everything needed to learn from it again."""

    __tablename__ = "events"
    # The learner looks for due, unsettled events every second; an index of only those keeps that look
    # cheap however many settled events the log holds.
    __table_args__ = (Index("ix_events_unsettled", "created_at", sqlite_where=text("settled_at IS NULL"),
                            postgresql_where=text("settled_at IS NULL")),)

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
    activated_at: Optional[datetime] = Field(default=None, sa_type=DateTime(timezone=True))
    baseline_item_id: Optional[str] = Field(default=None, max_length=256)
    policy_item_id: Optional[str] = Field(default=None, max_length=256)  # the policy's own first choice
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True), index=True)
    # Set once the reward wait has passed and slots without a reward got the default reward.
    settled_at: Optional[datetime] = Field(default=None, sa_type=DateTime(timezone=True))


class Reward(SQLModel, table=True):
    """A reward as received. `learn_value` is what it adds to the slot's aggregate, which the learner learns."""

    __tablename__ = "rewards"
    __table_args__ = (
        UniqueConstraint("event_id", "item_id", "reward_key", name="uq_rewards_event_item_key"),
        # A user's own rewards, newest first, without wading through the default ones (most of them).
        Index("ix_rewards_user_profile", "user_id", "is_default", "id"),
    )

    id: Optional[int] = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    event_id: str = Field(sa_column=Column(String(32), ForeignKey("events.id"), nullable=False, index=True))
    item_id: str = Field(max_length=256, index=True)
    user_id: str = Field(max_length=256)
    reward_key: str = Field(default="", max_length=128)  # client's idempotency key; "" when none was sent
    value: float
    learn_value: Optional[float] = None  # None: adds nothing to the aggregate (e.g. a later reward under "earliest")
    is_default: bool = False
    received_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class ModelVersion(SQLModel, table=True):
    """A kept model: the snapshot archive (VW model, Q-values, feature settings), for rollback and export."""

    __tablename__ = "model_versions"

    version: str = Field(primary_key=True, max_length=64)
    archive: bytes = Field(sa_type=LargeBinary)
    source: str = Field(max_length=32)  # learner, import, rollback
    rewards_learned: int = 0
    last_reward_id: int = Field(default=0, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class QValue(SQLModel, table=True):
    __tablename__ = "qvalues"

    item_id: str = Field(primary_key=True, max_length=256)
    segment: str = Field(primary_key=True, max_length=500)
    q: float
    n: int
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class JobRun(SQLModel, table=True):
    """One run of a scheduled job: what the operator sees in `feedloop jobs list` (and later the dashboard)."""

    __tablename__ = "job_runs"

    id: Optional[int] = Field(default=None, primary_key=True)
    job: str = Field(max_length=64, index=True)
    status: str = Field(max_length=16)  # running, ok, failed, skipped
    detail: str = Field(default="", sa_type=Text)
    started_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True), index=True)
    finished_at: Optional[datetime] = Field(default=None, sa_type=DateTime(timezone=True))
