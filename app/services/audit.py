"""The audit log: who did what, when, with the state before and after. Entries are only ever appended (the
database refuses UPDATE and DELETE on the table), in the same transaction as the change they describe, so an
entry exists exactly when its change does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from app.models import AuditEntry, User, utcnow

PAGE = 50


def record(
    s: Session,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str | int,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        at=now or utcnow(),
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        before=before,
        after=after,
    )
    s.add(entry)
    s.flush()
    return entry


@dataclass(frozen=True)
class Entry:
    id: int
    at: datetime
    actor: str
    actor_name: str  # the account's email for "user:<id>", else the actor as recorded
    action: str
    subject_type: str
    subject_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True)
class AuditPage:
    entries: list[Entry]
    older: int | None  # pass as `before_id` for the next (older) page; None on the last page


def entries(
    s: Session,
    *,
    actor: str | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    action: str | None = None,
    before_id: int | None = None,
    limit: int = PAGE,
) -> AuditPage:
    """Newest first, filtered by exact values (each filter is a fixed column, never a path from the request)."""
    query = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit + 1)
    for column, value in (
        (AuditEntry.actor, actor),
        (AuditEntry.subject_type, subject_type),
        (AuditEntry.subject_id, subject_id),
        (AuditEntry.action, action),
    ):
        if value:
            query = query.where(col(column) == value)
    if before_id is not None:
        query = query.where(col(AuditEntry.id) < before_id)
    rows = list(s.exec(query).all())
    more = len(rows) > limit
    rows = rows[:limit]
    names = _account_names(s, {r.actor for r in rows})
    return AuditPage(
        [
            Entry(r.id, r.at, r.actor, names.get(r.actor, r.actor), r.action, r.subject_type, r.subject_id, r.before, r.after)
            for r in rows
        ],
        rows[-1].id if more else None,
    )


def actor_of(s: Session, text: str) -> str:
    """An actor filter as people type it: an account's email, or the recorded form ("user:3", "key:1")."""
    text = text.strip()
    if "@" in text:
        user_id = s.exec(select(User.id).where(User.email == text.lower())).first()
        return f"user:{user_id}" if user_id is not None else text
    return text


def _account_names(s: Session, actors: set[str]) -> dict[str, str]:
    ids = {int(a[5:]) for a in actors if a.startswith("user:") and a[5:].isdigit()}
    if not ids:
        return {}
    return {f"user:{i}": email for i, email in s.exec(select(User.id, User.email).where(col(User.id).in_(ids))).all()}
