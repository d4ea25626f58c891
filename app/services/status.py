"""How the loop is doing, from the database alone, so that any process can tell: the learner's liveness and
lag, settlements overdue, rewards set aside. /healthz and `feedloop status` show it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from app.models import Event, LearnerState, Reward, utcnow
from app.models.loop import DEFERRED_UNSETTLED
from app.settings import Settings


@dataclass(frozen=True)
class LearnerStatus:
    status: str  # ok, not_started, gone, stuck
    model_version: str | None
    last_reward_id: int
    heartbeat_age_seconds: float | None
    lag_seconds: float  # age of the oldest reward the learner has not learned yet (0 when none waits)
    oldest_unsettled_event_seconds: float  # since the oldest shown event (its activation, if deferred) not settled yet
    set_aside_rewards: int

    @property
    def healthy(self) -> bool:
        return self.status in ("ok", "not_started")


def learner_status(engine: Engine, settings: Settings, now: datetime | None = None) -> LearnerStatus:
    now = now or utcnow()
    with Session(engine) as s:
        state = s.get(LearnerState, 1)
        last = state.last_reward_id if state else 0
        oldest_unlearned = s.exec(
            select(func.min(Reward.received_at)).where(
                col(Reward.id) > last, col(Reward.learn_value).is_not(None), col(Reward.learn_error).is_(None)
            )
        ).one()
        # A deferred event's reward wait starts at its activation (feedback.rewards.due_at), not at its creation;
        # one never activated is never learned, so it is never overdue. Both reads walk a partial index.
        oldest_created = s.exec(
            select(Event.created_at)
            .where(col(Event.settled_at).is_(None), col(Event.deferred).is_(False))
            .order_by(col(Event.created_at))
            .limit(1)
        ).first()
        oldest_activated = s.exec(select(func.min(Event.activated_at)).where(DEFERRED_UNSETTLED)).one()
        set_aside = s.exec(select(func.count()).select_from(Reward).where(col(Reward.learn_error).is_not(None))).one()
    lag = _age(now, oldest_unlearned)
    unsettled = max(_age(now, oldest_created), _age(now, oldest_activated))
    limit = settings.learner_stale_seconds
    beat = _age(now, state.heartbeat_at) if state else None
    overdue = max(lag, unsettled - settings.reward_wait_seconds)
    if state is None:
        status = "stuck" if overdue > limit else "not_started"
    elif beat > limit:
        status = "gone"
    else:
        status = "stuck" if overdue > limit else "ok"
    return LearnerStatus(status, state.model_version if state else None, last, beat, lag, unsettled, set_aside)


def _age(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    return max(0.0, (now - then).total_seconds())
