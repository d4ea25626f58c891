"""An event's lineage: the model that served it (and the release it belonged to), the poll answers and review
decisions about it, the model versions that learned its rewards, and the retrain runs that trained or judged on
it; so a reviewer or an auditor can follow a decision from the request to the retraining.

What a version learned is recorded as a range of reward ids: version V learned the learnable rewards with id in
(V.learned_from_reward_id, V.last_reward_id] on top of V.parent_version, which learned its own range on top of
its parent, and so on. Retrain runs record their training window the same way in their model card. The rules
are the pure functions below; the queries around them are bounded (a decision has a few rewards, a version
chain or a list of tasks is cut at LIMIT)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select

from app.models import Event, ModelCard, ModelVersion, Poll, PollResponse, ReviewDecision, ReviewTask, Reward, User
from app.services import releases

LIMIT = 50  # versions, cards, tasks and poll answers listed at most


# ------------------------------------------------------------------------------------------------ the rules


def learnable(r: Reward) -> bool:
    """The reward a model learns for its slot: the learner's pick, not excluded (fraud), not set aside (failed)."""
    return r.learn_value is not None and not r.excluded and r.learn_error is None


def in_range(reward_id: int, after: int, upto: int) -> bool:
    return after < reward_id <= upto


@dataclass(frozen=True)
class VersionRange:
    version: str
    parent: str | None
    after: int  # learned_from_reward_id
    upto: int  # last_reward_id


def learned(version: str, reward_id: int, ranges: Mapping[str, VersionRange]) -> str | None:
    """The version in `version`'s chain (itself or an ancestor) that learned the reward itself, or None. An
    ancestor counts up to its own last reward: what its line learned after it was kept is not inherited."""
    seen: set[str] = set()
    current = ranges.get(version)
    while current is not None and current.version not in seen and len(seen) < LIMIT:
        if in_range(reward_id, current.after, current.upto):
            return current.version
        seen.add(current.version)
        current = ranges.get(current.parent) if current.parent else None
    return None


def card_covers(data: Mapping[str, Any], reward_ids: Iterable[int]) -> list[int]:
    """The reward ids inside a model card's training window (data["train"]: from_reward_id, to_reward_id)."""
    train = data.get("train") or {}
    after, upto = train.get("from_reward_id"), train.get("to_reward_id")
    if not isinstance(after, int) or not isinstance(upto, int):
        return []  # a dataset's card, or a run that stopped before choosing its window
    return [r for r in reward_ids if in_range(r, after, upto)]


def card_holds_out(data: Mapping[str, Any], when: datetime) -> bool:
    """Whether the decision made at `when` is in the card's held-out window (judged on, not trained on)."""
    holdout = data.get("holdout") or {}
    try:
        return datetime.fromisoformat(holdout["from"]) <= when < datetime.fromisoformat(holdout["to"])
    except (KeyError, TypeError, ValueError):  # missing, not a time, or a time without its zone
        return False


# ------------------------------------------------------------------------------------------------ the record


@dataclass(frozen=True)
class ServedBy:
    model_version: str
    kept: bool  # a kept version: the models page shows it
    release: str | None  # releases.label of the release serving then
    release_version: str | None
    release_started_at: datetime | None


@dataclass(frozen=True)
class Decided:
    reviewer_id: int
    reviewer: str
    decision: str
    label: str | None
    note: str | None
    created_at: datetime


@dataclass(frozen=True)
class Reviewed:
    task_id: int
    queue: str
    subject_type: str
    subject_id: str
    status: str
    outcome: str | None
    created_at: datetime
    resolved_at: datetime | None
    decisions: list[Decided] = field(default_factory=list)


@dataclass(frozen=True)
class Answer:
    id: int
    poll_id: int
    question: str
    respondent_id: str
    item_id: str | None
    answer: Any
    reward: float | None
    created_at: datetime


@dataclass(frozen=True)
class LearnedBy:
    version: str
    source: str
    created_at: datetime
    reward_ids: list[int]
    inherited_from: str | None  # None: it learned them itself; else the ancestor that did


@dataclass(frozen=True)
class Retrained:
    card_id: int
    candidate_version: str | None
    status: str
    created_at: datetime
    reward_ids: list[int]  # trained on; empty for a run that judged on the decision (its held-out window)


@dataclass(frozen=True)
class Lineage:
    served_by: ServedBy
    poll_answers: list[Answer]
    review_decisions: list[Reviewed]
    learned_by: list[LearnedBy]
    retrained_in: list[Retrained]
    evaluated_in: list[Retrained]


def lineage(s: Session, event: Event, rewards: list[Reward], reviewer: int | None = None) -> Lineage:
    """`reviewer`: show only that reviewer's own decisions on tasks not yet resolved (reviewers decide
    independently until a task is resolved); None shows every decision."""
    learnable_ids = sorted(r.id for r in rewards if learnable(r))
    cards = _cards(s, event)
    return Lineage(
        served_by=_served_by(s, event),
        poll_answers=_poll_answers(s, event.id),
        review_decisions=_reviews(s, event, reviewer),
        learned_by=_learned_by(s, learnable_ids),
        retrained_in=[
            Retrained(c.id, c.candidate_version, c.status, c.created_at, covered)
            for c in cards
            if (covered := card_covers(c.data, learnable_ids))
        ],
        evaluated_in=[
            Retrained(c.id, c.candidate_version, c.status, c.created_at, [])
            for c in cards
            if card_holds_out(c.data, event.created_at)
        ],
    )


def _served_by(s: Session, event: Event) -> ServedBy:
    found = releases.spans(s, event.created_at, event.created_at + timedelta(microseconds=1))
    span = releases.release_at(found, event.created_at)
    kept = s.exec(select(ModelVersion.version).where(ModelVersion.version == event.model_version)).first() is not None
    if span is None:
        return ServedBy(event.model_version, kept, None, None, None)
    return ServedBy(event.model_version, kept, releases.label(span), span.version, span.start)


def _poll_answers(s: Session, event_id: str) -> list[Answer]:
    rows = s.exec(
        select(PollResponse, Poll.question)
        .join(Poll, col(Poll.id) == col(PollResponse.poll_id))
        .where(PollResponse.event_id == event_id)
        .order_by(col(PollResponse.id))
        .limit(LIMIT)
    ).all()
    return [Answer(r.id, r.poll_id, q, r.respondent_id, r.item_id, r.answer, r.reward_value, r.created_at) for r, q in rows]


def _reviews(s: Session, event: Event, reviewer: int | None) -> list[Reviewed]:
    """Tasks about the event itself and about its user (a confirmed fraud excludes the user's rewards from
    learning, this event's among them)."""
    tasks = s.exec(
        select(ReviewTask)
        .where(
            or_(
                (col(ReviewTask.subject_type) == "event") & (col(ReviewTask.subject_id) == event.id),
                (col(ReviewTask.subject_type) == "user") & (col(ReviewTask.subject_id) == event.user_id),
            )
        )
        .order_by(col(ReviewTask.id))
        .limit(LIMIT)
    ).all()
    decided: dict[int, list[Decided]] = {t.id: [] for t in tasks}
    resolved = {t.id for t in tasks if t.status == "resolved"}
    if tasks:
        rows = s.exec(
            select(ReviewDecision, User.email)
            .join(User, col(User.id) == col(ReviewDecision.user_id))
            .where(col(ReviewDecision.task_id).in_(list(decided)))
            .order_by(col(ReviewDecision.id))
        ).all()
        for d, email in rows:
            if reviewer is None or d.task_id in resolved or d.user_id == reviewer:
                decided[d.task_id].append(Decided(d.user_id, email, d.decision, d.label, d.note, d.created_at))
    return [
        Reviewed(t.id, t.queue, t.subject_type, t.subject_id, t.status, t.decision, t.created_at, t.resolved_at, decided[t.id])
        for t in tasks
    ]


COLUMNS = (
    ModelVersion.version,
    ModelVersion.parent_version,
    ModelVersion.learned_from_reward_id,
    ModelVersion.last_reward_id,
    ModelVersion.source,
    ModelVersion.created_at,
)


def _learned_by(s: Session, reward_ids: list[int]) -> list[LearnedBy]:
    """The versions whose range holds one of the rewards, then, a generation at a time, the versions kept on top
    of them (which carry what their ancestors learned), LIMIT in all."""
    if not reward_ids:
        return []
    rows = list(
        s.exec(
            select(*COLUMNS)
            .where(
                col(ModelVersion.learned_from_reward_id) < max(reward_ids), col(ModelVersion.last_reward_id) >= min(reward_ids)
            )
            .order_by(col(ModelVersion.created_at), col(ModelVersion.version))
            .limit(LIMIT)
        ).all()
    )
    frontier = {row.version for row in rows}
    while frontier and len(rows) < LIMIT:
        children = s.exec(
            select(*COLUMNS)
            .where(col(ModelVersion.parent_version).in_(sorted(frontier)))
            .order_by(col(ModelVersion.created_at), col(ModelVersion.version))
            .limit(LIMIT - len(rows))
        ).all()
        known = {row.version for row in rows}
        children = [c for c in children if c.version not in known]
        rows += children
        frontier = {c.version for c in children}
    ranges = {r.version: VersionRange(r.version, r.parent_version, r.learned_from_reward_id, r.last_reward_id) for r in rows}
    out = []
    for row in rows:
        by = {r: learned(row.version, r, ranges) for r in reward_ids}
        ids = [r for r, v in by.items() if v is not None]
        if ids:
            direct = any(by[r] == row.version for r in ids)
            out.append(LearnedBy(row.version, row.source, row.created_at, ids, None if direct else by[ids[0]]))
    return sorted(out, key=lambda v: (v.created_at, v.version))


def _cards(s: Session, event: Event) -> list[ModelCard]:
    """The retrain runs since the decision (none before it could have trained or judged on it), oldest first."""
    return list(
        s.exec(
            select(ModelCard).where(col(ModelCard.created_at) >= event.created_at).order_by(col(ModelCard.id)).limit(LIMIT)
        ).all()
    )
