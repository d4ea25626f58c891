"""Webhooks on poll answers, and the outbox they are delivered from: a delivery is stored in the same
transaction as the answer, so a restart loses none."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import Column, ForeignKey, Index, Integer, Text, text
from sqlmodel import Field, SQLModel

from app.models.base import Timestamp, big_id, utcnow

PENDING = text("delivered_at IS NULL AND failed_at IS NULL")


class Webhook(SQLModel, table=True):
    __tablename__ = "webhooks"

    id: Optional[int] = Field(default=None, primary_key=True)
    url: str = Field(sa_type=Text)
    secret: str = Field(max_length=64)  # HMAC-SHA256 key; shown to the admin, who gives it to the receiver
    topic: str = Field(default="poll.response", max_length=32)  # poll.response, alert
    poll_id: Optional[int] = Field(default=None, sa_column=Column(Integer, ForeignKey("polls.id"), nullable=True))
    allow_private: bool = False  # loopback and private addresses only when the admin says so
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())
    disabled_at: Optional[datetime] = Field(default=None, sa_type=Timestamp())


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "next_attempt_at", sqlite_where=PENDING, postgresql_where=PENDING),)

    id: Optional[int] = Field(default=None, sa_column=big_id())
    webhook_id: int = Field(sa_column=Column(Integer, ForeignKey("webhooks.id"), nullable=False, index=True))
    event: str = Field(max_length=32)  # poll.response
    body: str = Field(sa_type=Text)  # the exact bytes signed and sent
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())
    last_status: Optional[int] = None
    last_error: Optional[str] = Field(default=None, sa_type=Text)
    delivered_at: Optional[datetime] = Field(default=None, sa_type=Timestamp())
    failed_at: Optional[datetime] = Field(default=None, sa_type=Timestamp())  # gave up after the last attempt
    created_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())
