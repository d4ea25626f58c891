"""GET /api/v1/recommendations/<event_id> follows a decision from the request to the models that learned it."""

from __future__ import annotations

import math

from tests.helpers import recommend

LINEAGE = {"served_by", "poll_answers", "review_decisions", "learned_by", "retrained_in", "evaluated_in"}


def test_a_decision_shows_its_activity_rewards_and_the_version_that_learned_it(app, client, auth, catalogue, learner):
    clicked = {"events": [{"type": "click", "user_id": "alice"}]}
    assert client.post("/api/v1/events", json=clicked, headers=auth).status_code == 202
    served = recommend(client, auth, k=2)
    before = client.get(f"/api/v1/recommendations/{served['event_id']}", headers=auth).json
    assert before["activity"]["user_click_5m"] == math.log1p(1) and before["created_at"]
    assert before["lineage"]["served_by"]["model_version"] == served["model_version"]
    assert before["lineage"]["learned_by"] == [] and before["lineage"]["retrained_in"] == []

    item = served["items"][0]["id"]
    reward = {"event_id": served["event_id"], "item_id": item, "reward": 1.0}
    assert client.post("/api/v1/rewards", json=reward, headers=auth).status_code == 202
    assert learner.step() == 1
    kept = learner.publish(keep=True)
    after = client.get(f"/api/v1/recommendations/{served['event_id']}", headers=auth).json
    [learned] = after["lineage"]["learned_by"]
    assert learned["version"] == kept and learned["source"] == "learner" and learned["inherited_from"] is None
    assert len(learned["reward_ids"]) == 1 and after["rewards"][0]["learned"]
    assert set(after["lineage"]) == LINEAGE


def test_the_lineage_is_described_in_the_openapi_document(client):
    schemas = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    assert {"served_by", "learned_by", "retrained_in"} <= set(schemas["Lineage"]["properties"])
    assert "lineage" in schemas["EventOut"]["required"]
