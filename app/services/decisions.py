"""Logged decisions: reading one back with its explanation and rewards, activating a deferred one."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from app.models import Event, Reward, utcnow
from app.services.model_store import ModelStore
from bandit.features import Candidate, Shared
from feedback.rewards import RewardRules, can_activate


@dataclass(frozen=True)
class ExplainedItem:
    id: str
    probability: float
    explanation: list[dict]


@dataclass(frozen=True)
class ExplainedDecision:
    event: Event
    shared: Shared  # what the policy saw of the user and the request, as logged
    items: list[ExplainedItem]
    explained_by: str
    rewards: list[Reward]


def explain(session: Session, models: ModelStore, event_id: str) -> ExplainedDecision | None:
    event = session.get(Event, event_id)
    if event is None:
        return None
    shared = Shared.from_dict(event.shared)
    candidates = {c["id"]: Candidate.from_dict(c) for c in event.candidates}
    model = models.deciding(event.model_version, session)
    with models.decide():
        items = [
            ExplainedItem(sl["item_id"], sl["probability"], model.policy.explain(shared, candidates[sl["item_id"]])[1])
            for sl in event.slots
        ]
    rewards = session.exec(select(Reward).where(Reward.event_id == event_id).order_by(col(Reward.id))).all()
    return ExplainedDecision(event, shared, items, model.version, list(rewards))


class ActivationRefused(ValueError):
    pass


def activate(session: Session, rules: RewardRules, event_id: str) -> bool:
    """Mark a deferred event as shown, so that it learns; False for an unknown event. Activating twice is a no-op;
    an event past the reward window can no longer be activated."""
    event = session.get(Event, event_id)
    if event is None:
        return False
    if event.activated_at is None:
        now = utcnow()
        if not can_activate(rules, event.created_at, now):
            raise ActivationRefused(f"event {event_id} is older than the reward window and can no longer be activated")
        event.activated_at = now
        session.add(event)
    return True
