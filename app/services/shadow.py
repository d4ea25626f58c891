"""Shadow mode: a candidate that passed its retrain scores the decisions the live model serves, without serving.
It scores them shortly after they are logged (the `shadow-score` job), from the logged features, so the request
path does no second prediction; what it would have chosen and its probability of the item the live policy put
first are stored, which is what judging it on live traffic needs.

`feedloop models shadow VERSION` (or the retrain job, with FEEDLOOP_RETRAIN_SHADOW) puts a kept version in
shadow; promoting it or `feedloop models shadow --off` ends it. Put in shadow again later, it scores what is
served from then on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from app.db import upsert, write_session
from app.models import Event, ModelVersion, Reward, ShadowDecision
from app.services.model_store import load_snapshot
from app.settings import Settings
from bandit.features import LoggedCandidates, Shared
from bandit.snapshots import Snapshot, SnapshotError, write_atomic

BATCH = 1000
MAX_PER_RUN = 20_000  # the next run goes on from where this one stopped


def shadow_version(settings: Settings) -> str | None:
    try:
        return Snapshot.from_bytes(settings.shadow_path.read_bytes()).version
    except (FileNotFoundError, SnapshotError):
        return None


def start(s: Session, settings: Settings, version: str) -> None:
    """Put the kept VERSION in shadow (replacing any other); raises LookupError when there is no such version."""
    kept = s.get(ModelVersion, version)
    if kept is None:
        raise LookupError(f"no model version {version!r}")
    load_snapshot(kept.archive, settings)  # refuses an archive that would not load, before it is put in shadow
    write_atomic(settings.shadow_path, kept.archive)


def stop(settings: Settings) -> bool:
    try:
        settings.shadow_path.unlink()
    except FileNotFoundError:
        return False
    return True


def score(engine: Engine, settings: Settings) -> tuple[str | None, int]:
    """Score the served decisions the shadow has not seen yet. (shadow version, decisions scored)"""
    try:
        model = load_snapshot(settings.shadow_path.read_bytes(), settings)
    except (FileNotFoundError, SnapshotError):
        return None, 0
    with Session(engine) as s:
        scored = s.exec(select(func.max(ShadowDecision.created_at)).where(ShadowDecision.version == model.version)).one()
    # A shadow scores what is served from when it was put in shadow (again) on, from where its last run stopped.
    since = max(filter(None, (scored, _mtime(settings))))
    done = 0
    while done < MAX_PER_RUN:
        with Session(engine) as s:
            rows = s.exec(
                select(Event.id, Event.shared, Event.candidates, Event.slots, Event.created_at)
                .where(col(Event.fallback).is_(False), col(Event.created_at) > since)
                .order_by(col(Event.created_at))
                .limit(BATCH)
            ).all()
        found = []
        for row in rows:
            if not row.slots:
                continue
            prediction = model.policy.predict(Shared.from_dict(row.shared), LoggedCandidates(row.candidates))
            best = int(prediction.pmf.argmax())
            found.append(
                dict(
                    event_id=row.id,
                    version=model.version,
                    item_id=row.candidates[best]["id"],
                    probability=float(prediction.pmf[row.slots[0]["position"]]),
                    score=float(prediction.scores[best]),
                    created_at=row.created_at,
                )
            )
        if found:
            with write_session(engine) as s:
                upsert(s, ShadowDecision, found)  # a decision scored already (a run that overlapped) stays once
        done += len(found)
        if len(rows) < BATCH:
            break
        since = rows[-1].created_at
    return model.version, done


def _mtime(settings: Settings) -> datetime:
    return datetime.fromtimestamp(settings.shadow_path.stat().st_mtime, UTC)


@dataclass(frozen=True)
class ShadowReport:
    version: str
    decisions: int
    agreement: float | None  # share of decisions where the shadow's first choice is the served first item
    live_value: float | None  # mean learned reward of the served first items
    shadow_value: float | None  # SNIPS estimate of the shadow's value on the same decisions


def report(s: Session, version: str) -> ShadowReport:
    """How the shadow compares with the live policy on the decisions it scored that have a learned reward."""
    rows = s.exec(
        select(ShadowDecision.item_id, ShadowDecision.probability, Event.slots, Reward.learn_value, Reward.item_id)
        .join(Event, col(Event.id) == col(ShadowDecision.event_id))
        .join(Reward, (col(Reward.event_id) == col(ShadowDecision.event_id)) & col(Reward.learn_value).is_not(None))
        .where(ShadowDecision.version == version)
    ).all()
    firsts = [(shadow_item, p, slots, value) for shadow_item, p, slots, value, item in rows if item == slots[0]["item_id"]]
    total = s.exec(select(func.count()).select_from(ShadowDecision).where(ShadowDecision.version == version)).one()
    if not firsts:
        return ShadowReport(version, total, None, None, None)
    agree = sum(shadow_item == slots[0]["item_id"] for shadow_item, _, slots, _ in firsts) / len(firsts)
    weights = [p / slots[0]["probability"] for _, p, slots, _ in firsts]
    values = [v for *_, v in firsts]
    weight_sum = sum(weights)
    snips = sum(w * v for w, v in zip(weights, values)) / weight_sum if weight_sum > 0 else None
    return ShadowReport(version, total, agree, sum(values) / len(values), snips)
