"""Interaction events: stored as they come, counted into per-minute buckets per user and per item in the same
transaction, and turned into rewards when they answer a recommendation.

The aggregates are read through feedback.windows at a given `now`, so a live request and a retraining that asks
about the past call the same code. `activity_from_log` recomputes them from the interactions received by `now`
(what a retraining needs to see exactly what serving saw); `activity` reads the buckets (what serving uses)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from app.models import ActivityMinute, Interaction, Item, utcnow
from app.services.rewards import RewardIn, Stored, store_rewards
from app.settings import Settings
from feedback.rewards import RewardRules
from feedback.windows import LONGEST, Activity, Bucket, activity, admissible, bucketize, parse_reward_map, window_minutes

EVENT_REWARD_PREFIX = "event:"  # reward keys of rewards derived from events; the rewards API refuses them from apps
SUBJECTS = ("user", "item")


@dataclass(frozen=True)
class EventRules:
    lateness: timedelta
    future: timedelta
    rewards: dict[str, float]


def event_rules(settings: Settings) -> EventRules:
    return EventRules(
        lateness=timedelta(seconds=settings.event_lateness_seconds),
        future=timedelta(seconds=settings.event_future_seconds),
        rewards=parse_reward_map(settings.event_rewards),
    )


@dataclass(frozen=True)
class InteractionIn:
    type: str
    user_id: str
    item_id: str | None = None
    event_id: str | None = None
    ts: datetime | None = None
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RowError:
    index: int
    field: str
    message: str


@dataclass
class StoredInteractions:
    accepted: int = 0
    errors: list[RowError] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    rewards: Stored = field(default_factory=Stored)  # the rewards derived from the accepted events


def store_interactions(
    s: Session, rules: EventRules, reward_rules: RewardRules, rows: list[InteractionIn], now: datetime | None = None
) -> StoredInteractions:
    """Store the admissible rows in the caller's transaction, with their buckets and derived rewards; the others
    come back as errors by their index in `rows`."""
    now = now or utcnow()
    result, kept = StoredInteractions(), []
    for index, row in enumerate(rows):
        why = admissible(row.ts, now, rules.lateness, rules.future) if row.ts is not None else None
        if why is not None:
            result.errors.append(RowError(index, "ts", why))
        else:
            kept.append(row)
    if not kept:
        return result
    categories = _categories(s, {r.item_id for r in kept if r.item_id})
    stored = [
        Interaction(
            type=r.type,
            user_id=r.user_id,
            item_id=r.item_id,
            event_id=r.event_id,
            category=categories.get(r.item_id) if r.item_id else None,
            ts=r.ts or now,
            properties=r.properties,
            received_at=now,
        )
        for r in kept
    ]
    s.add_all(stored)
    s.flush()
    _count(s, stored)
    result.accepted, result.ids = len(stored), [i.id for i in stored]
    derived = derive_rewards(stored, rules.rewards)
    if derived:
        result.rewards = store_rewards(s, reward_rules, derived)
    return result


def _categories(s: Session, item_ids: set[str]) -> dict[str, str]:
    if not item_ids:
        return {}
    rows = s.exec(select(Item.id, Item.category).where(col(Item.id).in_(item_ids), col(Item.category).is_not(None)))
    return dict(rows.all())


def _count(s: Session, stored: list[Interaction]) -> None:
    """Add the events to their minute buckets: users by category too (their recent categories), items in total."""
    per_subject: dict[tuple[str, str], list] = defaultdict(list)
    for i in stored:
        per_subject[("user", i.user_id)].append((i.ts, i.type, i.category))
        if i.item_id:
            per_subject[("item", i.item_id)].append((i.ts, i.type, None))
    rows = [
        {
            "subject_type": kind,
            "subject_id": subject,
            "minute": b.minute,
            "event_type": b.event_type,
            "category": b.category,
            "count": b.count,
        }
        for (kind, subject), events in per_subject.items()
        for b in bucketize(events)
    ]
    # One order for every writer, so two batches touching the same buckets on PostgreSQL cannot deadlock.
    rows.sort(key=lambda r: (r["subject_type"], r["subject_id"], r["minute"], r["event_type"], r["category"]))
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[s.get_bind().dialect.name]
    table = ActivityMinute.__table__
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[c.name for c in table.primary_key], set_={"count": table.c.count + stmt.excluded["count"]}
    )
    for start in range(0, len(rows), 1000):
        s.execute(stmt, rows[start : start + 1000])


def rebuild_activity(s: Session, chunk: int = 5000) -> int:
    """Recount every bucket from the interactions (the buckets are derived state); returns the events counted."""
    s.exec(delete(ActivityMinute))
    counted, last = 0, 0
    while rows := s.exec(select(Interaction).where(col(Interaction.id) > last).order_by(Interaction.id).limit(chunk)).all():
        _count(s, list(rows))
        counted, last = counted + len(rows), rows[-1].id
    return counted


def prune_activity(s: Session, now: datetime | None = None) -> int:
    """Delete the buckets no window reads any more (older than the longest window): the interactions keep the
    record, and `rebuild_activity` recounts from them."""
    first, _ = window_minutes(now or utcnow(), LONGEST)
    return s.exec(delete(ActivityMinute).where(col(ActivityMinute.minute) < first)).rowcount


def derive_rewards(stored: list[Interaction], mapping: dict[str, float]) -> list[RewardIn]:
    """One reward per recommended item that mapped events of this batch name: the largest mapped value, keyed by
    the interaction that carried it. Across batches the reward aggregation rules decide what is learned."""
    best: dict[tuple[str, str | None], Interaction] = {}
    for i in stored:
        if i.event_id is None or i.type not in mapping:
            continue
        key = (i.event_id, i.item_id)
        if key not in best or mapping[i.type] > mapping[best[key].type]:
            best[key] = i
    return [
        RewardIn(event_id=i.event_id, reward=mapping[i.type], item_id=i.item_id, reward_id=f"{EVENT_REWARD_PREFIX}{i.id}")
        for i in best.values()
    ]


def buckets(s: Session, subject_type: str, subject_id: str, now: datetime) -> list[Bucket]:
    first, last = window_minutes(now, LONGEST)
    rows = s.exec(
        select(ActivityMinute).where(
            ActivityMinute.subject_type == subject_type,
            ActivityMinute.subject_id == subject_id,
            col(ActivityMinute.minute) >= first,
            col(ActivityMinute.minute) <= last,
        )
    ).all()
    return [Bucket(r.minute, r.event_type, r.count, r.category) for r in rows]


def activity_at(s: Session, subject_type: str, subject_id: str, now: datetime | None = None) -> Activity:
    """The windowed aggregates of a user or an item at `now`, from the buckets (everything received so far)."""
    now = now or utcnow()
    return activity(buckets(s, subject_type, subject_id, now), now)


def activity_from_log(s: Session, subject_type: str, subject_id: str, now: datetime) -> Activity:
    """The same aggregates from the interactions received by `now`: what serving could see then, late events
    that arrived afterwards left out."""
    first, last = window_minutes(now, LONGEST)
    subject = Interaction.user_id if subject_type == "user" else Interaction.item_id
    rows = s.exec(
        select(Interaction.ts, Interaction.type, Interaction.category).where(
            subject == subject_id,
            col(Interaction.ts) >= first,
            col(Interaction.ts) < last + timedelta(minutes=1),
            col(Interaction.received_at) <= now,
        )
    ).all()
    events = [(ts, kind, category if subject_type == "user" else None) for ts, kind, category in rows]
    return activity(bucketize(events), now)
