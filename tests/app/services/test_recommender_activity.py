"""Activity features on the hot path: the user's windowed activity is offered to the policy (namespace A) and
logged with the decision, the candidates carry their items' last-hour activity (in S), and learning from the
logged decision sees the very lines serving saw."""

from __future__ import annotations

import math
from datetime import timedelta

from sqlmodel import Session

from app import db
from app.models import Event, utcnow
from app.services.activity_features import user_features
from app.services.interactions import InteractionIn, activity_at, event_rules, store_interactions
from app.services.recommender import Request
from app.services.rewards import reward_rules
from bandit.features import Candidate, Shared, example
from feedback.windows import features


def post_events(app, *rows: InteractionIn, now=None) -> None:
    settings = app.config["FEEDLOOP"]
    with app.app_context(), db.write_session() as s:
        stored = store_interactions(s, event_rules(settings), reward_rules(settings), list(rows), now)
    assert not stored.errors, stored.errors


def logged(app, event_id: str) -> Event:
    with Session(app.extensions["db_engine"]) as s:
        return s.get(Event, event_id)


def served_lines(recommender) -> list[list[str]]:
    """Records the lines of every decision the policy is asked for, as the policy builds them."""
    seen = []
    model = recommender.models.current()
    choose = model.policy.choose

    def recording(shared, candidates, k, rng):
        seen.append(example(shared, candidates))
        return choose(shared, candidates, k, rng)

    model.policy.choose = recording
    return seen


def test_the_logged_decision_holds_the_activity_the_user_had_when_it_was_made(app, catalogue):
    now = utcnow()
    post_events(
        app,
        InteractionIn("impression", "alice", "novel", ts=now - timedelta(minutes=2)),
        InteractionIn("click", "alice", "novel", ts=now - timedelta(minutes=2)),
        InteractionIn("purchase", "alice", "drone", ts=now - timedelta(hours=3)),
    )
    decision = app.extensions["recommender"].recommend(Request(user_id="alice", k=3))
    event = logged(app, decision.event_id)
    activity = event.shared["activity"]
    assert activity["user_click_5m"] == activity["user_click_1h"] == math.log1p(1)
    assert activity["user_purchase_1h"] == 0 and activity["user_purchase_1d"] == math.log1p(1)
    assert activity["user_ctr_1h"] == 1.0 and activity["user_cat_books"] == activity["user_cat_gadgets"] == 1.0
    with Session(app.extensions["db_engine"]) as s:
        assert activity == features("user", activity_at(s, "user", "alice", event.created_at))
    post_events(app, InteractionIn("click", "alice", "pasta"))
    assert logged(app, decision.event_id).shared["activity"] == activity  # what was decided on stays as it was


def test_a_late_event_inside_the_window_changes_the_next_decision(app, catalogue):
    recommender = app.extensions["recommender"]
    before = logged(app, recommender.recommend(Request(user_id="bob", k=2)).event_id).shared["activity"]
    post_events(app, InteractionIn("click", "bob", "pasta", ts=utcnow() - timedelta(minutes=40)))  # arrives late
    after = logged(app, recommender.recommend(Request(user_id="bob", k=2)).event_id).shared["activity"]
    assert before["user_click_1h"] == 0 and after["user_click_1h"] == math.log1p(1)
    assert after["user_click_5m"] == 0 and after["user_cat_recipes"] == 1.0


def test_the_banded_read_counts_as_the_minutes_do(app):
    """The hot path sums the buckets per band in the database; feedback.windows over the minutes is the truth."""
    now = utcnow()
    ago = [timedelta(seconds=20), timedelta(minutes=4, seconds=50), timedelta(minutes=5), timedelta(minutes=59)]
    ago += [timedelta(hours=1), timedelta(hours=23, minutes=58), timedelta(hours=23, minutes=59, seconds=30)]
    kinds = ["impression", "click", "purchase", "search"]
    post_events(
        app,
        *[InteractionIn(kinds[n % 4], "carol", ["pasta", "novel", "drone"][n % 3], ts=now - a) for n, a in enumerate(ago)],
        now=now,
    )
    for at in (now, now + timedelta(minutes=3), now + timedelta(hours=1), now + timedelta(days=1)):
        with Session(app.extensions["db_engine"]) as s:
            expected = features("user", activity_at(s, "user", "carol", at))
        assert user_features(app.extensions["db_engine"], "carol", at) == expected, at


def test_learning_from_the_logged_decision_sees_the_lines_serving_saw(app, catalogue):
    recommender = app.extensions["recommender"]
    post_events(
        app,
        InteractionIn("impression", "dave", "novel"),
        InteractionIn("click", "dave", "novel"),
        InteractionIn("impression", "erin", "drone"),
    )
    recommender.item_activity.refresh()
    seen = served_lines(recommender)
    event = logged(app, recommender.recommend(Request(user_id="dave", k=3)).event_id)
    replayed = example(Shared.from_dict(event.shared), [Candidate.from_dict(c) for c in event.candidates])
    assert seen == [replayed]
    assert "|A " in replayed[0] and "user_click_1h" in replayed[0]
    active = {c["id"]: c["activity"] for c in event.candidates if "activity" in c}
    assert active == {  # every item of the small catalogue is a candidate; zeros are left out
        "novel": {"item_click_1h": 0.6931, "item_ctr_1h": 1.0, "item_has_ctr_1h": 1.0, "item_impression_1h": 0.6931},
        "drone": {"item_has_ctr_1h": 1.0, "item_impression_1h": 0.6931},
    }


def test_with_activity_features_off_the_policy_sees_none(config):
    from tests.helpers import keyed_client, make_app

    app = make_app({**config, "activity_features": False})
    keyed_client(app)
    post_events(app, InteractionIn("click", "frank", "novel"), InteractionIn("impression", "frank", "novel"))
    recommender = app.extensions["recommender"]
    recommender.item_activity.refresh()
    seen = served_lines(recommender)
    event = logged(app, recommender.recommend(Request(user_id="frank", k=3)).event_id)
    assert event.shared["activity"] == {} and not any("activity" in c for c in event.candidates)
    assert "|A" not in seen[0][0] and not any("item_" in line for line in seen[0])
    app.extensions["db_engine"].dispose()
