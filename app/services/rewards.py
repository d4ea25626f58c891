"""Storing rewards: each checked against its logged decision (feedback.rewards), de-duplicated by
(event, item, reward_id), and marked with what the learner learns from it, all in the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlmodel import Session, col, select

from app.db import advisory_xact_lock
from app.models import Event, ExcludedUser, Reward, utcnow
from app.settings import Settings
from feedback.rewards import LoggedDecision, Refused, RewardRules, check, on_arrival

REWARD_LOG_LOCK = 0x666C_7277  # PostgreSQL advisory lock: reward ids are then assigned in commit order


def lock_reward_log(s: Session) -> None:
    advisory_xact_lock(s, REWARD_LOG_LOCK)


def reward_rules(settings: Settings) -> RewardRules:
    return RewardRules(
        minimum=settings.reward_min,
        maximum=settings.reward_max,
        default=settings.default_reward,
        aggregation=settings.reward_aggregation,
        wait=timedelta(seconds=settings.reward_wait_seconds),
        window=timedelta(seconds=settings.reward_window_seconds),
    )


def logged_decision(event) -> LoggedDecision:
    return LoggedDecision(
        created_at=event.created_at,
        shown=[sl["item_id"] for sl in event.slots],
        deferred=event.deferred,
        activated_at=event.activated_at,
        settled=event.settled_at is not None,
    )


@dataclass(frozen=True)
class RewardIn:
    event_id: str
    reward: float
    item_id: str | None = None
    reward_id: str | None = None


@dataclass
class Stored:
    accepted: int = 0
    duplicates: int = 0
    late: int = 0  # accepted after their slot was settled: kept and counted, not learned
    refused: list[tuple[int, Refused]] = field(default_factory=list)  # (index in the request, why)


DECISION = select(Event.id, Event.user_id, Event.created_at, Event.slots, Event.deferred, Event.activated_at, Event.settled_at)


def store_rewards(s: Session, rules: RewardRules, rewards: list[RewardIn]) -> Stored:
    """Store the acceptable rewards in the caller's transaction. The reward log is locked first, so the learner's
    settlement cannot slip between a reward's check and its insert."""
    lock_reward_log(s)
    events = {e.id: e for e in s.exec(DECISION.where(col(Event.id).in_({r.event_id for r in rewards}))).all()}
    # Users confirmed as fraudulent: their rewards are stored (and counted) as usual, marked so nobody learns them.
    excluded = set(
        s.exec(select(ExcludedUser.user_id).where(col(ExcludedUser.user_id).in_({e.user_id for e in events.values()})))
    )
    result, now = Stored(), utcnow()
    for index, r in enumerate(rewards):
        event = events.get(r.event_id)
        try:
            if event is None:
                raise Refused(404, "unknown_event", f"no recommendation event {r.event_id!r}")
            decision = logged_decision(event)
            item_id = check(rules, decision, r.reward, r.item_id, now)
            prior = s.exec(select(Reward).where(Reward.event_id == event.id, Reward.item_id == item_id)).all()
            key = r.reward_id or ""
            same = next((p for p in prior if p.source == "client" and p.reward_key == key), None)
            if same is not None and same.value != r.reward:
                raise Refused(
                    409,
                    "reward_conflict",
                    f"reward {key or '(without reward_id)'} for item {item_id!r} was "
                    f"already received with the value {same.value:g}; send another reward_id for another reward",
                )
        except Refused as exc:
            result.refused.append((index, exc))
            continue
        if same is not None:
            result.duplicates += 1
            continue
        learn_value, late = on_arrival(rules, decision, any(p.learn_value is not None for p in prior), r.reward)
        s.add(
            Reward(
                event_id=event.id,
                item_id=item_id,
                user_id=event.user_id,
                reward_key=key,
                value=r.reward,
                learn_value=learn_value,
                late=late,
                excluded=event.user_id in excluded,
                received_at=now,
            )
        )
        s.flush()
        result.accepted += 1
        result.late += late
    return result
