from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import Text
from sqlmodel import Field, SQLModel

from app.models.base import Timestamp, utcnow


class JobRun(SQLModel, table=True):
    """One run of a scheduled job: what the operator sees in `feedloop jobs list` (and later the dashboard)."""

    __tablename__ = "job_runs"

    id: Optional[int] = Field(default=None, primary_key=True)
    job: str = Field(max_length=64, index=True)
    status: str = Field(max_length=16)  # requested, running, ok, failed, skipped, interrupted
    trigger: str = Field(default="", max_length=128)  # schedule, manual, or why another check asked for it
    detail: str = Field(default="", sa_type=Text)
    started_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp(), index=True)
    finished_at: Optional[datetime] = Field(default=None, sa_type=Timestamp())


class RateLimit(SQLModel, table=True):
    """A fixed-window hit counter for Flask-Limiter, shared by every worker through the database."""

    __tablename__ = "rate_limits"

    key: str = Field(primary_key=True, max_length=255)
    hits: int = 0
    expires_at: float  # seconds since the epoch
