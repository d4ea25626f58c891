"""Releases: the learner records what serves from when; a red model KPI rolls back to the last good release or
withdraws the model (the fallback ranking serves) until a promotion; shadow candidates score served decisions."""

import time
from datetime import timedelta

from sqlmodel import Session, select

from app import db
from app.models import KpiSnapshot, ModelRelease, ModelRequest, ModelVersion, ShadowDecision, utcnow
from app.services import releases, shadow
from app.services.learner import Learner
from app.services.model_store import ModelStore
from tests.app.services.test_retraining import OLD, log_decisions
from tests.helpers import SteppedClock


def kinds(engine) -> list[tuple[str, str]]:
    with Session(engine) as s:
        return [(r.version, r.kind) for r in s.exec(select(ModelRelease).order_by(ModelRelease.id))]


def red(engine, label: str) -> None:
    with db.write_session(engine) as s:
        s.add(KpiSnapshot(at=utcnow(), model_version=label, name="auc", value=0.6, n=500, colour="red"))


def test_the_first_start_is_the_initial_release_and_a_restart_adds_none(bare):
    settings, engine = bare.config["FEEDLOOP"], bare.extensions["db_engine"]
    Learner(settings, engine)
    Learner(settings, engine)
    assert kinds(engine) == [("v0", "initial")]


def test_a_red_model_kpi_rolls_back_to_the_last_good_release(bare):
    settings, engine = bare.config["FEEDLOOP"], bare.extensions["db_engine"]
    learner = Learner(settings, engine, clock=SteppedClock())
    log_decisions(bare, 30, utcnow() - timedelta(hours=1), 600, OLD)
    learner.step()
    good = learner.publish(keep=True)
    with db.write_session(engine) as s:
        releases.request(s, "rollback", good, "test")
    learner.step()
    log_decisions(bare, 10, utcnow() - timedelta(minutes=5), 60, OLD, seed=3)
    learner.step()
    bad = learner.publish(keep=True)
    with db.write_session(engine) as s:
        releases.request(s, "rollback", bad, "an operator's choice")
    learner.step()
    red(engine, f"{bad}#3")
    with db.write_session(engine) as s:
        assert releases.take_out_of_serving(s, f"{good}#2", "auc red") == ""  # no longer serving: nothing to do
        assert releases.take_out_of_serving(s, f"{bad}#3", f"auc 0.6 on {bad}#3") == f"rollback to {good}"
    learner.step()
    assert kinds(engine) == [("v0", "initial"), (good, "rollback"), (bad, "rollback"), (good, "rollback")]


def test_with_no_good_release_left_the_model_is_withdrawn_until_a_promotion(bare):
    settings, engine = bare.config["FEEDLOOP"], bare.extensions["db_engine"]
    learner = Learner(settings, engine, clock=SteppedClock())
    log_decisions(bare, 30, utcnow() - timedelta(hours=1), 600, OLD)
    learner.step()
    red(engine, "v0#1")
    with db.write_session(engine) as s:
        assert releases.take_out_of_serving(s, "v0#1", "auc 0.6 on v0#1") == "withdraw"
    learner.step()

    assert kinds(engine)[-1] == ("fallback", "withdrawal")
    assert ModelStore(settings).current().withdrawn
    log_decisions(bare, 10, utcnow() - timedelta(minutes=5), 60, OLD, seed=3)
    learner.step()
    learner.publish()  # it goes on learning while withdrawn, and stays withdrawn
    assert ModelStore(settings).current().withdrawn and learner.last_reward_id == 40

    with db.write_session(engine) as s:
        s.add(
            ModelVersion(
                version="r9", archive=learner.model.to_snapshot("r9", {}).to_bytes(), source="retrain", last_reward_id=30
            )
        )
        releases.request(s, "promote", "r9", "a retrained candidate")
    learner.step()
    assert kinds(engine)[-1] == ("r9", "promotion")
    assert not ModelStore(settings).current().withdrawn
    with Session(engine) as s:
        assert [r.status for r in s.exec(select(ModelRequest).order_by(ModelRequest.id))] == ["done", "done"]


def test_a_shadow_candidate_scores_the_served_decisions_without_serving(bare):
    settings, engine = bare.config["FEEDLOOP"], bare.extensions["db_engine"]
    learner = Learner(settings, engine, clock=SteppedClock())
    log_decisions(bare, 200, utcnow() - timedelta(hours=3), 3600, OLD)
    learner.step()
    version = learner.publish(keep=True)
    with Session(engine) as s:
        shadow.start(s, settings, version)
    assert shadow.score(engine, settings) == (version, 0)  # it scores what is served from now on
    log_decisions(bare, 120, utcnow(), 1, OLD, seed=5)

    assert shadow.score(engine, settings) == (version, 120)
    assert shadow.score(engine, settings) == (version, 0)  # each decision once
    with Session(engine) as s:
        rows = s.exec(select(ShadowDecision)).all()
        report = shadow.report(s, version)
    assert all(0 <= r.probability <= 1 for r in rows)
    assert report.decisions == 120 and 0 <= report.agreement <= 1 and report.live_value is not None
    assert ModelStore(settings).current().version == version  # the served model is untouched


def test_a_shadow_put_back_scores_from_then_on_and_a_promotion_ends_it(bare):
    settings, engine = bare.config["FEEDLOOP"], bare.extensions["db_engine"]
    learner = Learner(settings, engine, clock=SteppedClock())
    log_decisions(bare, 50, utcnow() - timedelta(hours=3), 3600, OLD)
    learner.step()
    a = learner.publish(keep=True)
    with db.write_session(engine) as s:
        s.add(
            ModelVersion(
                version="r5", archive=learner.model.to_snapshot("r5", {}).to_bytes(), source="retrain", rewards_learned=7
            )
        )
    with Session(engine) as s:
        shadow.start(s, settings, a)
    log_decisions(bare, 20, utcnow(), 0.001, OLD, seed=6)
    assert shadow.score(engine, settings) == (a, 20)
    time.sleep(0.01)  # the decisions above were served before r5 went into shadow
    with Session(engine) as s:
        shadow.start(s, settings, "r5")
    log_decisions(bare, 10, utcnow(), 0.001, OLD, seed=7)
    assert shadow.score(engine, settings) == ("r5", 10)
    time.sleep(0.01)
    with Session(engine) as s:
        shadow.start(s, settings, a)  # back again: what r5 scored meanwhile is not scored twice, nothing fails
    log_decisions(bare, 5, utcnow(), 0.001, OLD, seed=8)
    assert shadow.score(engine, settings) == (a, 5)

    with Session(engine) as s:
        shadow.start(s, settings, "r5")
    with db.write_session(engine) as s:
        releases.request(s, "promote", "r5", "test")
    learner.step()
    assert shadow.shadow_version(settings) is None  # it serves now
    assert learner.learned == 7 + 85  # what the candidate learned, and everything after it relearned on top
