"""The `retrain` job: a candidate learns the decision log up to a held-out recent window, the estimators judge it
and the live policy on that window, and it is promoted only when the configured rule says it is better.

Choices, where the issue left room:
- The held-out window is the most recent `retrain_holdout_share` of the settled decisions in the training window
  (at least `retrain_min_holdout`); the candidate learns, in the learner's order and with the features each
  decision logged, the learnable rewards received before that window starts about decisions made before it. Rewards of users confirmed as fraud are left out
  (marked `excluded`, or their user in excluded_users), as are rewards set aside after failing to learn.
- "Live" is the policy that served the held-out window, judged by the same estimator on the same decisions (its
  target is its own logged propensity, so IPS and SNIPS give the mean reward it earned). The live model's current
  weights have learned from that window already, so judging them on it would flatter them.
- Promotion: the learner swaps the candidate in and relearns, on top of it, every reward after the candidate's
  last one (the held-out window included), so nothing learned since is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, bindparam, func
from sqlmodel import Session, col, select

from app.db import write_session
from app.models import Event, ExcludedUser, KpiSnapshot, ModelCard, ModelVersion, Reward, utcnow
from app.services import releases
from app.services.datasets import DatasetInfo
from app.services.evaluation import describe_items, distinct_actions
from app.services.model_store import serving_config
from app.settings import Settings
from bandit.estimators import Estimate
from bandit.features import Candidate, LoggedCandidates, Shared
from bandit.model import ServedModel
from bandit.qvalues import segment
from bandit.snapshots import write_atomic
from bandit.training import LoggedChoice, LoggedReward, NothingToJudge, Search, search
from feedback.logs import LoggedRow

log = logging.getLogger(__name__)
BATCH = 1000
LIMITS = [
    "Only each decision's first slot is judged: later slots' probabilities are conditional on the earlier draws.",
    "The estimates hold for traffic like the held-out window's; a shift after it (drift) is not covered.",
    "The live policy is judged as it served the window (it kept learning during it); the candidate as frozen at the "
    "window's start, which slightly favours live.",
    "Explored decisions carry importance weights up to 1/propensity: with little exploration the intervals are wide.",
    "Settings that explore less look better offline and learn less online; the grid keeps some exploration in all.",
    "The best of the grid is chosen and judged on the same held-out decisions, so its estimate is slightly optimistic.",
]


@dataclass(frozen=True)
class Windows:
    since: datetime  # the oldest decision learned from
    holdout_from: datetime  # decisions from here on are held out
    until: datetime
    last_reward_id: int  # the candidate learns rewards up to this id
    first_reward_id: int  # ... after this one


LEARNABLE = (
    col(Reward.learn_value).is_not(None),
    col(Reward.excluded).is_(False),
    col(Reward.learn_error).is_(None),
    col(ExcludedUser.user_id).is_(None),
)
TRAINING = (  # learnable rewards in (after, up_to], oldest first, with what their decision logged
    select(Reward.id, Reward.item_id, Reward.learn_value, Event.shared, Event.candidates, Event.slots, Event.segment)
    .join(Event, col(Event.id) == col(Reward.event_id))
    .outerjoin(ExcludedUser, col(ExcludedUser.user_id) == col(Reward.user_id))
    .where(col(Reward.id) > bindparam("after"), col(Reward.id) <= bindparam("up_to"), *LEARNABLE)
    .where(col(Event.created_at) >= bindparam("since"), col(Event.created_at) < bindparam("holdout_from"))
    .order_by(col(Reward.id))
    .limit(BATCH)
)


def windows(s: Session, settings: Settings, now: datetime) -> Windows | None:
    """Where training stops and the held-out window starts; None while fewer decisions than
    `retrain_min_holdout` would be held out."""
    since = now - timedelta(seconds=settings.retrain_window_seconds)
    settled = (col(Event.settled_at).is_not(None), col(Event.created_at) >= since, col(Event.created_at) < now)
    n = s.exec(select(func.count()).select_from(Event).where(*settled)).one()
    held_out = min(max(int(n * settings.retrain_holdout_share), settings.retrain_min_holdout), settings.retrain_max_holdout)
    if n < held_out + 1:
        return None
    holdout_from = s.exec(
        select(Event.created_at).where(*settled).order_by(col(Event.created_at)).offset(n - held_out).limit(1)
    ).one()
    last = s.exec(select(func.max(Reward.id)).where(col(Reward.received_at) < holdout_from)).one() or 0
    # A reward about a held-out decision stored before one about an earlier decision (inserts out of order) must
    # stay after the candidate's last: the candidate does not learn it, and a promotion relearns from there.
    first_held_out = s.exec(
        select(func.min(Reward.id))
        .join(Event, col(Event.id) == col(Reward.event_id))
        .where(col(Event.created_at) >= holdout_from)
    ).one()
    if first_held_out is not None:
        last = min(last, first_held_out - 1)
    # At most retrain_max_rewards of the learnable rewards, the most recent: start after the one before them.
    first = s.exec(
        select(Reward.id)
        .join(Event, col(Event.id) == col(Reward.event_id))
        .outerjoin(ExcludedUser, col(ExcludedUser.user_id) == col(Reward.user_id))
        .where(col(Reward.id) <= last, col(Event.created_at) >= since, *LEARNABLE)
        .order_by(col(Reward.id).desc())
        .offset(settings.retrain_max_rewards)
        .limit(1)
    ).first()
    return Windows(since, holdout_from, now, last, first or 0)


def training_rewards(engine: Engine, w: Windows) -> Iterator[list[LoggedReward]]:
    after = w.first_reward_id
    while True:
        with engine.connect() as conn:
            bounds = {"after": after, "up_to": w.last_reward_id, "since": w.since, "holdout_from": w.holdout_from}
            rows = conn.execute(TRAINING, bounds).all()
        if not rows:
            return
        batch = []
        for row in rows:
            slot = next((sl for sl in row.slots if sl["item_id"] == row.item_id), None)
            if slot is not None and 0 <= slot["position"] < len(row.candidates):
                shared, candidates = Shared.from_dict(row.shared), LoggedCandidates(row.candidates)
                batch.append(
                    LoggedReward(shared, candidates, slot["position"], slot["probability"], float(row.learn_value), row.segment)
                )
        yield batch
        after = rows[-1].id


def held_out(engine: Engine, w: Windows) -> Iterator[list[LoggedChoice]]:
    """The settled decisions of the held-out window (not of excluded users), each first slot with its learned
    reward. Left out: decisions whose first slot learned nothing (deferred, never activated), and those whose first
    slot the policy did not draw (the fallback ranking, an apprentice's baseline)."""
    after = ""
    while True:
        with Session(engine) as s:
            events = s.exec(
                select(Event.id, Event.shared, Event.candidates, Event.slots, Event.baseline_item_id)
                .outerjoin(ExcludedUser, col(ExcludedUser.user_id) == col(Event.user_id))
                .where(
                    col(Event.created_at) >= w.holdout_from,
                    col(Event.created_at) < w.until,
                    col(Event.settled_at).is_not(None),
                    col(Event.fallback).is_(False),
                    col(Event.id) > after,
                    col(ExcludedUser.user_id).is_(None),
                )
                .order_by(col(Event.id))
                .limit(BATCH)
            ).all()
            if not events:
                return
            ids = [e.id for e in events]
            learned = {
                (r.event_id, r.item_id): r.learn_value
                for r in s.exec(
                    select(Reward.event_id, Reward.item_id, Reward.learn_value).where(
                        col(Reward.event_id).in_(ids), col(Reward.learn_value).is_not(None), col(Reward.excluded).is_(False)
                    )
                )
            }
        batch = []
        for e in events:
            first = e.slots[0] if e.slots else None
            reward = learned.get((e.id, first["item_id"])) if first else None
            if reward is not None and 0 <= first["position"] < len(e.candidates) and not _apprentice(e, first):
                shared, candidates = Shared.from_dict(e.shared), LoggedCandidates(e.candidates)
                batch.append(LoggedChoice(shared, candidates, first["position"], first["probability"], float(reward)))
        yield batch
        after = ids[-1]


def _apprentice(event, first: dict) -> bool:
    """The app's own choice served first (apprentice mode): not a draw of the policy, so not judged."""
    return event.baseline_item_id == first["item_id"] and first["probability"] >= 1.0


def passes(settings: Settings, candidate: Estimate, live: Estimate) -> bool:
    bound = candidate.low if settings.retrain_rule == "lower_bound" else candidate.value
    return bound > live.value


def retrain(engine: Engine, settings: Settings, trigger: str, now: datetime | None = None) -> ModelCard:
    """One run: the card is stored first (its id names the candidate), filled in as the run goes."""
    now = now or utcnow()
    card_id, kpis = _open_card(engine, trigger, now)
    with Session(engine) as s:
        w = windows(s, settings, now)
    if w is None:
        return _finish(
            engine,
            card_id,
            status="insufficient",
            kpis=kpis,
            decision=f"fewer than {settings.retrain_min_holdout + 1} settled decisions in the training window: nothing "
            "to learn from and judge on yet",
        )
    found = _search(engine, settings, card_id, kpis, lambda: training_rewards(engine, w), lambda: held_out(engine, w))
    if isinstance(found, ModelCard):
        return found
    data = {
        "train": {
            "from": w.since.isoformat(),
            "to": w.holdout_from.isoformat(),
            "from_reward_id": w.first_reward_id,
            "to_reward_id": w.last_reward_id,
            "rewards": found.trained_on,
        },
        "holdout": {"from": w.holdout_from.isoformat(), "to": w.until.isoformat(), "decisions": found.held_out},
    }
    return _conclude(engine, settings, card_id, trigger, found, data, kpis, (w.first_reward_id, w.last_reward_id))


def train_on_dataset(engine: Engine, settings: Settings, info: DatasetInfo, rows: Sequence[LoggedRow]) -> ModelCard:
    """`feedloop train --dataset`: the same search on a log another system recorded, its most recent share held
    out. The candidate is kept, never promoted by itself; promoted by hand, it relearns feedloop's own log on top.
    The logged system's scores are unknown, so the candidates' Q-value feature is 0 throughout (its weight stays 0)."""
    trigger = f"dataset:{info.name}"
    card_id, kpis = _open_card(engine, trigger, utcnow())
    ordered = sorted(rows, key=lambda r: (r.timestamp, r.line))
    cut = len(ordered) - max(int(len(ordered) * settings.retrain_holdout_share), 1)
    actions = distinct_actions(rows)
    with Session(engine) as s:
        described = describe_items(s, actions)
    candidates = [Candidate(a, *described.get(a, (None, ()))) for a in actions]
    index = {a: n for n, a in enumerate(actions)}

    def shared(r: LoggedRow) -> Shared:
        return Shared.at(r.user_id or "", r.context, r.timestamp)

    train_rows = [
        LoggedReward(shared(r), candidates, index[r.action], r.propensity, r.reward, segment(r.context, settings.segment_keys))
        for r in ordered[:cut]
    ]
    judged = [
        LoggedChoice(shared(r), candidates, index[r.action], r.propensity, r.reward)
        for r in ordered[cut:]
        if r.position in (None, 1)
    ]
    if not train_rows or len(judged) < settings.retrain_min_holdout:
        return _finish(
            engine,
            card_id,
            status="insufficient",
            kpis=kpis,
            decision=f"{len(train_rows)} rows to learn and {len(judged)} held-out first-position rows: too few "
            f"(at least 1 and {settings.retrain_min_holdout})",
        )
    found = _search(engine, settings, card_id, kpis, lambda: [train_rows], lambda: [judged])
    if isinstance(found, ModelCard):
        return found
    data = {
        "dataset": info.name,
        "train": {"from": ordered[0].timestamp.isoformat(), "to": ordered[cut].timestamp.isoformat(), "rows": cut},
        "holdout": {
            "from": ordered[cut].timestamp.isoformat(),
            "to": ordered[-1].timestamp.isoformat(),
            "decisions": len(judged),
        },
        "actions": len(actions),
    }
    return _conclude(engine, settings, card_id, trigger, found, data, kpis, None)


def _search(engine: Engine, settings: Settings, card_id: int, kpis: dict, train_batches, holdout_batches) -> Search | ModelCard:
    """The settings search around the serving model's settings; or, when it cannot conclude, the card closed:
    insufficient when nothing was left to judge (every held-out decision filtered out), failed with the error
    otherwise (re-raised, for the job log)."""
    try:
        return search(
            serving_config(settings),
            train_batches,
            holdout_batches,
            settings.q_alpha,
            estimator=settings.retrain_estimator,
            resamples=settings.retrain_resamples,
        )
    except NothingToJudge:
        decision = "no held-out decision was a policy's own draw with a learned reward: nothing to judge on"
        return _finish(engine, card_id, status="insufficient", kpis=kpis, decision=decision)
    except Exception as exc:
        _finish(engine, card_id, status="failed", kpis=kpis, decision=f"{type(exc).__name__}: {exc}")
        raise


def _open_card(engine: Engine, trigger: str, now: datetime) -> tuple[int, dict]:
    with write_session(engine) as s:
        card = ModelCard(trigger=trigger[:255], status="running", created_at=now)
        s.add(card)
        s.flush()
        return card.id, _latest_kpis(s)


def _conclude(
    engine: Engine,
    settings: Settings,
    card_id: int,
    trigger: str,
    found: Search,
    data: dict,
    kpis: dict,
    learned: tuple[int, int] | None,
) -> ModelCard:
    """Keep the best candidate and decide: promote (a retrain of feedloop's own log that passes the rule), shadow
    (that, with FEEDLOOP_RETRAIN_SHADOW), or keep it for an admin (a dataset's, or one that did not pass)."""
    if found.held_out < settings.retrain_min_holdout:
        return _finish(
            engine,
            card_id,
            status="insufficient",
            kpis=kpis,
            data=data,
            decision=f"only {found.held_out} held-out decisions could be judged (at least {settings.retrain_min_holdout})",
        )
    best, name, version = found.trials[0], settings.retrain_estimator, f"r{card_id}"
    candidate, live = best.estimates[name], found.live[name]
    better = passes(settings, candidate, live)
    bound = "lower bound" if settings.retrain_rule == "lower_bound" else "estimate"
    verdict = (
        f"candidate {version}'s {name.upper()} {bound} {candidate.low if bound == 'lower bound' else candidate.value:.4f} "
        f"{'beats' if better else 'does not beat'} the logging policy's {live.value:.4f} on {found.held_out} held-out "
        "decisions"
    )
    first, last = learned or (0, 0)
    meta = {"last_reward_id": last, "rewards_learned": found.trained_on, "trained_from_reward_id": first}
    archive = best.model.to_snapshot(version, meta).to_bytes()
    with write_session(engine) as s:
        s.add(
            ModelVersion(
                version=version,
                archive=archive,
                source="retrain",
                rewards_learned=found.trained_on,
                last_reward_id=last,
                learned_from_reward_id=first,
            )
        )
        if learned is None:
            status = "trained"
            decision = f"{verdict}; trained offline: promote it with `feedloop models promote {version}`"
        elif better and settings.retrain_shadow:
            status, decision = "shadow", f"{verdict}: scoring live traffic in shadow until an admin promotes it"
        elif better:
            releases.request(s, "promote", version, f"retrain {card_id} ({trigger}): {verdict}")
            status, decision = "promoted", f"{verdict}: promoted"
        else:
            status, decision = "rejected", f"{verdict}: the live model keeps serving"
    if status == "shadow":
        write_atomic(settings.shadow_path, archive)
    return _finish(
        engine,
        card_id,
        candidate_version=version,
        status=status,
        data=data,
        features=_features(best.model),
        settings=best.model.policy.config.to_dict(),
        grid=[{"settings": t.config.to_dict(), "estimates": _estimates(t.estimates)} for t in found.trials],
        estimates={
            "estimator": name,
            "rule": settings.retrain_rule,
            "candidate": _estimates(best.estimates),
            "live": _estimates(found.live),
        },
        kpis=kpis,
        limits=LIMITS,
        decision=decision,
    )


def _finish(engine: Engine, card_id: int, **fields) -> ModelCard:
    with write_session(engine) as s:
        card = s.get(ModelCard, card_id)
        for name, value in fields.items():
            setattr(card, name, value)
        card.finished_at = utcnow()
        s.add(card)
        s.flush()
        s.refresh(card)
        s.expunge(card)
    return card


def _features(model: ServedModel) -> dict:
    config = model.policy.config
    return {
        "shared": {"U": "user id", "C": "context fields", "T": "hour, day part, weekday", "A": "the user's recent activity"},
        "action": {"I": "item id", "G": "category and tags", "S": "retrieval similarity, Q-value"},
        "interactions": list(config.interactions),
        "cubics": list(config.cubics),
    }


def _estimates(estimates: dict[str, Estimate]) -> dict:
    return {name: {"value": e.value, "ci": [e.low, e.high], "level": e.level} for name, e in estimates.items()}


def _latest_kpis(s: Session) -> dict:
    at = s.exec(select(func.max(KpiSnapshot.at))).one()
    if at is None:
        return {}
    rows = s.exec(select(KpiSnapshot).where(KpiSnapshot.at == at, KpiSnapshot.model_version == "*")).all()
    return {r.name: {"value": r.value, "n": r.n, "colour": r.colour} for r in rows}
