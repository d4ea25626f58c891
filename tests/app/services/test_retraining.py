"""The retrain job: a candidate learns the decision log, is judged against the live policy on a held-out recent
window, and is promoted only when the logs say it is better; the learner then serves it with everything learned
since relearned on top."""

import uuid
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import insert
from sqlmodel import Session, select

from app import db
from app.jobs.scheduler import run_requested
from app.models import Event, ExcludedUser, JobRun, ModelCard, ModelRelease, ModelRequest, ModelVersion, Reward, utcnow
from app.services.job_requests import request_run
from app.services.learner import Learner
from app.services.retraining import retrain
from bandit.features import Candidate, Shared
from tests.helpers import SteppedClock

ITEMS = [Candidate(f"i{n}", category=f"c{n}") for n in range(6)]
OLD = {"mobile": "i1", "desktop": "i4"}  # what each device's users click
NEW = {"mobile": "i2", "desktop": "i5"}


def log_decisions(app, n, start, seconds, tastes, policy=None, seed=0, user=None) -> None:
    """n settled decisions, spread over `seconds` from `start`, each showing one item drawn by `policy` (device ->
    item -> probability; uniform when None), with the reward the users' `tastes` give it."""
    rng = np.random.default_rng(seed)
    events, rewards = [], []
    for k in range(n):
        device = str(rng.choice(["mobile", "desktop"]))
        pmf = np.full(len(ITEMS), 1 / len(ITEMS)) if policy is None else np.array([policy[device].get(c.id, 0.0) for c in ITEMS])
        position = int(rng.choice(len(ITEMS), p=pmf / pmf.sum()))
        at = start + timedelta(seconds=seconds * k / n)
        who = user or f"u{rng.integers(40)}"
        event_id = uuid.uuid4().hex
        events.append(
            dict(
                id=event_id,
                user_id=who,
                context={"device": device},
                shared=Shared(who, {"device": device}, at.hour, at.weekday()).to_dict(),
                candidates=[c.to_dict() for c in ITEMS],
                slots=[{"position": position, "item_id": ITEMS[position].id, "probability": float(pmf[position] / pmf.sum())}],
                segment=f"device={device}",
                model_version="v1",
                created_at=at,
                settled_at=at + timedelta(seconds=1),
            )
        )
        value = float(rng.random() < (0.9 if ITEMS[position].id == tastes[device] else 0.05))
        rewards.append(
            dict(event_id=event_id, item_id=ITEMS[position].id, user_id=who, value=value, learn_value=value, received_at=at)
        )
    with db.write_session(app.extensions["db_engine"]) as s:
        s.execute(insert(Event), events)
        s.execute(insert(Reward), rewards)


def greedy(tastes, epsilon=0.1):
    return {d: {c.id: (1 - epsilon if c.id == best else 0) + epsilon / len(ITEMS) for c in ITEMS} for d, best in tastes.items()}


@pytest.fixture
def settings(bare):
    settings = bare.config["FEEDLOOP"]
    settings.retrain_resamples = 200
    return settings


def test_a_better_candidate_is_promoted_and_served_with_what_came_after_relearned(bare, settings):
    engine = bare.extensions["db_engine"]
    learner = Learner(settings, engine, clock=SteppedClock())
    now = utcnow()
    log_decisions(bare, 1500, now - timedelta(days=2), 86400 * 2 - 60, OLD)  # a uniform-random policy logged these
    learner.step()
    learner.publish(keep=True)

    card = retrain(engine, settings, "manual", now=now)

    assert card.status == "promoted", card.decision
    est = card.estimates
    assert est["estimator"] == "dr" and est["candidate"]["dr"]["ci"][0] > est["live"]["dr"]["value"]
    assert est["live"]["ips"]["value"] == pytest.approx(0.2, abs=0.05)  # what uniform random earned
    assert card.data["holdout"]["decisions"] == pytest.approx(300, abs=5)
    assert card.data["train"]["rewards"] == pytest.approx(1200, abs=5)
    assert len(card.grid) >= 8 and card.settings == card.grid[0]["settings"] and card.limits
    with Session(engine) as s:
        candidate = s.get(ModelVersion, card.candidate_version)
        assert (candidate.source, candidate.learned_from_reward_id) == ("retrain", 0)
        last_trained = candidate.last_reward_id
        assert s.exec(select(ModelRequest.action, ModelRequest.version)).all() == [("promote", card.candidate_version)]

    learner.step()  # carries out the promotion: relearns the held-out window on top of the candidate

    assert learner.last_reward_id == 1500 and learner.model.version == card.candidate_version
    learner.publish(keep=True)
    with Session(engine) as s:
        release = s.exec(select(ModelRelease).order_by(ModelRelease.id.desc())).first()
        assert (release.version, release.kind, release.card_id) == (card.candidate_version, "promotion", card.id)
        assert "beats" in release.reason
        kept = s.exec(
            select(ModelVersion).where(ModelVersion.source == "learner").order_by(ModelVersion.created_at.desc())
        ).first()
        assert (kept.parent_version, kept.learned_from_reward_id, kept.last_reward_id) == (
            card.candidate_version,
            last_trained,
            1500,
        )


def test_a_worse_candidate_is_not_promoted(bare, settings):
    """Tastes changed when the held-out window began and the live policy followed them; a candidate that learned
    the old tastes is worse there, and the live model keeps serving."""
    engine = bare.extensions["db_engine"]
    now = utcnow()
    log_decisions(bare, 1200, now - timedelta(days=2), 86400, OLD)
    log_decisions(bare, 400, now - timedelta(hours=6), 6 * 3600 - 60, NEW, policy=greedy(NEW), seed=1)
    settings.retrain_holdout_share = 0.25

    card = retrain(engine, settings, "manual", now=now)

    assert card.status == "rejected", card.decision
    assert card.estimates["candidate"]["dr"]["value"] < card.estimates["live"]["dr"]["value"]
    assert "live model keeps serving" in card.decision
    with Session(engine) as s:
        assert s.exec(select(ModelRequest)).all() == []
        assert s.get(ModelVersion, card.candidate_version) is not None  # kept: it can still be promoted by hand


def test_confirmed_fraud_users_are_not_learned_from(bare, settings):
    engine = bare.extensions["db_engine"]
    now = utcnow()
    log_decisions(bare, 1000, now - timedelta(days=2), 86400, OLD)
    log_decisions(bare, 300, now - timedelta(days=2), 86400, {"mobile": "i0", "desktop": "i0"}, user="bot", seed=2)
    with db.write_session(engine) as s:
        s.add(ExcludedUser(user_id="bot", reason="confirmed click fraud"))

    card = retrain(engine, settings, "manual", now=now)

    assert card.data["train"]["rewards"] + card.data["holdout"]["decisions"] == pytest.approx(1000, abs=5)


def test_too_few_decisions_give_no_verdict(bare, settings):
    log_decisions(bare, 100, utcnow() - timedelta(hours=3), 3600, OLD)
    card = retrain(bare.extensions["db_engine"], settings, "manual")
    assert card.status == "insufficient" and "nothing" in card.decision
    assert card.candidate_version is None


def test_a_requested_retrain_runs_with_its_reason(bare, settings):
    log_decisions(bare, 600, utcnow() - timedelta(days=1), 86400 - 60, OLD)
    with db.write_session(bare.extensions["db_engine"]) as s:
        request_run(s, "retrain", "drift red: context.device")
        request_run(s, "retrain", "red auc on v0#1")  # one waits at a time
    assert run_requested(bare) == 1
    with Session(bare.extensions["db_engine"]) as s:
        card = s.exec(select(ModelCard)).one()
        run = s.exec(select(JobRun).where(JobRun.job == "retrain")).one()
    assert card.trigger == "drift red: context.device" and run.trigger == card.trigger
    assert run.status == "ok" and f"model card {card.id}" in run.detail


def test_a_restart_does_not_retrain_but_takes_up_requested_runs_within_seconds(bare):
    from apscheduler.schedulers.background import BackgroundScheduler

    from app.jobs.scheduler import REQUESTS_SECONDS, schedule

    scheduler = schedule(bare, BackgroundScheduler(timezone="UTC"))
    scheduler.start(paused=True)
    try:
        now = utcnow()
        retraining = scheduler.get_job("retrain").next_run_time - now
        assert abs(retraining.total_seconds() - bare.config["FEEDLOOP"].retrain_seconds) < 60
        assert (scheduler.get_job("drift-scan").next_run_time - now).total_seconds() < 60  # checks start at once
        assert scheduler.get_job("requested").trigger.interval.total_seconds() == REQUESTS_SECONDS
    finally:
        scheduler.shutdown(wait=False)
    with db.write_session(bare.extensions["db_engine"]) as s:  # it ran two days ago: the next run is due now
        s.add(JobRun(job="retrain", status="ok", started_at=utcnow() - timedelta(days=2)))
    scheduler = schedule(bare, BackgroundScheduler(timezone="UTC"))
    scheduler.start(paused=True)
    try:
        assert (scheduler.get_job("retrain").next_run_time - utcnow()).total_seconds() < 60
    finally:
        scheduler.shutdown(wait=False)


def test_a_request_is_taken_up_once_and_one_for_an_unknown_job_fails(bare):
    from app.services.job_requests import claim

    engine = bare.extensions["db_engine"]
    with db.write_session(engine) as s:
        first = request_run(s, "activity-prune", "test")
        unknown = request_run(s, "no-such-job", "test")
    assert claim(engine, first) and not claim(engine, first)
    with db.write_session(engine) as s:
        s.get(JobRun, first).status = "requested"  # waiting again: the scheduler claims it and runs it
    assert run_requested(bare) == 2
    with Session(engine) as s:
        runs = {r.id: r for r in s.exec(select(JobRun))}
    assert runs[first].status == "ok" and (runs[unknown].status, runs[unknown].detail) == ("failed", "no job named 'no-such-job'")


def test_a_run_that_fails_closes_its_card_with_the_error(bare, settings, monkeypatch):
    import app.services.retraining as retraining

    log_decisions(bare, 600, utcnow() - timedelta(days=1), 86400 - 60, OLD)

    def broken(*args, **kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(retraining, "search", broken)
    with pytest.raises(RuntimeError):
        retrain(bare.extensions["db_engine"], settings, "manual")
    with Session(bare.extensions["db_engine"]) as s:
        card = s.exec(select(ModelCard)).one()
    assert (card.status, card.decision) == ("failed", "RuntimeError: the disk is full") and card.finished_at


def test_decisions_the_policy_did_not_draw_are_not_judged(bare, settings):
    """Fallback rankings and an apprentice's baseline put first (probability 1) are left out of the held-out window:
    with nothing else there, there is nothing to judge."""
    engine = bare.extensions["db_engine"]
    now = utcnow()
    log_decisions(bare, 800, now - timedelta(days=2), 86400, OLD)
    log_decisions(bare, 300, now - timedelta(hours=2), 3600, OLD, policy={d: {"i0": 1.0} for d in OLD}, seed=4)
    with db.write_session(engine) as s:
        recent = s.exec(select(Event).where(Event.created_at >= now - timedelta(hours=2))).all()
        for n, event in enumerate(recent):
            if n % 2:
                event.fallback = True
            else:
                event.baseline_item_id = "i0"
            s.add(event)
    settings.retrain_holdout_share = 0.25

    card = retrain(engine, settings, "manual", now=now)

    assert card.status == "insufficient" and "nothing to judge" in card.decision
    assert card.candidate_version is None
