"""Retraining: each run's model card, the releases (which model served from when), and shadow scores."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, Column, ForeignKey, String, Text
from sqlmodel import Field, SQLModel

from app.models.base import Timestamp, utcnow


class ModelCard(SQLModel, table=True):
    """One retrain run: the data it learned from, the settings it searched, what the estimators said of the
    candidate and the live policy, and whether it was promoted and why."""

    __tablename__ = "model_cards"

    id: Optional[int] = Field(default=None, primary_key=True)
    candidate_version: Optional[str] = Field(default=None, max_length=64)  # kept in model_versions when trained
    trigger: str = Field(max_length=255)  # schedule, manual, drift red: <features>, red <kpi> on <release>, dataset:<name>
    status: str = Field(max_length=16)  # promoted, rejected, shadow, failed, insufficient
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # windows, row counts, excluded users
    features: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # namespaces and crosses
    settings: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # the chosen PolicyConfig
    grid: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)  # every setting tried, with its estimates
    estimates: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # {"candidate": {...}, "live": {...}}
    kpis: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # the live model's KPIs when it ran
    limits: list[str] = Field(default_factory=list, sa_type=JSON)  # what the estimates cannot tell
    decision: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())
    finished_at: Optional[datetime] = Field(default=None, sa_type=Timestamp())


class ModelRelease(SQLModel, table=True):
    """From `started_at` on, the learner served `version` and what it learned on top of it (until the next
    release): the unit KPIs are measured per, and what a red KPI rolls back from."""

    __tablename__ = "model_releases"

    id: Optional[int] = Field(default=None, primary_key=True)
    version: str = Field(max_length=64)  # fallback: the popularity ranking, no model
    kind: str = Field(max_length=16)  # initial, promotion, rollback, withdrawal
    reason: str = Field(default="", sa_type=Text)
    card_id: Optional[int] = None
    started_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp(), index=True)


class ShadowDecision(SQLModel, table=True):
    """What a shadow candidate would have done for a served decision: its own first choice, and its probability
    of the item the live policy put first (what off-policy evaluation on live traffic needs)."""

    __tablename__ = "shadow_decisions"

    version: str = Field(max_length=64, primary_key=True)  # first: a shadow's decisions are read by version
    event_id: str = Field(sa_column=Column(String(32), ForeignKey("events.id"), primary_key=True))
    item_id: str = Field(max_length=256)
    probability: float  # the shadow's probability of the served first item
    score: float  # the shadow's expected reward of its own first choice
    created_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())
