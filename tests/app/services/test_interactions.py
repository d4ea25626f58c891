"""Storing interaction events, their per-minute buckets and derived rewards, and reading the windowed activity
at a given time, through the services without HTTP."""

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from app.db import write_session
from app.models import ActivityMinute, Interaction, Item, utcnow
from app.services.interactions import (
    InteractionIn,
    RowError,
    activity_at,
    activity_from_log,
    event_rules,
    prune_activity,
    rebuild_activity,
    store_interactions,
)
from app.services.rewards import reward_rules
from feedback.windows import features, minute_of
from tests.helpers import log_decision
from tests.helpers import stored_rewards as stored


@pytest.fixture
def app(bare):
    with Session(bare.extensions["db_engine"]) as s:
        s.add(Item(id="b1", title="A book", category="books"))
        s.add(Item(id="s1", title="A shoe", category="shoes"))
        s.commit()
    return bare


def store(app, *rows: InteractionIn, now=None):
    settings = app.config["FEEDLOOP"]
    with write_session(app.extensions["db_engine"]) as s:
        return store_interactions(s, event_rules(settings), reward_rules(settings), list(rows), now=now)


def read(app, fn, *args):
    with Session(app.extensions["db_engine"]) as s:
        return fn(s, *args)


def test_valid_rows_are_stored_and_late_or_future_ones_refused_by_index(app):
    now = utcnow()
    result = store(
        app,
        InteractionIn("click", "alice", "b1", ts=now - timedelta(hours=23)),  # late, inside the window
        InteractionIn("click", "alice", "b1", ts=now - timedelta(days=1, seconds=1)),
        InteractionIn("impression", "alice", "b1"),
        InteractionIn("click", "alice", "b1", ts=now + timedelta(minutes=6)),
        now=now,
    )
    assert result.accepted == 2
    assert [e.index for e in result.errors] == [1, 3]
    assert all(isinstance(e, RowError) and e.field == "ts" for e in result.errors)
    rows = read(app, lambda s: s.exec(select(Interaction).order_by(Interaction.id)).all())
    assert [(r.type, r.category, r.ts == now) for r in rows] == [("click", "books", False), ("impression", "books", True)]


def test_buckets_add_up_across_batches_including_late_events(app):
    now = utcnow()
    store(app, InteractionIn("impression", "alice", "b1", ts=now), InteractionIn("click", "alice", "b1", ts=now), now=now)
    store(app, InteractionIn("click", "alice", "s1", ts=now - timedelta(minutes=30)), now=now)  # arrives late
    store(app, InteractionIn("impression", "alice", "b1", ts=now), now=now)
    act = read(app, activity_at, "user", "alice", now)
    assert act.counts["5m"] == {"click": 1, "impression": 2}
    assert act.counts["1h"] == {"click": 2, "impression": 2}
    assert act.click_rate("5m") == 0.5 and act.click_rate("1h") == 1.0
    assert sorted(act.categories) == ["books", "shoes"]
    item = read(app, activity_at, "item", "b1", now)
    assert item.counts["1d"] == {"click": 1, "impression": 2} and item.categories == []
    bucket = read(
        app,
        lambda s: s.get(ActivityMinute, ("user", "alice", minute_of(now), "impression", "")),
    )
    assert bucket.count == 2


def test_activity_in_the_past_leaves_out_later_events_and_matches_the_log(app):
    now = utcnow()
    earlier = now - timedelta(hours=2)
    store(app, InteractionIn("impression", "bob", "b1", ts=earlier), InteractionIn("click", "bob", "b1", ts=earlier), now=earlier)
    store(app, InteractionIn("purchase", "bob", "s1", ts=now), now=now)
    past = read(app, activity_at, "user", "bob", earlier)
    assert past.counts["5m"] == {"click": 1, "impression": 1}
    assert past.categories == ["books"]
    assert read(app, activity_from_log, "user", "bob", earlier) == past
    assert read(app, activity_from_log, "user", "bob", now) == read(app, activity_at, "user", "bob", now)
    assert read(app, activity_from_log, "item", "b1", now) == read(app, activity_at, "item", "b1", now)
    # The features a retraining computes for then are those serving computed then.
    assert features("user", read(app, activity_from_log, "user", "bob", earlier)) == features("user", past)


def test_events_naming_a_recommendation_become_one_reward_per_item_at_the_largest_mapped_value(app):
    logged = log_decision(app, k=3, user_id="carol")
    first, second = logged.item_ids[:2]
    result = store(
        app,
        InteractionIn("impression", "carol", first, event_id=logged.event_id),  # not mapped
        InteractionIn("click", "carol", first, event_id=logged.event_id),
        InteractionIn("purchase", "carol", first, event_id=logged.event_id),
        InteractionIn("click", "carol", second, event_id=logged.event_id),
        InteractionIn("purchase", "carol", "i9", event_id=logged.event_id),  # not shown: stored, no reward
        InteractionIn("click", "carol", first),  # names no recommendation
    )
    assert result.accepted == 6 and result.errors == []
    assert result.rewards.accepted == 2 and len(result.rewards.refused) == 1
    rewards = {(r.item_id, r.value, r.reward_key) for r in stored(app)}
    assert rewards == {(first, 1.0, f"event:{result.ids[2]}"), (second, 0.3, f"event:{result.ids[3]}")}
    assert sum(r.learn_value is not None for r in stored(app)) == 2  # learned once each, under "earliest"


def test_no_reward_is_derived_when_the_mapping_is_empty(app):
    app.config["FEEDLOOP"] = app.config["FEEDLOOP"].model_copy(update={"event_rewards": ""})
    logged = log_decision(app, k=1, user_id="dave")
    assert store(app, InteractionIn("purchase", "dave", logged.item_ids[0], event_id=logged.event_id)).accepted == 1
    assert stored(app) == []


def test_the_buckets_can_be_rebuilt_from_the_interactions(app):
    now = utcnow()
    store(app, InteractionIn("impression", "gus", "b1", ts=now), InteractionIn("click", "gus", "s1", ts=now - timedelta(hours=5)))
    store(app, InteractionIn("purchase", "gus", "b1", ts=now - timedelta(minutes=3)))
    before = {who: read(app, activity_at, kind, who, now) for kind, who in [("user", "gus"), ("item", "b1"), ("item", "s1")]}
    with write_session(app.extensions["db_engine"]) as s:
        assert rebuild_activity(s, chunk=2) == 3
    assert {
        who: read(app, activity_at, kind, who, now) for kind, who in [("user", "gus"), ("item", "b1"), ("item", "s1")]
    } == before


def test_pruning_deletes_only_counts_no_window_reads_and_leaves_the_activity_as_it_was(app):
    now = utcnow()
    old = now - timedelta(days=1, minutes=30)
    store(app, InteractionIn("click", "gus", "b1", ts=old), now=old)
    store(
        app, InteractionIn("click", "gus", "s1", ts=now - timedelta(hours=23)), InteractionIn("impression", "gus", "b1", ts=now)
    )
    before = read(app, activity_at, "user", "gus", now)
    with write_session(app.extensions["db_engine"]) as s:
        assert prune_activity(s, now) == 3  # the old click's user total, user category and item rows
    assert read(app, activity_at, "user", "gus", now) == before
    with Session(app.extensions["db_engine"]) as s:
        assert min(b.minute for b in s.exec(select(ActivityMinute))) >= minute_of(now - timedelta(days=1))
        assert len(s.exec(select(Interaction)).all()) == 3  # the record stays
