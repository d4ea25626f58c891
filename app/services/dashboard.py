"""What the home page and the navigation show: the catalogue's size, the serving model and learner, the
last day's recommendations and rewards per hour, open review tasks per queue and the polls running now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, or_
from sqlmodel import Session, col, select

from app.models import Event, Item, Poll, PollResponse, ReviewQueue, ReviewTask, Reward, utcnow
from app.services.status import LearnerStatus, learner_status
from app.settings import Settings


@dataclass(frozen=True)
class ActivePoll:
    id: int
    question: str
    kind: str
    responses: int


@dataclass(frozen=True)
class Home:
    items: int
    learner: LearnerStatus
    behind_seconds: float  # the learner's lag, or how overdue its oldest settlement is, whichever is larger
    queues: dict[str, int]
    polls: list[ActivePoll]


@dataclass(frozen=True)
class Activity:
    hours: list[datetime]  # the start of each of the last 24 hours, oldest first
    recommendations: list[int]
    rewards: list[int]


def home(engine: Engine, settings: Settings, now: datetime | None = None) -> Home:
    now = now or utcnow()
    with Session(engine) as s:
        items = s.exec(select(func.count()).select_from(Item).where(col(Item.deleted_at).is_(None))).one()
        queues = open_tasks(s)
        polls = active_polls(s, now)
    learner = learner_status(engine, settings, now)
    overdue = learner.oldest_unsettled_event_seconds - settings.reward_wait_seconds
    return Home(items, learner, max(learner.lag_seconds, overdue, 0.0), queues, polls)


def open_tasks(s: Session) -> dict[str, int]:
    """Tasks not yet resolved, per queue, every queue listed (the navigation shows them)."""
    counts = dict(
        s.exec(
            select(ReviewTask.queue, func.count()).where(col(ReviewTask.status) != "resolved").group_by(ReviewTask.queue)
        ).all()
    )
    return {name: counts.get(name, 0) for name in s.exec(select(ReviewQueue.name).order_by(ReviewQueue.name)).all()}


def active_polls(s: Session, now: datetime) -> list[ActivePoll]:
    answered = select(PollResponse.poll_id, func.count().label("n")).group_by(PollResponse.poll_id).subquery()
    rows = s.exec(
        select(Poll.id, Poll.question, Poll.kind, func.coalesce(answered.c.n, 0))
        .outerjoin(answered, answered.c.poll_id == Poll.id)
        .where(
            col(Poll.closed_at).is_(None),
            or_(col(Poll.starts_at).is_(None), col(Poll.starts_at) <= now),
            or_(col(Poll.ends_at).is_(None), col(Poll.ends_at) > now),
        )
        .order_by(col(Poll.id).desc())
    ).all()
    return [ActivePoll(*row) for row in rows]


def activity(engine: Engine, now: datetime | None = None) -> Activity:
    """Recommendations and client rewards per hour over the last 24 hours (counted in the database)."""
    end = (now or utcnow()).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    hours = [end - timedelta(hours=24 - i) for i in range(24)]
    with Session(engine) as s:
        recs = _per_hour(s, Event.created_at, hours[0], [])
        rewards = _per_hour(s, Reward.received_at, hours[0], [col(Reward.source) == "client"])
    return Activity(hours, [recs.get(h, 0) for h in hours], [rewards.get(h, 0) for h in hours])


def _per_hour(s: Session, column, since: datetime, where: list) -> dict[datetime, int]:
    if s.get_bind().dialect.name == "sqlite":
        bucket = func.strftime("%Y-%m-%d %H:00:00", column)
    else:
        bucket = func.date_trunc("hour", func.timezone("UTC", column))
    rows = s.exec(select(bucket, func.count()).where(column >= since, *where).group_by(bucket)).all()
    return {_hour(b, since): n for b, n in rows}


def _hour(bucket, since: datetime) -> datetime:
    if isinstance(bucket, str):
        bucket = datetime.fromisoformat(bucket)
    return bucket.replace(tzinfo=since.tzinfo)
