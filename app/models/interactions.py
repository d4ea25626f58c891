"""What users do (impressions, clicks, purchases, searches...) as apps report it, and the per-minute counts that
the windowed aggregates read. The interactions are the record; the counts are derived and can be rebuilt."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel

from app.models.base import Timestamp, big_id, utcnow


class Interaction(SQLModel, table=True):
    __tablename__ = "interactions"
    __table_args__ = (
        Index("ix_interactions_user_ts", "user_id", "ts"),
        Index("ix_interactions_item_ts", "item_id", "ts"),
        Index("ix_interactions_type_ts", "type", "ts"),  # purchases and clicks of a window (KPIs, fraud scan)
    )

    id: Optional[int] = Field(default=None, sa_column=big_id())
    type: str = Field(max_length=32)
    user_id: str = Field(max_length=256)
    item_id: Optional[str] = Field(default=None, max_length=256)
    event_id: Optional[str] = Field(default=None, max_length=32, index=True)  # the recommendation it answers
    category: Optional[str] = Field(default=None, max_length=100)  # the item's category when the event arrived
    ts: datetime = Field(sa_type=Timestamp())  # when it happened (the app's clock, or arrival when not sent)
    properties: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    received_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())


class ActivityMinute(SQLModel, table=True):
    """How many events of a type a user or an item had in one minute; `category` "" holds the totals, other
    rows the counts per item category (for a user's recent categories)."""

    __tablename__ = "activity_minutes"
    # The items' last-hour counts are read in one grouped query; old buckets are pruned by minute.
    __table_args__ = (Index("ix_activity_minutes_kind_minute", "subject_type", "minute"),)

    subject_type: str = Field(primary_key=True, max_length=8)  # user, item
    subject_id: str = Field(primary_key=True, max_length=256)
    minute: datetime = Field(primary_key=True, sa_type=Timestamp())
    event_type: str = Field(primary_key=True, max_length=32)
    category: str = Field(default="", primary_key=True, max_length=100)
    count: int = 0
