"""Activity features in the decision's lines: the user's in the shared namespace A, an item's in S, and what a
logged decision replays (its dicts through JSON, as the database hands them back) equal to what was served."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest

from bandit.features import Candidate, Shared, action_features, example, shared_features
from bandit.policy import PolicyConfig, VWPolicy

WHEN = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
ACTIVITY = {
    "user_click_1h": 0.6931,
    "user_impression_1h": 1.3863,
    "user_ctr_1h": 0.5,
    "user_cat_books": 1.0,
    "user_search_5m": 0.0,
}
ITEM = (("item_click_1h", 1.0986), ("item_ctr_1h", 0.25), ("item_has_ctr_1h", 1.0), ("item_impression_1h", 2.5649))


def logged(d: dict) -> dict:
    return json.loads(json.dumps(d))


def test_the_users_activity_is_the_shared_namespace_a_without_its_zeros():
    line = example(Shared.at("alice", {"device": "mobile"}, WHEN, ACTIVITY), [Candidate("b1")])[0]
    assert line.endswith("|A user_cat_books user_click_1h:0.6931 user_ctr_1h:0.5 user_impression_1h:1.3863")
    assert "user_search_5m" not in line


@pytest.mark.parametrize("activity", [None, {}, {"user_click_1h": 0.0}])
def test_no_activity_no_namespace_a(activity):
    shared = Shared.at("alice", {"device": "mobile"}, WHEN, activity)
    assert "A" not in shared_features(shared) and "|A" not in example(shared, [Candidate("b1")])[0]


def test_an_items_activity_joins_its_scores_in_s_alike_in_the_lines_and_in_explanations():
    c = Candidate("b1", "books", ("crime",), 0.5, 0.2, ITEM)
    line = example(Shared("alice"), [c])[1]
    assert line.endswith("|S sim:0.5 q:0.2 item_click_1h:1.0986 item_ctr_1h:0.25 item_has_ctr_1h:1 item_impression_1h:2.5649")
    assert action_features(c)["S"] == [("sim", 0.5), ("q", 0.2), *ITEM]  # what `explain` attributes


def test_a_logged_decision_replays_the_lines_that_were_served():
    shared = Shared.at("alice", {"device": "mobile", "visits": 3}, WHEN, ACTIVITY)
    candidates = [Candidate("b1", "books", ("crime",), 0.5, 0.2, ITEM), Candidate("g1", "gadgets", (), 0.1, 0.0)]
    replayed = Shared.from_dict(logged(shared.to_dict())), [Candidate.from_dict(logged(c.to_dict())) for c in candidates]
    assert example(*replayed, (1, -1.0, 0.5)) == example(shared, candidates, (1, -1.0, 0.5))
    assert "activity" not in candidates[1].to_dict()  # items without recent events add nothing to the log


def test_a_decision_logged_before_activity_features_loads_and_learns():
    shared = Shared.from_dict({"user_id": "alice", "context": {"device": "mobile"}, "hour": 9, "weekday": 2})
    candidates = [
        Candidate.from_dict({"id": f"b{n}", "category": "books", "tags": [], "similarity": 0.5, "q": 0.0}) for n in range(3)
    ]
    assert shared.activity == {} and all(c.activity == () for c in candidates)
    policy = VWPolicy(PolicyConfig(interactions=("UG", "AG")), seed=1)
    before = policy.predict(shared, candidates).scores[0]
    for _ in range(5):
        policy.learn(shared, candidates, 0, 1.0, 0.5)
    assert policy.predict(shared, candidates).scores[0] > before


def test_activity_crossed_with_item_groups_is_a_valid_interaction_and_learns_across_users():
    """`AG`: a user who clicked books lately is shown books, a user the model never saw included."""
    policy = VWPolicy(PolicyConfig(interactions=("AG",), cubics=()), seed=1)
    books = {"user_cat_books": 1.0}
    candidates = [Candidate("b1", "books"), Candidate("g1", "gadgets")]
    for n in range(50):
        policy.learn(Shared.at(f"u{n}", {}, WHEN, books), candidates, n % 2, 1.0 if n % 2 == 0 else 0.0, 0.5)
    assert np.argmax(policy.predict(Shared.at("newcomer", {}, WHEN, books), candidates).scores) == 0
    assert PolicyConfig.from_dict({**PolicyConfig().to_dict(), "interactions": ["UG", "AG"]}).interactions == ("UG", "AG")
