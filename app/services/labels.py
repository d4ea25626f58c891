"""Training labels in one stream: the outcomes of resolved review tasks and the poll answers that became a reward
(an answer about a recommendation event) or a relevance label (an answer about an item).

One JSON object per line (`feedloop labels export FILE`), review labels first, each kind in the order it was
made:

    {"source": "review", "task_id": 7, "queue": "labeling", "subject_type": "item", "subject_id": "i1",
     "label": "relevant", "decisions": [{"reviewer": "user:2", "outcome": "relevant", "at": "..."}, ...],
     "evidence": {...}, "resolved_at": "..."}
    {"source": "poll", "response_id": 31, "poll_id": 4, "kind": "thumbs", "label_type": "reward" | "relevance",
     "value": 1.0, "answer": "up", "event_id": "9f…" | null, "item_id": "i1", "user_id": "alice" | null,
     "respondent_id": "alice", "uncertain": false, "excluded": false, "at": "..."}

`label` is the task's final decision (confirm, dismiss or a label value); `value` the reward or relevance the
answer became (the poll's mapping). `excluded` marks answers about recommendations to a user confirmed as
fraudulent: exported for the record, to be left out of training."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.models import Event, ExcludedUser, Poll, PollResponse, ReviewDecision, ReviewTask

BATCH = 1_000


def labels(engine: Engine) -> Iterator[dict[str, Any]]:
    yield from review_labels(engine)
    yield from poll_labels(engine)


def _at(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def review_labels(engine: Engine) -> Iterator[dict[str, Any]]:
    after = 0
    while True:
        with Session(engine) as s:
            tasks = s.exec(
                select(ReviewTask)
                .where(ReviewTask.status == "resolved", col(ReviewTask.id) > after)
                .order_by(col(ReviewTask.id))
                .limit(BATCH)
            ).all()
            if not tasks:
                return
            votes: dict[int, list[dict[str, Any]]] = {}
            for d in s.exec(
                select(ReviewDecision)
                .where(col(ReviewDecision.task_id).in_([t.id for t in tasks]))
                .order_by(col(ReviewDecision.id))
            ).all():
                votes.setdefault(d.task_id, []).append(
                    {
                        "reviewer": f"user:{d.user_id}",
                        "outcome": d.label if d.decision == "label" else d.decision,
                        "at": _at(d.created_at),
                    }
                )
        for t in tasks:
            yield {
                "source": "review",
                "task_id": t.id,
                "queue": t.queue,
                "subject_type": t.subject_type,
                "subject_id": t.subject_id,
                "label": t.decision,
                "decisions": votes.get(t.id, []),
                "evidence": t.evidence,
                "resolved_at": _at(t.resolved_at),
            }
        after = tasks[-1].id


def poll_labels(engine: Engine) -> Iterator[dict[str, Any]]:
    after = 0
    while True:
        with Session(engine) as s:
            rows = s.exec(
                select(PollResponse, Poll.kind, Event.user_id, col(ExcludedUser.user_id).is_not(None))
                .join(Poll, col(Poll.id) == col(PollResponse.poll_id))
                .outerjoin(Event, col(Event.id) == col(PollResponse.event_id))
                .outerjoin(ExcludedUser, col(ExcludedUser.user_id) == col(Event.user_id))
                .where(col(PollResponse.reward_value).is_not(None), col(PollResponse.id) > after)
                .order_by(col(PollResponse.id))
                .limit(BATCH)
            ).all()
        if not rows:
            return
        for r, kind, user_id, excluded in rows:
            yield {
                "source": "poll",
                "response_id": r.id,
                "poll_id": r.poll_id,
                "kind": kind,
                "label_type": "reward" if r.event_id else "relevance",
                "value": r.reward_value,
                "answer": r.answer,
                "event_id": r.event_id,
                "item_id": r.item_id,
                "user_id": user_id,
                "respondent_id": r.respondent_id,
                "uncertain": r.uncertain,
                "excluded": bool(excluded),
                "at": _at(r.created_at),
            }
        after = rows[-1][0].id
