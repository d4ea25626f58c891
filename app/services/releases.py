"""Releases: which model the learner served from when. A release starts at the first start (the initial model),
at a promotion, a rollback, or a withdrawal (a red model KPI took the model out of serving: the popularity
ranking serves until a retrained model is promoted). KPIs are measured per release; a red one rolls back to the
last release that was not red, or withdraws when there is none."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from app.models import KpiSnapshot, ModelRelease, ModelRequest, utcnow
from app.services import audit, model_registry
from feedback.kpis import MODEL_KPIS

FALLBACK = "fallback"  # the release version of a withdrawal: no model serves


@dataclass(frozen=True)
class Span:
    release_id: int
    version: str
    start: datetime
    end: datetime | None  # None: still serving


def record(s: Session, version: str, kind: str, reason: str = "", card_id: int | None = None, at: datetime | None = None) -> int:
    release = ModelRelease(version=version, kind=kind, reason=reason, card_id=card_id, started_at=at or utcnow())
    s.add(release)
    s.flush()
    return release.id


def current(s: Session) -> ModelRelease | None:
    return s.exec(select(ModelRelease).order_by(col(ModelRelease.started_at).desc(), col(ModelRelease.id).desc())).first()


def history(s: Session, limit: int = 100) -> list[ModelRelease]:
    return list(s.exec(select(ModelRelease).order_by(col(ModelRelease.id).desc()).limit(limit)))


def spans(s: Session, since: datetime, until: datetime) -> list[Span]:
    """The releases that served some of [since, until), oldest first."""
    rows = list(s.exec(select(ModelRelease).order_by(col(ModelRelease.started_at), col(ModelRelease.id))))
    out = []
    for n, row in enumerate(rows):
        end = rows[n + 1].started_at if n + 1 < len(rows) else None
        if row.started_at < until and (end is None or end > since):
            out.append(Span(row.id, row.version, row.started_at, end))
    return out


def release_at(found: Sequence[Span], when: datetime) -> Span | None:
    """The span serving at `when` (None before the first release)."""
    for span in reversed(found):
        if span.start <= when:
            return span
    return None


def label(span: Span) -> str:
    """How KPIs name a release: its version and number, since a version can be released more than once."""
    return f"{span.version}#{span.release_id}"


def request(s: Session, action: str, version: str, reason: str = "") -> int:
    """Ask the learner, the only writer of the served model, to promote, roll back to or withdraw (the reason
    waits in the request's detail until the learner records the release)."""
    row = ModelRequest(action=action, version=version, detail=reason)
    s.add(row)
    s.flush()
    return row.id


class NotACandidate(ValueError):
    """Only a retrained candidate is promoted (it relearns what came after it); a kept version is rolled back to."""


def operator_request(s: Session, actor: str, action: str, version: str, reason: str) -> int:
    """An operator's rollback or promotion of a kept version, audited: the request's id. Raises LookupError for a
    version that is not kept, NotACandidate for promoting what no retrain trained."""
    kept = model_registry.kept(s, version)  # not the archive: megabytes not needed here
    if kept is None:
        raise LookupError(f"no model version {version!r}")
    if action == "promote" and kept.source != "retrain":
        raise NotACandidate(f"{version} is not a retrained candidate: roll back to it instead")
    request_id = request(s, action, version, reason)
    audit.record(s, actor, action, "model", version, None, {"request": request_id})
    return request_id


def take_out_of_serving(s: Session, red_label: str, reason: str) -> str:
    """A red model KPI on the release `red_label` (see `label`): go back to the newest earlier release whose model
    KPIs were never red and whose model is kept, else withdraw to the fallback ranking. Returns what was asked of
    the learner ("rollback to V", "promote V" or "withdraw"); nothing when that release no longer serves."""
    serving = current(s)
    if serving is None or f"{serving.version}#{serving.id}" != red_label or serving.version == FALLBACK:
        return ""
    red_model_kpi = (KpiSnapshot.colour == "red", col(KpiSnapshot.name).in_(MODEL_KPIS))
    red = set(s.exec(select(KpiSnapshot.model_version).where(*red_model_kpi)).all())
    earlier = s.exec(select(ModelRelease).where(col(ModelRelease.id) < serving.id).order_by(col(ModelRelease.id).desc())).all()
    for release in earlier:
        good = release.version not in (FALLBACK, serving.version) and f"{release.version}#{release.id}" not in red
        kept = model_registry.kept(s, release.version) if good else None
        if kept is not None:
            # A retrained candidate stopped learning where its training did: promoting it again relearns everything
            # since on top of it, where a rollback would skip it.
            action = "promote" if kept.source == "retrain" else "rollback"
            request(s, action, release.version, reason)
            return f"rollback to {release.version}" if action == "rollback" else f"promote {release.version}"
    request(s, "withdraw", FALLBACK, reason)
    return "withdraw"
