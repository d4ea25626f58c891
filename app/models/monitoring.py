"""Monitoring: alerts raised by the scheduled checks, KPI snapshots over time, and drift reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, Column, Index, String, Text
from sqlmodel import Field, SQLModel

from app.models.base import Timestamp, big_id, utcnow


class Alert(SQLModel, table=True):
    """Something a check found wrong: a red KPI, an engagement drop, a fraud-like user, a drifted feature.
    Open while `resolved_at` is NULL; `key` says what it is about, so a check that finds the same thing on its
    next run does not raise a second open alert."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_open", "resolved_at", "key"),)

    id: Optional[int] = Field(default=None, sa_column=big_id())
    kind: str = Field(max_length=32)  # kpi, engagement_drop, fraud_like, drift
    key: str = Field(max_length=400)  # kind:subject_type:subject_id[:detail]
    subject_type: str = Field(max_length=16)  # model, item, category, overall, user, feature
    subject_id: str = Field(max_length=256)
    severity: str = Field(max_length=8)  # red, yellow
    message: str = Field(sa_type=Text)
    evidence: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    review_task_id: Optional[int] = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp(), index=True)
    resolved_at: Optional[datetime] = Field(default=None, sa_type=Timestamp())
    resolved_by: Optional[str] = Field(default=None, sa_column=Column(String(64), nullable=True))


class KpiSnapshot(SQLModel, table=True):
    """One KPI's value over the window ending at `at`, for one model version or "*" (all of them)."""

    __tablename__ = "kpi_snapshots"
    __table_args__ = (Index("ix_kpi_snapshots_series", "name", "model_version", "at"),)

    id: Optional[int] = Field(default=None, sa_column=big_id())
    at: datetime = Field(sa_type=Timestamp())
    model_version: str = Field(max_length=64)
    name: str = Field(max_length=32)
    value: Optional[float] = None  # None: nothing to compute it from in the window
    n: int = 0  # the denominator it was computed over
    colour: str = Field(max_length=8)  # green, yellow, red, unknown (no band or no value)


class DriftReport(SQLModel, table=True):
    """One feature's drift between the reference window and the current one, as a drift-scan run found it."""

    __tablename__ = "drift_reports"
    __table_args__ = (Index("ix_drift_reports_feature", "feature", "at"),)

    id: Optional[int] = Field(default=None, sa_column=big_id())
    at: datetime = Field(sa_type=Timestamp(), index=True)
    feature: str = Field(max_length=128)
    psi: Optional[float] = None
    ks: Optional[float] = None
    ks_p: Optional[float] = None
    colour: str = Field(max_length=16)  # green, yellow, red, insufficient
    reference_start: datetime = Field(sa_type=Timestamp())
    reference_end: datetime = Field(sa_type=Timestamp())
    current_start: datetime = Field(sa_type=Timestamp())
    current_end: datetime = Field(sa_type=Timestamp())
    reference_n: int = 0
    current_n: int = 0
