"""Reviewer queues on the database: enqueue (idempotent), list, claim the next task atomically, release, decide
(with its audit entry and its effects, in one transaction), and per-queue counts and agreement.

Claims are conditional UPDATEs (`... WHERE id = :id AND <still claimable>`) whose row count says who won: on
PostgreSQL the loser's UPDATE waits for the winner's row lock and then finds the condition false; on SQLite
BEGIN IMMEDIATE serialises the writers. No reviewer ever holds a task another holds. An expired claim needs no
sweep: "claimable" includes a claim whose lease has passed, and listings show such a task as open.

Every function runs in the caller's transaction (`db.write_session()`), takes `now` (tests move it), and returns
plain values. Refusals are `ReviewError`s whose `code` the views turn into a status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.models import ExcludedUser, ReviewDecision, ReviewQueue, ReviewTask, Reward, User, utcnow
from app.services import audit
from feedback.review import (
    STATUSES,
    SUBJECT_TYPES,
    Agreement,
    Invalid,
    QueueRules,
    TaskIn,
    agreement,
    check_queue_name,
    effective_status,
    final_outcome,
    lease_live,
    lease_until,
    validate_decision,
)

PAGE = 50
MAX_PAGE = 500
AGREEMENT_TASKS = 2_000  # the most recent resolved tasks the agreement of a queue is computed over
CLAIM_ROUNDS = 5  # candidates lost to other reviewers are retried this many times before answering "none"
EXCLUDING_QUEUE = "anomalies"  # confirming a user here excludes them from learning


class ReviewError(Exception):
    """`code`: unknown_queue, not_found, invalid, not_holder."""

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


@dataclass(frozen=True)
class TaskView:
    id: int
    queue: str
    subject_type: str
    subject_id: str
    status: str  # open, claimed, resolved: an expired claim shows as open
    priority: int
    evidence: dict[str, Any]
    decision: str | None
    claimed_by: int | None  # while the claim is live
    lease_expires_at: datetime | None
    created_by: str
    created_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True)
class Decided:
    task: TaskView
    outcome: str  # what this reviewer decided
    resolved: bool
    excluded_user: str | None  # set when this decision excluded an end user from learning


@dataclass(frozen=True)
class DecisionView:
    user_id: int
    email: str
    decision: str
    label: str | None
    outcome: str
    note: str | None
    created_at: datetime


@dataclass(frozen=True)
class QueueStats:
    name: str
    description: str
    decisions_required: int
    lease_seconds: int
    labels: tuple[str, ...]
    open: int
    claimed: int
    resolved: int
    agreement: Agreement


def _view(t: ReviewTask, now: datetime) -> TaskView:
    live = lease_live(t.status, t.lease_expires_at, now)
    return TaskView(
        t.id,
        t.queue,
        t.subject_type,
        t.subject_id,
        effective_status(t.status, t.lease_expires_at, now),
        t.priority,
        t.evidence,
        t.decision,
        t.claimed_by if live else None,
        t.lease_expires_at if live else None,
        t.created_by,
        t.created_at,
        t.resolved_at,
    )


def _snapshot(t: ReviewTask) -> dict[str, Any]:
    """The task's state as the audit log records it before and after a change."""
    return {
        "status": t.status,
        "claimed_by": t.claimed_by,
        "lease_expires_at": t.lease_expires_at.isoformat() if t.lease_expires_at else None,
        "decision": t.decision,
    }


# ---------------------------------------------------------------------------------------------- queues


def queue_names(s: Session) -> list[str]:
    return list(s.exec(select(ReviewQueue.name).order_by(ReviewQueue.name)).all())


def queue_rules(s: Session, name: str) -> QueueRules:
    queue = s.get(ReviewQueue, name) if isinstance(name, str) else None
    if queue is None:
        known = ", ".join(queue_names(s))
        raise ReviewError("unknown_queue", f"no review queue {name!r} (queues: {known})", "queue")
    return QueueRules(queue.decisions_required, queue.lease_seconds, tuple(queue.labels or ()))


def configure_queue(
    s: Session,
    name: str,
    actor: str,
    *,
    description: str | None = None,
    decisions_required: int | None = None,
    lease_seconds: int | None = None,
    labels: tuple[str, ...] | None = None,
) -> ReviewQueue:
    """Create the queue, or change what is given (audited). Raises `Invalid` for settings the rules refuse."""
    queue = s.get(ReviewQueue, check_queue_name(name))
    before = _queue_settings(queue) if queue is not None else None
    queue = queue or ReviewQueue(name=name)
    rules = QueueRules(
        decisions_required if decisions_required is not None else queue.decisions_required,
        lease_seconds if lease_seconds is not None else queue.lease_seconds,
        labels if labels is not None else tuple(queue.labels or ()),
    )
    if description is not None and len(description) > 500:
        raise Invalid("description", "a description has at most 500 characters")
    queue.description = description if description is not None else queue.description
    queue.decisions_required, queue.lease_seconds, queue.labels = (
        rules.decisions_required,
        rules.lease_seconds,
        list(rules.labels) or None,
    )
    s.add(queue)
    s.flush()
    audit.record(s, actor, "configure_queue" if before else "create_queue", "queue", name, before, _queue_settings(queue))
    return queue


def _queue_settings(queue: ReviewQueue) -> dict[str, Any]:
    return {
        "description": queue.description,
        "decisions_required": queue.decisions_required,
        "lease_seconds": queue.lease_seconds,
        "labels": queue.labels,
    }


def _claimable(now: datetime):
    return or_(
        col(ReviewTask.status) == "open",
        and_(col(ReviewTask.status) == "claimed", col(ReviewTask.lease_expires_at) <= now),
    )


def _status_is(status: str, now: datetime):
    if status == "open":
        return _claimable(now)
    if status == "claimed":
        return and_(col(ReviewTask.status) == "claimed", col(ReviewTask.lease_expires_at) > now)
    return col(ReviewTask.status) == "resolved"


# ---------------------------------------------------------------------------------------------- tasks


def enqueue(s: Session, task: TaskIn, created_by: str, now: datetime | None = None) -> tuple[int, bool]:
    """(task id, created): the same subject with the same evidence in a queue is one task, whoever sends it
    twice and however they race."""
    now = now or utcnow()
    queue_rules(s, task.queue)
    same = (
        select(ReviewTask.id)
        .where(ReviewTask.queue == task.queue, ReviewTask.subject_type == task.subject_type)
        .where(ReviewTask.subject_id == task.subject_id, ReviewTask.evidence_key == task.evidence_key)
    )
    existing = s.exec(same).first()
    if existing is not None:
        return existing, False
    row = ReviewTask(
        queue=task.queue,
        subject_type=task.subject_type,
        subject_id=task.subject_id,
        evidence=task.evidence,
        evidence_key=task.evidence_key,
        priority=task.priority,
        created_by=created_by,
        created_at=now,
    )
    try:
        with s.begin_nested():  # a concurrent enqueue of the same task wins the unique constraint: take its id
            s.add(row)
            s.flush()
    except IntegrityError:
        return s.exec(same).one(), False
    audit.record(
        s,
        created_by,
        "enqueue",
        "task",
        row.id,
        None,
        {"queue": task.queue, "subject_type": task.subject_type, "subject_id": task.subject_id, "priority": task.priority},
        now,
    )
    return row.id, True


def list_tasks(
    s: Session,
    *,
    queue: str | None = None,
    status: str | None = None,
    subject_type: str | None = None,
    after: int | None = None,
    limit: int = PAGE,
    reviewer: int | None = None,
    now: datetime | None = None,
) -> tuple[list[TaskView], int | None]:
    """(tasks in id order, the cursor of the next page or None). Filters are checked against fixed values;
    `reviewer` keeps the tasks that reviewer holds or has decided (what a reviewer may see)."""
    now = now or utcnow()
    query = select(ReviewTask).order_by(col(ReviewTask.id)).limit(min(max(limit, 1), MAX_PAGE) + 1)
    if reviewer is not None:
        holds = and_(col(ReviewTask.claimed_by) == reviewer, _status_is("claimed", now))
        decided = exists().where(col(ReviewDecision.task_id) == col(ReviewTask.id), col(ReviewDecision.user_id) == reviewer)
        query = query.where(or_(holds, decided))
    if queue is not None:
        queue_rules(s, queue)
        query = query.where(ReviewTask.queue == queue)
    if status is not None:
        if status not in STATUSES:
            raise ReviewError("invalid", f"status must be one of {', '.join(STATUSES)}", "status")
        query = query.where(_status_is(status, now))
    if subject_type is not None:
        if subject_type not in SUBJECT_TYPES:
            raise ReviewError("invalid", f"subject_type must be one of {', '.join(SUBJECT_TYPES)}", "subject_type")
        query = query.where(ReviewTask.subject_type == subject_type)
    if after is not None:
        query = query.where(col(ReviewTask.id) > after)
    rows = list(s.exec(query).all())
    page = rows[: min(max(limit, 1), MAX_PAGE)]
    return [_view(t, now) for t in page], (page[-1].id if len(rows) > len(page) else None)


def get_task(s: Session, task_id: int, now: datetime | None = None) -> TaskView | None:
    task = s.get(ReviewTask, task_id)
    return None if task is None else _view(task, now or utcnow())


def held_task(s: Session, queue: str, user_id: int, now: datetime | None = None) -> TaskView | None:
    """The task `user_id` holds in `queue` with a live claim, if any."""
    now = now or utcnow()
    task = s.exec(
        select(ReviewTask)
        .where(ReviewTask.queue == queue, ReviewTask.status == "claimed", ReviewTask.claimed_by == user_id)
        .where(col(ReviewTask.lease_expires_at) > now)
        .order_by(col(ReviewTask.id))
    ).first()
    return None if task is None else _view(task, now)


def claim_next(s: Session, queue: str, user_id: int, now: datetime | None = None) -> TaskView | None:
    """The task the reviewer holds in `queue`, else a fresh claim on the highest-priority claimable task they have
    not decided (oldest first among equals); None when there is none."""
    now = now or utcnow()
    rules = queue_rules(s, queue)
    held = held_task(s, queue, user_id, now)
    if held is not None:
        return held
    decided = exists().where(col(ReviewDecision.task_id) == col(ReviewTask.id), col(ReviewDecision.user_id) == user_id)
    candidates = (
        select(ReviewTask.id)
        .where(ReviewTask.queue == queue, _claimable(now), ~decided)
        .order_by(col(ReviewTask.priority).desc(), col(ReviewTask.id))
        .limit(10)
    )
    until = lease_until(now, rules)
    for _ in range(CLAIM_ROUNDS):
        ids = list(s.exec(candidates).all())
        if not ids:
            return None
        for task_id in ids:
            won = s.execute(
                update(ReviewTask)
                .where(col(ReviewTask.id) == task_id, _claimable(now))
                .values(status="claimed", claimed_by=user_id, lease_expires_at=until)
            ).rowcount
            if won == 1:
                audit.record(s, f"user:{user_id}", "claim", "task", task_id, None, {"lease_expires_at": until.isoformat()}, now)
                task = s.get(ReviewTask, task_id)
                s.refresh(task)
                return _view(task, now)
    return None


def release(s: Session, task_id: int, user_id: int, now: datetime | None = None) -> None:
    """Give a held task back to the queue before its lease ends."""
    now = now or utcnow()
    released = s.execute(
        update(ReviewTask)
        .where(col(ReviewTask.id) == task_id, ReviewTask.status == "claimed", ReviewTask.claimed_by == user_id)
        .where(col(ReviewTask.lease_expires_at) > now)
        .values(status="open", claimed_by=None, lease_expires_at=None)
    ).rowcount
    if released != 1:
        raise ReviewError("not_holder", "you do not hold this task (or your claim expired)")
    audit.record(
        s, f"user:{user_id}", "release", "task", task_id, {"status": "claimed", "claimed_by": user_id}, {"status": "open"}, now
    )


def decide(
    s: Session,
    task_id: int,
    user_id: int,
    decision: Any,
    label: Any = None,
    note: Any = None,
    now: datetime | None = None,
) -> Decided:
    """Record the decision of the reviewer holding the task's live claim (nobody else, admins included); resolve
    the task once the queue's required decisions are in, or return it to the queue for the next reviewer. The
    decision, the task's new state, the audit entry and the decision's effects commit together."""
    now = now or utcnow()
    task = s.get(ReviewTask, task_id)
    if task is None:
        raise ReviewError("not_found", f"no review task {task_id}")
    if task.claimed_by != user_id or not lease_live(task.status, task.lease_expires_at, now):
        raise ReviewError("not_holder", "only the reviewer holding this task's claim may decide it; claim it first")
    rules = queue_rules(s, task.queue)
    try:
        vote = validate_decision(rules, decision, label, note)
    except Invalid as exc:
        raise ReviewError("invalid", exc.message, exc.field) from None
    before = _snapshot(task)
    prior = [d.label if d.decision == "label" else d.decision for d in _decisions(s, task_id)]
    outcome = final_outcome([*prior, vote.outcome], rules)
    state = (
        dict(status="resolved", decision=outcome, resolved_at=now)
        if outcome is not None
        else dict(status="open", decision=None, resolved_at=None)
    )
    changed = s.execute(
        update(ReviewTask)
        .where(col(ReviewTask.id) == task_id, ReviewTask.status == "claimed", ReviewTask.claimed_by == user_id)
        .where(col(ReviewTask.lease_expires_at) > now)
        .values(claimed_by=None, lease_expires_at=None, **state)
    ).rowcount
    if changed != 1:  # another request of this reviewer decided it a moment ago
        raise ReviewError("not_holder", "this claim was used or released in the meantime")
    s.add(
        ReviewDecision(task_id=task_id, user_id=user_id, decision=vote.decision, label=vote.label, note=vote.note, created_at=now)
    )
    s.flush()
    s.refresh(task)
    audit.record(
        s,
        f"user:{user_id}",
        "decide",
        "task",
        task_id,
        {**before, "decisions": len(prior)},
        {**_snapshot(task), "decisions": len(prior) + 1, "vote": vote.outcome, "note": vote.note},
        now,
    )
    excluded = None
    if outcome == "confirm" and task.queue == EXCLUDING_QUEUE and task.subject_type == "user":
        excluded = exclude_user(s, task.subject_id, task_id, f"user:{user_id}", now)
    return Decided(_view(task, now), vote.outcome, outcome is not None, excluded)


def exclude_user(s: Session, end_user: str, task_id: int | None, actor: str, now: datetime | None = None) -> str:
    """Exclude an end user from learning from now on, and mark their stored rewards for the retraining. The
    learner skips (and marks) the rewards of excluded users it has not learned yet."""
    now = now or utcnow()
    if s.get(ExcludedUser, end_user) is None:
        try:
            with s.begin_nested():  # two tasks about one user, confirmed at once: the first one records it
                s.add(
                    ExcludedUser(user_id=end_user, task_id=task_id, reason=f"confirmed in review task {task_id}", excluded_at=now)
                )
                s.flush()
        except IntegrityError:
            pass
    marked = s.execute(
        update(Reward).where(col(Reward.user_id) == end_user, col(Reward.excluded).is_(False)).values(excluded=True)
    ).rowcount
    audit.record(s, actor, "exclude_user", "user", end_user, None, {"task_id": task_id, "rewards_marked": marked}, now)
    return end_user


def _decisions(s: Session, task_id: int) -> list[ReviewDecision]:
    return list(s.exec(select(ReviewDecision).where(ReviewDecision.task_id == task_id).order_by(col(ReviewDecision.id))).all())


def decisions(s: Session, task_id: int, user_id: int | None = None) -> list[DecisionView]:
    """A task's decisions in the order they were made (only `user_id`'s when given)."""
    query = (
        select(ReviewDecision, User.email)
        .join(User, col(User.id) == col(ReviewDecision.user_id))
        .where(ReviewDecision.task_id == task_id)
        .order_by(col(ReviewDecision.id))
    )
    if user_id is not None:
        query = query.where(ReviewDecision.user_id == user_id)
    return [
        DecisionView(
            d.user_id, email, d.decision, d.label, d.label if d.decision == "label" else d.decision, d.note, d.created_at
        )
        for d, email in s.exec(query).all()
    ]


def has_decided(s: Session, task_id: int, user_id: int) -> bool:
    return (
        s.exec(select(ReviewDecision.id).where(ReviewDecision.task_id == task_id, ReviewDecision.user_id == user_id)).first()
        is not None
    )


# ---------------------------------------------------------------------------------------------- statistics


def queue_stats(s: Session, now: datetime | None = None) -> list[QueueStats]:
    """Every queue with its tasks open (expired claims included), claimed and resolved, and its agreement."""
    now = now or utcnow()
    status = case(
        (col(ReviewTask.status) == "resolved", "resolved"),
        (and_(col(ReviewTask.status) == "claimed", col(ReviewTask.lease_expires_at) > now), "claimed"),
        else_="open",
    )
    counts: dict[tuple[str, str], int] = {
        (q, st): n for q, st, n in s.exec(select(ReviewTask.queue, status, func.count()).group_by(ReviewTask.queue, status)).all()
    }
    out = []
    for q in s.exec(select(ReviewQueue).order_by(ReviewQueue.name)).all():
        out.append(
            QueueStats(
                q.name,
                q.description,
                q.decisions_required,
                q.lease_seconds,
                tuple(q.labels or ()),
                counts.get((q.name, "open"), 0),
                counts.get((q.name, "claimed"), 0),
                counts.get((q.name, "resolved"), 0),
                queue_agreement(s, q.name, q.decisions_required),
            )
        )
    return out


def queue_agreement(s: Session, queue: str, raters: int) -> Agreement:
    """Agreement over the queue's most recent resolved tasks (Cohen's kappa for two decisions a task, Fleiss'
    for more)."""
    if raters < 2:
        return agreement([], raters)
    recent = (
        select(ReviewTask.id)
        .where(ReviewTask.queue == queue, ReviewTask.status == "resolved")
        .order_by(col(ReviewTask.id).desc())
        .limit(AGREEMENT_TASKS)
        .subquery()
    )
    by_task: dict[int, list[str]] = {}
    rows = s.exec(
        select(ReviewDecision.task_id, ReviewDecision.decision, ReviewDecision.label)
        .where(col(ReviewDecision.task_id).in_(select(recent.c.id)))
        .order_by(col(ReviewDecision.id))
    ).all()
    for task_id, decision, label in rows:
        by_task.setdefault(task_id, []).append(label if decision == "label" else decision)
    return agreement(list(by_task.values()), raters)
