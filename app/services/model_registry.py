"""What the models page shows: kept versions (without their archives), their lineage, and the retrain runs'
model cards."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from app.models import ModelCard, ModelRelease, ModelVersion

MAX_CHAIN = 50  # a lineage longer than this is cut (each rollback or promotion adds a link)


@dataclass(frozen=True)
class Kept:
    version: str
    source: str
    created_at: datetime
    rewards_learned: int
    parent_version: str | None
    learned_from_reward_id: int
    last_reward_id: int


COLUMNS = (
    ModelVersion.version,
    ModelVersion.source,
    ModelVersion.created_at,
    ModelVersion.rewards_learned,
    ModelVersion.parent_version,
    ModelVersion.learned_from_reward_id,
    ModelVersion.last_reward_id,
)


def kept_versions(s: Session, limit: int = 200) -> list[Kept]:
    rows = s.exec(select(*COLUMNS).order_by(col(ModelVersion.created_at).desc()).limit(limit)).all()
    return [Kept(*row) for row in rows]


def kept(s: Session, version: str) -> Kept | None:
    row = s.exec(select(*COLUMNS).where(ModelVersion.version == version)).first()
    return Kept(*row) if row else None


def lineage(s: Session, version: str) -> list[Kept]:
    """The version and what it learned on top of, back to one that started from scratch (or came from a file)."""
    chain, seen = [], set()
    current = kept(s, version)
    while current is not None and current.version not in seen and len(chain) < MAX_CHAIN:
        chain.append(current)
        seen.add(current.version)
        current = kept(s, current.parent_version) if current.parent_version else None
    return chain


def cards(s: Session, limit: int = 50) -> list[ModelCard]:
    return list(s.exec(select(ModelCard).order_by(col(ModelCard.id).desc()).limit(limit)))


def card_of(s: Session, version: str) -> ModelCard | None:
    return s.exec(select(ModelCard).where(ModelCard.candidate_version == version)).first()


def releases_of(s: Session, version: str) -> list[ModelRelease]:
    return list(s.exec(select(ModelRelease).where(ModelRelease.version == version).order_by(col(ModelRelease.id))))
