"""Logged decisions imported from another system (`feedloop logs import`), kept as named datasets for offline
evaluation (`feedloop evaluate`) and offline training."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer
from sqlmodel import Field, SQLModel

from app.models.base import Timestamp, big_id, utcnow


class Dataset(SQLModel, table=True):
    __tablename__ = "datasets"

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=128, unique=True)
    source: str = Field(max_length=500)  # the file name it was imported from
    rows: int = 0
    refused: int = 0  # rows skipped with --skip-invalid
    created_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())


class DatasetRow(SQLModel, table=True):
    __tablename__ = "dataset_rows"
    __table_args__ = (Index("ix_dataset_rows_dataset_line", "dataset_id", "line"),)

    id: Optional[int] = Field(default=None, sa_column=big_id())
    dataset_id: int = Field(sa_column=Column(Integer, ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False))
    line: int  # the row's line in the imported file
    timestamp: datetime = Field(sa_type=Timestamp())
    user_id: Optional[str] = Field(default=None, max_length=256)
    action: str = Field(max_length=256)
    position: Optional[int] = None
    reward: float
    propensity: float
    context: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
