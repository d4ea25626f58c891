from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, Column, ForeignKey, LargeBinary, String, Text
from sqlmodel import Field, SQLModel

from app.models.base import Timestamp, big_id, utcnow


class Item(SQLModel, table=True):
    __tablename__ = "items"

    id: str = Field(primary_key=True, max_length=256)
    title: str = Field(max_length=500)
    description: str = Field(default="", sa_type=Text)
    category: Optional[str] = Field(default=None, max_length=100, index=True)
    tags: list[str] = Field(default_factory=list, sa_type=JSON)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())
    updated_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())
    # Deleted items keep their row: decisions and rewards that name them stay meaningful.
    deleted_at: Optional[datetime] = Field(default=None, sa_type=Timestamp(), index=True)


class ItemVector(SQLModel, table=True):
    """The item's embedding, kept so the index can be rebuilt without re-encoding."""

    __tablename__ = "item_vectors"

    item_id: str = Field(sa_column=Column(String(256), ForeignKey("items.id", ondelete="CASCADE"), primary_key=True))
    model_id: str = Field(max_length=64)
    text_hash: str = Field(max_length=64)
    vector: bytes = Field(sa_type=LargeBinary)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())


class CatalogueChange(SQLModel, table=True):
    """Ordered log of which items changed; every process replays it to keep its index current."""

    __tablename__ = "catalogue_changes"

    id: Optional[int] = Field(default=None, sa_column=big_id())
    item_id: str = Field(max_length=256)
    created_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())
