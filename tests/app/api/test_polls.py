"""The polls API: apps create and read polls with a key; respondents ask and answer without one, from the
poll's allowed origins only, within rate limits, and bad or replayed answers store nothing."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from app.models import PollAsk, PollResponse
from app.services.learner import Learner
from tests.helpers import bare_app, log_decision, new_key, stored_rewards

SHOP = "https://shop.example.com"
THUMBS = {"question": "Was this useful?", "kind": "thumbs", "allowed_origins": [SHOP]}


@pytest.fixture
def api(bare):
    return bare.test_client(), {"Authorization": f"Bearer {new_key(bare)}"}


def create(api, **body) -> dict:
    client, auth = api
    response = client.post("/api/v1/polls", json={**THUMBS, **body}, headers=auth)
    assert response.status_code == 201, response.json
    return response.json


def answer(client, token, body, **headers):
    return client.post(f"/api/v1/polls/{token}/responses", json=body, headers=headers)


def responses(app) -> list[PollResponse]:
    with Session(app.extensions["db_engine"]) as s:
        return list(s.exec(select(PollResponse)).all())


def test_an_app_creates_a_poll_and_gets_its_embed(bare, api):
    created = create(api)
    assert set(created) == {"id", "public_token", "embed_url"}
    assert created["embed_url"] == f"http://localhost/p/{created['public_token']}"
    client, auth = api
    poll = client.get(f"/api/v1/polls/{created['id']}", headers=auth).json
    assert (poll["question"], poll["status"], poll["responses"], poll["allowed_origins"]) == (
        "Was this useful?",
        "open",
        0,
        [SHOP],
    )
    assert [p["id"] for p in client.get("/api/v1/polls", headers=auth).json["polls"]] == [created["id"]]


def test_the_embed_url_uses_the_public_url(config):
    app = bare_app({**config, "public_url": "https://feedloop.example.com/"})
    created = create((app.test_client(), {"Authorization": f"Bearer {new_key(app)}"}))
    assert created["embed_url"] == f"https://feedloop.example.com/p/{created['public_token']}"
    app.extensions["db_engine"].dispose()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"question": ""}, "question"),
        ({"kind": "stars"}, "kind"),
        ({"kind": "single_choice"}, "options"),
        ({"kind": "single_choice", "options": ["a", "A"]}, "options"),
        ({"options": ["a", "b"]}, "options"),
        ({"sample_share": 0}, "sample_share"),
        ({"allowed_origins": ["https://shop.example.com/embed"]}, "allowed_origins[0]"),
        ({"allowed_origins": ["*"]}, "allowed_origins[0]"),
        ({"starts_at": "2026-12-02T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z"}, "ends_at"),
        ({"reward_map": {"sideways": 1}}, "reward_map.sideways"),
        ({"reward_map": {"up": 2}}, "reward_map.up"),
        ({"uncertain_only": True}, "uncertain_only"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_an_invalid_poll_is_refused_with_the_field(bare, api, body, field):
    client, auth = api
    response = client.post("/api/v1/polls", json={**THUMBS, **body}, headers=auth)
    assert response.status_code == 422, response.json
    assert any(d["field"].startswith(field) for d in response.json["details"]), response.json
    assert client.get("/api/v1/polls", headers=auth).json["polls"] == []


def test_an_item_poll_names_an_item_of_the_catalogue(api):
    client, auth = api
    response = client.post("/api/v1/polls", json={**THUMBS, "target": "item", "target_item_id": "nope"}, headers=auth)
    assert (response.status_code, response.json["error"]) == (404, "unknown_item")


def test_polls_need_a_key_and_unknown_ones_are_404(api):
    client, auth = api
    assert client.post("/api/v1/polls", json=THUMBS).status_code == 401
    for url in ("/api/v1/polls/999", "/api/v1/polls/999/results", "/api/v1/polls/abc"):
        assert client.get(url, headers=auth).status_code == 404
    assert answer(client, "unknowntoken", {"respondent_id": "a", "answer": "up"}).status_code == 404
    assert client.get("/api/v1/polls/unknowntoken/ask?respondent_id=a").status_code == 404


def test_a_respondent_is_asked_answers_and_the_results_count_it(bare, api):
    client, auth = api
    poll = create(api)
    asked = client.get(f"/api/v1/polls/{poll['public_token']}/ask?respondent_id=alice").json
    assert asked == {"ask": True, "reason": None, "poll": {"question": "Was this useful?", "kind": "thumbs", "options": None}}
    response = answer(client, poll["public_token"], {"respondent_id": "alice", "answer": "up"})
    assert response.status_code == 201, response.json
    assert client.get(f"/api/v1/polls/{poll['public_token']}/ask?respondent_id=alice").json == {
        "ask": False,
        "reason": "answered",
        "poll": None,
    }
    results = client.get(f"/api/v1/polls/{poll['id']}/results", headers=auth).json
    assert (results["responses"], results["counts"], results["response_rate"]) == (1, {"up": 1, "down": 0}, 1.0)


def test_fatigue_is_said_in_json_and_a_shown_poll_can_still_be_answered(bare, api):
    client, _ = api
    first, second = create(api), create(api)
    assert client.get(f"/api/v1/polls/{first['public_token']}/ask?respondent_id=alice").json["ask"]
    quiet = client.get(f"/api/v1/polls/{second['public_token']}/ask?respondent_id=alice")
    assert quiet.status_code == 200 and quiet.json == {"ask": False, "reason": "quiet_period", "poll": None}
    assert answer(client, first["public_token"], {"respondent_id": "alice", "answer": "down"}).status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {"respondent_id": "alice", "answer": "sideways"},
        {"respondent_id": "alice", "answer": True},
        {"respondent_id": "alice", "answer": 1.5},
        {"respondent_id": "alice", "answer": None},
        {"respondent_id": "", "answer": "up"},
        {"respondent_id": "x" * 257, "answer": "up"},
        {"respondent_id": "alice", "answer": "x" * 2001},
        {"respondent_id": "alice", "answer": ["up"] * 21},
        {"respondent_id": "alice", "answer": "up", "event_id": "not-an-id!"},
        {"respondent_id": "alice", "answer": "up", "extra": 1},
        {"answer": "up"},
    ],
)
def test_invalid_and_oversized_answers_store_nothing(bare, api, body):
    client, _ = api
    poll = create(api)
    response = answer(client, poll["public_token"], body)
    assert response.status_code == 422, response.json
    assert responses(bare) == []


def test_malformed_bodies_store_nothing(bare, api):
    client, _ = api
    token = create(api)["public_token"]
    url = f"/api/v1/polls/{token}/responses"
    assert client.post(url, data='{"respondent_id": "a", "answer": NaN}', content_type="application/json").status_code == 400
    assert client.post(url, data="answer=up", content_type="application/x-www-form-urlencoded").status_code == 415
    assert responses(bare) == []


def test_a_replayed_answer_is_409_and_stores_nothing(bare, api):
    client, _ = api
    token = create(api)["public_token"]
    assert answer(client, token, {"respondent_id": "alice", "answer": "up"}).status_code == 201
    replay = answer(client, token, {"respondent_id": "alice", "answer": "down"})
    assert (replay.status_code, replay.json["error"]) == (409, "already_answered")
    assert [r.answer for r in responses(bare)] == ["up"]


def test_a_closed_poll_takes_no_answer(bare, api):
    client, auth = api
    poll = create(api)
    closed = client.post(f"/api/v1/polls/{poll['id']}/close", headers=auth)
    assert closed.status_code == 200 and closed.json["status"] == "closed"
    assert answer(client, poll["public_token"], {"respondent_id": "alice", "answer": "up"}).status_code == 410
    assert client.get(f"/api/v1/polls/{poll['public_token']}/ask?respondent_id=alice").json["reason"] == "closed"
    assert responses(bare) == []


def test_an_answer_about_an_event_is_its_reward_learned_once(bare, api):
    client, _ = api
    logged = log_decision(bare, k=3)
    token = create(api, target="event", kind="rating", allowed_origins=[])["public_token"]
    response = answer(client, token, {"respondent_id": "alice", "answer": 4, "event_id": logged.event_id, "item_id": "i2"})
    assert response.status_code == 201, response.json
    assert response.json["reward_value"] == 0.75
    (reward,) = stored_rewards(bare)
    assert (reward.item_id, reward.value, reward.reward_key) == ("i2", 0.75, f"poll:{response.json['id']}")
    learner = Learner(bare.config["FEEDLOOP"], bare.extensions["db_engine"])
    assert learner.step() == 1
    assert learner.step() == 0
    unknown = answer(client, token, {"respondent_id": "bob", "answer": 4, "event_id": "f" * 32})
    shown_not = answer(client, token, {"respondent_id": "bob", "answer": 4, "event_id": logged.event_id, "item_id": "i7"})
    assert (unknown.status_code, shown_not.status_code) == (404, 422)
    assert len(stored_rewards(bare)) == 1 and len(responses(bare)) == 1


def test_cors_answers_only_the_polls_origins(bare, api):
    client, _ = api
    token = create(api)["public_token"]
    allowed = answer(client, token, {"respondent_id": "a", "answer": "up"}, Origin=SHOP)
    assert allowed.status_code == 201
    assert allowed.headers["Access-Control-Allow-Origin"] == SHOP
    assert "Origin" in allowed.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in allowed.headers
    denied = answer(client, token, {"respondent_id": "b", "answer": "up"}, Origin="https://evil.example.com")
    assert (denied.status_code, denied.json["error"]) == (403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in denied.headers
    assert [r.respondent_id for r in responses(bare)] == ["a"]
    no_origin = answer(client, token, {"respondent_id": "c", "answer": "up"})  # an app's server
    assert no_origin.status_code == 201 and "Access-Control-Allow-Origin" not in no_origin.headers


def test_preflight_is_answered_for_allowed_origins_only(api):
    client, _ = api
    token = create(api)["public_token"]
    url = f"/api/v1/polls/{token}/responses"
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    ok = client.options(url, headers={**preflight, "Origin": SHOP})
    assert ok.status_code == 200
    assert ok.headers["Access-Control-Allow-Origin"] == SHOP
    assert "POST" in ok.headers["Access-Control-Allow-Methods"]
    assert ok.headers["Access-Control-Allow-Headers"].lower() == "content-type"
    assert "Access-Control-Allow-Credentials" not in ok.headers
    denied = client.options(url, headers={**preflight, "Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in denied.headers
    ask = client.options(f"/api/v1/polls/{token}/ask", headers={**preflight, "Origin": SHOP})
    assert ask.headers["Access-Control-Allow-Origin"] == SHOP


def test_asks_from_a_foreign_origin_are_refused_and_not_recorded(bare, api):
    client, _ = api
    token = create(api)["public_token"]
    assert (
        client.get(f"/api/v1/polls/{token}/ask?respondent_id=a", headers={"Origin": "http://shop.example.com"}).status_code == 403
    )
    with Session(bare.extensions["db_engine"]) as s:
        assert s.exec(select(PollAsk)).all() == []


def test_answers_are_rate_limited_per_respondent(config):
    app = bare_app({**config, "respondent_rate_limit": "3/minute"})
    client, auth = app.test_client(), {"Authorization": f"Bearer {new_key(app)}"}
    token = create((client, auth), allow_multiple=True)["public_token"]
    statuses = [answer(client, token, {"respondent_id": "alice", "answer": "up"}).status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 429]
    assert answer(client, token, {"respondent_id": "bob", "answer": "up"}).status_code == 201
    assert client.get(f"/api/v1/polls/{token}/ask?respondent_id=alice").status_code == 429  # shared by the routes
    assert len(responses(app)) == 4
    app.extensions["db_engine"].dispose()


def test_public_routes_are_rate_limited_per_client_address(config):
    app = bare_app({**config, "public_rate_limit": "2/minute"})
    client, auth = app.test_client(), {"Authorization": f"Bearer {new_key(app)}"}
    token = create((client, auth))["public_token"]
    statuses = [client.get(f"/api/v1/polls/{token}/ask?respondent_id=r{n}").status_code for n in range(3)]
    assert statuses == [200, 200, 429]
    other = client.get(f"/api/v1/polls/{token}/ask?respondent_id=r9", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 200
    app.extensions["db_engine"].dispose()
