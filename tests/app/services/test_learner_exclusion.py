"""Rewards of end users confirmed as fraudulent are kept and marked, never learned, and the learner's other
guarantees hold around them: its position moves on, a slot is still learned at most once, settlement still
closes it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from app import db
from app.models import ExcludedUser, QValue, Reward, utcnow
from app.services.learner import Learner
from app.services.review import claim_next, decide, enqueue, exclude_user
from app.services.rewards import RewardIn, reward_rules, store_rewards
from feedback.review import validate_task
from tests.helpers import log_decision, make_user


@pytest.fixture
def learner(bare, clock):
    return Learner(bare.config["FEEDLOOP"], bare.extensions["db_engine"], clock=clock)


def reward(app, event_id: str, item_id: str, value: float = 1.0):
    with db.write_session(app.extensions["db_engine"]) as s:
        stored = store_rewards(s, reward_rules(app.config["FEEDLOOP"]), [RewardIn(event_id, value, item_id)])
    assert stored.accepted == 1


def exclude(app, user: str) -> None:
    with db.write_session(app.extensions["db_engine"]) as s:
        exclude_user(s, user, None, "system")


def rows(app) -> list[Reward]:
    with Session(app.extensions["db_engine"]) as s:
        return list(s.exec(select(Reward).order_by(Reward.id)).all())


def learned_counts(app) -> dict[str, int]:
    with Session(app.extensions["db_engine"]) as s:
        return {q.item_id: q.n for q in s.exec(select(QValue)).all()}


def test_rewards_stored_before_the_exclusion_are_passed_marked_and_not_learned(bare, learner):
    mallory, alice = log_decision(bare, user_id="mallory"), log_decision(bare, user_id="alice")
    reward(bare, mallory.event_id, "i0")
    reward(bare, alice.event_id, "i1")
    with Session(bare.extensions["db_engine"]) as s:  # excluded as a concurrent decision would, without marking
        s.add(ExcludedUser(user_id="mallory", reason="test"))
        s.commit()
    assert learner.step() == 1  # alice's reward only
    assert learner.last_reward_id == rows(bare)[-1].id  # the position moved past mallory's reward
    assert [(r.user_id, r.excluded) for r in rows(bare)] == [("mallory", True), ("alice", False)]
    assert learned_counts(bare) == {"i1": 1}
    assert learner.step() == 0  # nothing is learned twice, or late


def test_a_reward_arriving_from_an_excluded_user_is_marked_on_arrival(bare, learner):
    exclude(bare, "mallory")
    logged = log_decision(bare, user_id="mallory")
    reward(bare, logged.event_id, "i0")
    (stored,) = rows(bare)
    assert stored.excluded and stored.learn_value == 1.0  # still the slot's one final reward: settlement adds none
    assert learner.step() == 0
    learner.settle_due(utcnow() + timedelta(hours=1))
    settled = rows(bare)
    assert [(r.item_id, r.source) for r in settled] == [("i0", "client"), ("i1", "settlement"), ("i2", "settlement")]
    assert all(r.excluded for r in settled)  # the default rewards of the slots nobody rewarded, marked too
    assert learner.step() == 0 and learned_counts(bare) == {}


def test_other_users_settle_and_learn_as_before(bare, learner):
    exclude(bare, "mallory")
    log_decision(bare, user_id="mallory")
    bob = log_decision(bare, user_id="bob")
    reward(bare, bob.event_id, "i2", 0.5)
    learner.settle_due(utcnow() + timedelta(hours=1))
    assert learner.step() == 3  # bob's reward and his two default rewards; mallory's three defaults passed
    assert {(r.user_id, r.excluded) for r in rows(bare)} == {("mallory", True), ("bob", False)}
    assert learned_counts(bare) == {"i0": 1, "i1": 1, "i2": 1}


def test_confirming_a_fraudulent_user_stops_their_learning_from_then_on(bare, learner):
    reviewer = make_user(bare, "rita@example.org", "reviewer")
    engine = bare.extensions["db_engine"]
    before = log_decision(bare, user_id="mallory")
    reward(bare, before.event_id, "i0")
    assert learner.step() == 1  # learned before anyone knew; it stays learned (the bandit cannot unlearn)
    with db.write_session(engine) as s:
        task, _ = enqueue(s, validate_task("anomalies", "user", "mallory", {"rewards_per_hour": 900}), "system")
    with db.write_session(engine) as s:
        claim_next(s, "anomalies", reviewer)
    with db.write_session(engine) as s:
        decide(s, task, reviewer, "confirm", note="click farm")
    assert rows(bare)[0].excluded  # the past reward is marked for the retraining
    after = log_decision(bare, user_id="mallory")
    reward(bare, after.event_id, "i1")
    assert learner.step() == 0
    assert learned_counts(bare) == {"i0": 1}
    assert all(r.excluded for r in rows(bare))
