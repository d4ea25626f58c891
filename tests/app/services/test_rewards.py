"""Storing rewards and learning them, through the services without HTTP: each shown slot is learned exactly
once with its final reward; whatever arrives after settlement is kept as late and never learned."""

from collections import Counter

import pytest
from sqlmodel import Session, select

from app.db import write_session
from app.models import Event, utcnow
from app.services.decisions import ActivationRefused, activate
from app.services.learner import Learner
from app.services.rewards import RewardIn, reward_rules, store_rewards
from tests.helpers import age_events, bare_app, log_decision
from tests.helpers import stored_rewards as stored


@pytest.fixture
def app(bare):
    """These services need neither the encoder nor the index: decisions are logged straight to the database."""
    return bare


def store(app, *rewards: RewardIn):
    with write_session(app.extensions["db_engine"]) as s:
        return store_rewards(s, reward_rules(app.config["FEEDLOOP"]), list(rewards))


def settle(app, learner) -> int:
    """Move every decision past its reward wait, then let the learner settle and learn."""
    age_events(app, app.config["FEEDLOOP"].reward_wait_seconds + 1)
    return learner.step(now=utcnow())


def learned_rows(app) -> Counter:
    return Counter((r.event_id, r.item_id) for r in stored(app) if r.learn_value is not None)


@pytest.mark.parametrize(
    "aggregation, first_slot",
    [("earliest", 0.75), ("sum", 1.25), ("capped", 1.0)],  # 0.75 + 0.5 exceeds the maximum of 1.0
)
def test_each_shown_slot_is_learned_exactly_once_with_its_final_reward(config, clock, aggregation, first_slot):
    app = bare_app({**config, "reward_aggregation": aggregation})
    learner = Learner(app.config["FEEDLOOP"], app.extensions["db_engine"], clock=clock)
    d = log_decision(app, k=3)
    a, b, c = d.item_ids
    result = store(
        app,
        RewardIn(d.event_id, 0.75, reward_id="view"),
        RewardIn(d.event_id, 0.5, reward_id="buy"),
        RewardIn(d.event_id, 0.25, item_id=b),
    )
    assert (result.accepted, result.late, result.refused) == (3, 0, [])
    learner.step()
    settle(app, learner)
    assert learned_rows(app) == {(d.event_id, a): 1, (d.event_id, b): 1, (d.event_id, c): 1}
    learned = {r.item_id: r.learn_value for r in stored(app) if r.learn_value is not None}
    assert learned == {a: first_slot, b: 0.25, c: 0.0}
    assert learner.learned == 3
    assert settle(app, learner) == 0 and learner.learned == 3  # settled once
    app.extensions["db_engine"].dispose()


def test_a_reward_after_settlement_is_stored_late_and_never_learned(app, learner):
    d = log_decision(app, k=2)
    assert settle(app, learner) == 2  # both slots learned the default
    weights, learned = learner.model.policy.to_bytes(), learner.learned
    result = store(app, RewardIn(d.event_id, 1.0))
    assert (result.accepted, result.late) == (1, 1)
    late = stored(app)[-1]
    assert (late.item_id, late.value, late.late, late.learn_value) == (d.item_ids[0], 1.0, True, None)
    assert learner.step(now=utcnow()) == 0
    assert learner.learned == learned and learner.model.policy.to_bytes() == weights
    assert learned_rows(app) == {(d.event_id, d.item_ids[0]): 1, (d.event_id, d.item_ids[1]): 1}


def test_the_same_reward_id_with_another_value_is_a_conflict_and_with_the_same_a_duplicate(app):
    d = log_decision(app, k=2)
    assert store(app, RewardIn(d.event_id, 0.5, reward_id="x")).accepted == 1
    conflict = store(app, RewardIn(d.event_id, 0.75, reward_id="x"))
    assert conflict.accepted == 0 and [(i, e.status, e.code) for i, e in conflict.refused] == [(0, 409, "reward_conflict")]
    again = store(app, RewardIn(d.event_id, 0.5, reward_id="x"))
    assert (again.accepted, again.duplicates, again.refused) == (0, 1, [])
    assert [(r.reward_key, r.value) for r in stored(app)] == [("x", 0.5)]


def test_client_reward_ids_cannot_collide_with_the_learners_settlement_rows(app, learner):
    d = log_decision(app, k=1)
    settle(app, learner)
    assert [(r.source, r.reward_key, r.is_default) for r in stored(app)] == [("settlement", "", True)]
    result = store(
        app, RewardIn(d.event_id, 1.0, reward_id="default"), RewardIn(d.event_id, 1.0, reward_id=""), RewardIn(d.event_id, 1.0)
    )
    assert (result.accepted, result.late, result.duplicates, result.refused) == (2, 2, 1, [])
    client_rows = [(r.reward_key, r.late, r.learn_value) for r in stored(app) if r.source == "client"]
    assert client_rows == [("default", True, None), ("", True, None)]
    assert learner.step(now=utcnow()) == 0


def test_a_deferred_event_never_activated_is_closed_unlearned_once_it_leaves_the_window(app, learner):
    d = log_decision(app, k=2, defer=True)
    age_events(app, app.config["FEEDLOOP"].reward_wait_seconds + 1)
    assert learner.settle_due(utcnow()) == 0  # still within the window: it may yet be activated
    age_events(app, app.config["FEEDLOOP"].reward_window_seconds)
    assert learner.settle_due(utcnow()) == 1
    assert learner.step(now=utcnow()) == 0 and learner.learned == 0 and stored(app) == []
    with Session(app.extensions["db_engine"]) as s:
        assert s.get(Event, d.event_id).settled_at is not None
    assert learner.settle_due(utcnow()) == 0  # no longer a settlement candidate
    with pytest.raises(ActivationRefused), write_session(app.extensions["db_engine"]) as s:
        activate(s, reward_rules(app.config["FEEDLOOP"]), d.event_id)
    with Session(app.extensions["db_engine"]) as s:
        assert s.exec(select(Event.activated_at).where(Event.id == d.event_id)).one() is None
