from datetime import timedelta

import pytest
from sqlmodel import Session, select

from app.models import Interaction, Item, utcnow
from tests.helpers import log_decision, new_key
from tests.helpers import stored_rewards as stored

URL = "/api/v1/events"


def keyed(app) -> tuple:
    """A client and a key's headers, on the bare app: events need no catalogue, encoder or index."""
    return app.test_client(), {"Authorization": f"Bearer {new_key(app)}"}


@pytest.fixture
def api(bare):
    return bare, *keyed(bare)


def interactions(app) -> list[Interaction]:
    with Session(app.extensions["db_engine"]) as s:
        return list(s.exec(select(Interaction).order_by(Interaction.id)))


def test_valid_events_are_stored_and_the_others_listed_by_index(api):
    app, client, auth = api
    now = utcnow()
    body = {
        "events": [
            {"type": "impression", "user_id": "alice", "item_id": "b1", "ts": now.isoformat()},
            {"type": "click", "user_id": "alice"},
            {"type": "click", "user_id": "alice", "ts": (now - timedelta(days=2)).isoformat()},  # too late
            {"type": "Click!", "user_id": "alice"},  # not a type
            {"type": "click", "user_id": "alice", "ts": "2026-11-27T12:00:00"},  # no time zone
            {"type": "search", "user_id": "alice", "properties": {"query": "boots", "results": 12}},
            {"type": "click", "user_id": "alice", "colour": "red"},
        ]
    }
    response = client.post(URL, json=body, headers=auth)
    assert response.status_code == 202
    assert response.json["accepted"] == 3
    assert [(e["index"], e["field"]) for e in response.json["errors"]] == [(2, "ts"), (3, "type"), (4, "ts"), (6, "colour")]
    assert all(e["message"] for e in response.json["errors"])
    assert [(i.type, i.properties) for i in interactions(app)] == [
        ("impression", {}),
        ("click", {}),
        ("search", {"query": "boots", "results": 12}),
    ]


@pytest.mark.parametrize(
    "body",
    [[], {"events": []}, {"events": {}}, {"rows": [{"type": "click", "user_id": "a"}]}, "click", None, '{"events": ['],
)
def test_a_body_of_the_wrong_shape_is_refused_and_stores_nothing(api, body):
    app, client, auth = api
    raw = body if isinstance(body, str) and body.startswith("{") else None
    response = (
        client.post(URL, json=body, headers=auth)
        if raw is None
        else client.post(URL, data=raw, content_type="application/json", headers=auth)
    )
    assert response.status_code in ((415,) if body is None else (400, 422)) and response.json["error"]
    assert interactions(app) == []


def test_more_events_than_a_request_may_carry_are_refused(bare):
    bare.config["FEEDLOOP"] = bare.config["FEEDLOOP"].model_copy(update={"max_items_per_request": 2})
    client, auth = keyed(bare)
    response = client.post(URL, json={"events": [{"type": "click", "user_id": "a"}] * 3}, headers=auth)
    assert response.status_code == 413 and interactions(bare) == []


def test_a_key_is_required(api):
    _, client, _ = api
    assert client.post(URL, json={"events": [{"type": "click", "user_id": "a"}]}).status_code == 401


def test_a_purchase_naming_a_recommendation_rewards_its_item(api):
    app, client, auth = api
    logged = log_decision(app, k=2, user_id="erin")
    item = logged.item_ids[1]
    events = [
        {"type": "click", "user_id": "erin", "item_id": item, "event_id": logged.event_id},
        {"type": "purchase", "user_id": "erin", "item_id": item, "event_id": logged.event_id},
    ]
    assert client.post(URL, json={"events": events}, headers=auth).json == {"accepted": 2, "errors": []}
    assert [(r.item_id, r.value, r.reward_key.startswith("event:")) for r in stored(app)] == [(item, 1.0, True)]


def test_apps_cannot_send_rewards_under_the_keys_of_event_rewards(api):
    _, client, auth = api
    logged = log_decision(api[0], k=1)
    body = {"event_id": logged.event_id, "reward": 1.0, "reward_id": "event:1"}
    assert client.post("/api/v1/rewards", json=body, headers=auth).status_code == 422


def test_a_users_activity_shows_counts_rates_categories_and_features(api):
    app, client, auth = api
    with Session(app.extensions["db_engine"]) as s:
        s.add(Item(id="b1", title="A book", category="books"))
        s.commit()
    now = utcnow()
    events = [{"type": "impression", "user_id": "fay", "item_id": "b1"}] * 4 + [
        {"type": "click", "user_id": "fay", "item_id": "b1"},
        {"type": "click", "user_id": "fay", "item_id": "b1", "ts": (now - timedelta(hours=3)).isoformat()},
    ]
    assert client.post(URL, json={"events": events}, headers=auth).json["accepted"] == 6
    body = client.get("/api/v1/users/fay/activity", headers=auth).json
    assert body["counts"] == {
        "5m": {"click": 1, "impression": 4},
        "1h": {"click": 1, "impression": 4},
        "1d": {"click": 2, "impression": 4},
    }
    assert body["click_rate"] == {"5m": 0.25, "1h": 0.25, "1d": 0.5}
    assert body["categories"] == ["books"]
    assert body["features"]["user_cat_books"] == 1.0 and body["features"]["user_ctr_1d"] == 0.5
    item = client.get("/api/v1/items/b1/activity", headers=auth).json
    assert item["counts"]["1d"] == {"click": 2, "impression": 4} and "item_ctr_1h" in item["features"]
    before = client.get("/api/v1/users/fay/activity", query_string={"at": (now - timedelta(hours=1)).isoformat()}, headers=auth)
    assert before.json["counts"]["1d"] == {"click": 1} and before.json["click_rate"]["1d"] is None
    nobody = client.get("/api/v1/users/nobody/activity", headers=auth).json
    assert nobody["counts"]["5m"] == {} and nobody["categories"] == []
    assert client.get("/api/v1/users/fay/activity?at=soon", headers=auth).status_code == 422
    assert client.get("/api/v1/users/fay/activity").status_code == 401
