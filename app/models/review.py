"""Reviewer queues: tasks, the decisions reviewers make on them, the append-only audit log, and the end users
that a confirmed fraud decision excludes from learning."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import Timestamp, big_id, utcnow


class ReviewQueue(SQLModel, table=True):
    __tablename__ = "review_queues"

    name: str = Field(primary_key=True, max_length=32)
    description: str = Field(default="", max_length=500)
    decisions_required: int = 1  # independent decisions a task needs before it is resolved
    lease_seconds: int = 900  # how long a claim holds before the task returns to the queue
    labels: Optional[list[str]] = Field(default=None, sa_type=JSON)  # the label values a labeling queue offers
    created_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())


class ReviewTask(SQLModel, table=True):
    __tablename__ = "review_tasks"
    __table_args__ = (
        # The same subject with the same evidence, enqueued twice, is one task.
        UniqueConstraint("queue", "subject_type", "subject_id", "evidence_key", name="uq_review_tasks_subject_evidence"),
        Index("ix_review_tasks_next", "queue", "status", "priority", "id"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    queue: str = Field(sa_column=Column(String(32), ForeignKey("review_queues.name"), nullable=False))
    subject_type: str = Field(max_length=8)  # user, item, event
    subject_id: str = Field(max_length=256)
    evidence: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    evidence_key: str = Field(max_length=64)  # sha256 of the canonical evidence JSON
    priority: int = 0  # higher first
    status: str = Field(default="open", max_length=16)  # open, claimed, resolved
    claimed_by: Optional[int] = Field(default=None, sa_column=Column(Integer, ForeignKey("users.id"), nullable=True))
    lease_expires_at: Optional[datetime] = Field(default=None, sa_type=Timestamp())
    decision: Optional[str] = Field(default=None, max_length=256)  # the outcome once resolved
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())
    resolved_at: Optional[datetime] = Field(default=None, sa_type=Timestamp())


class ReviewDecision(SQLModel, table=True):
    __tablename__ = "review_decisions"
    __table_args__ = (UniqueConstraint("task_id", "user_id", name="uq_review_decisions_task_user"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    task_id: int = Field(sa_column=Column(Integer, ForeignKey("review_tasks.id"), nullable=False, index=True))
    user_id: int = Field(sa_column=Column(Integer, ForeignKey("users.id"), nullable=False))
    decision: str = Field(max_length=16)  # confirm, dismiss, label
    label: Optional[str] = Field(default=None, max_length=256)
    note: Optional[str] = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())


class AuditEntry(SQLModel, table=True):
    """Who did what, when, with the state before and after. The database refuses UPDATE and DELETE on this
    table (triggers in the migration), so not even the service can rewrite history."""

    __tablename__ = "audit_log"

    id: Optional[int] = Field(default=None, sa_column=big_id())
    at: datetime = Field(default_factory=utcnow, sa_type=Timestamp(), index=True)
    actor: str = Field(max_length=64)  # "user:<id>", "key:<id>", "system"
    action: str = Field(max_length=32)
    subject_type: str = Field(max_length=16)
    subject_id: str = Field(max_length=256)
    before: Optional[dict[str, Any]] = Field(default=None, sa_type=JSON)
    after: Optional[dict[str, Any]] = Field(default=None, sa_type=JSON)


class ExcludedUser(SQLModel, table=True):
    """An end user confirmed as fraudulent: their rewards are not learned from then on."""

    __tablename__ = "excluded_users"

    user_id: str = Field(primary_key=True, max_length=256)
    task_id: Optional[int] = Field(default=None, sa_column=Column(Integer, ForeignKey("review_tasks.id"), nullable=True))
    reason: str = Field(default="", sa_type=Text)
    excluded_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())
