"""Storing rewards: validation against the logged event, de-duplication and aggregation per shown item."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, col, select

from app.learner import lock_reward_log
from app.models import Event, Reward, utcnow
from app.settings import Settings


@dataclass(frozen=True)
class RewardIn:
    event_id: str
    reward: float
    item_id: str | None = None
    reward_id: str | None = None


class RewardRefused(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def aggregate(kind: str, real: list[float], new: float, cap: float) -> float:
    if kind == "earliest":
        return real[0] if real else new
    total = sum(real) + new
    return min(total, cap) if kind == "capped" else total


def store_rewards(s: Session, settings: Settings, rewards: list[RewardIn]) -> tuple[int, int, list[tuple[int, RewardRefused]]]:
    """Store valid rewards in the caller's transaction; return (accepted, duplicates, [(index, refusal)])."""
    lock_reward_log(s)
    events = {e.id: e for e in s.exec(select(Event).where(col(Event.id).in_({r.event_id for r in rewards}))).all()}
    accepted, duplicates, refused = 0, 0, []
    now = utcnow()
    for index, r in enumerate(rewards):
        try:
            event = _check(events.get(r.event_id), r, settings, now)
        except RewardRefused as exc:
            refused.append((index, exc))
            continue
        item_id = r.item_id or event.slots[0]["item_id"]
        prior = s.exec(
            select(Reward).where(Reward.event_id == event.id, Reward.item_id == item_id).order_by(col(Reward.id))
        ).all()
        key = r.reward_id or ""
        if any(p.reward_key == key for p in prior):
            duplicates += 1
            continue
        s.add(Reward(event_id=event.id, item_id=item_id, user_id=event.user_id, reward_key=key, value=r.reward,
                     learn_value=_learn_value(settings, prior, r.reward), received_at=now))
        s.flush()
        accepted += 1
    return accepted, duplicates, refused


def _learn_value(settings: Settings, prior: list[Reward], value: float) -> float | None:
    """What this reward adds to the slot's aggregate (None when nothing), since the learner already saw the rest."""
    real = [p.value for p in prior if not p.is_default]
    before = aggregate(settings.reward_aggregation, real[:-1], real[-1], settings.reward_max) if real else None
    if before is None:
        before = next((p.value for p in prior if p.is_default), None)
    after = aggregate(settings.reward_aggregation, real, value, settings.reward_max)
    if before is None:
        return after
    return None if after == before else after - before


def _check(event: Event | None, r: RewardIn, settings: Settings, now) -> Event:
    if event is None:
        raise RewardRefused(404, "unknown_event", f"no recommendation event {r.event_id!r}")
    if not settings.reward_min <= r.reward <= settings.reward_max:
        raise RewardRefused(422, "reward_out_of_range", f"reward must lie in [{settings.reward_min}, {settings.reward_max}]")
    created = event.created_at if event.created_at.tzinfo else event.created_at.replace(tzinfo=now.tzinfo)
    if now - created > timedelta(seconds=settings.reward_window_seconds):
        raise RewardRefused(410, "event_expired", f"event {r.event_id} is older than the reward window ({settings.reward_window_seconds} s)")
    if event.deferred and event.activated_at is None:
        raise RewardRefused(409, "event_not_activated", f"event {r.event_id} was deferred and has not been activated")
    if r.item_id is not None and all(sl["item_id"] != r.item_id for sl in event.slots):
        raise RewardRefused(422, "item_not_shown", f"item {r.item_id!r} was not recommended in event {r.event_id}")
    return event
