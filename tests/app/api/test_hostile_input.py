"""Bodies built to break the service (numbers too large to be finite, deep nesting, fuzzed contexts), a database
that goes away, and the docs page's handling of API keys."""

from __future__ import annotations

import json
import logging
import math
import random
from pathlib import Path

import pytest

from app.db import make_engine
from tests.helpers import events, keyed_client, recommend, stepped_models, stored_rewards

DOCS_JS = Path(__file__).resolve().parents[3] / "app" / "static" / "docs.js"


def post_raw(client, path: str, body: str, auth: dict):
    return client.post(path, data=body, content_type="application/json", headers=auth)


def strict_json(data: bytes):
    def refuse(name):
        raise ValueError(f"{name} in a response")

    return json.loads(data, parse_constant=refuse)


def test_a_number_too_large_to_be_finite_is_refused_and_nothing_is_stored(app):
    client, auth = keyed_client(app)
    event_id = recommend(client, auth)["event_id"]
    before = len(events(app))

    reward = post_raw(client, "/api/v1/rewards", f'{{"event_id": "{event_id}", "reward": 1e999}}', auth)
    context = post_raw(client, "/api/v1/recommendations", '{"user_id": "bob", "context": {"price": -1e999}}', auth)
    item = post_raw(
        client, "/api/v1/items", '{"items": [{"id": "huge", "title": "Huge", "attributes": {"weight": 1e999}}]}', auth
    )

    for response in (reward, context, item):
        assert response.status_code in (400, 422), response.json
        assert response.json["error"] in ("invalid_json", "validation_error")
    assert stored_rewards(app) == []
    assert len(events(app)) == before
    assert client.get("/api/v1/items/huge", headers=auth).status_code == 404


@pytest.mark.parametrize("depth", [33, 100, 2000])
def test_nesting_deeper_than_32_levels_is_a_400_not_a_500(app, depth):
    client, auth = keyed_client(app)
    deep = "[" * depth + "]" * depth
    for body in (f'{{"user_id": "bob", "context": {{"x": {deep}}}}}', deep):
        response = post_raw(client, "/api/v1/recommendations", body, auth)
        assert response.status_code == 400, response.data[:200]
        assert response.json["error"] == "invalid_json" and "nesting" in response.json["message"]


def test_nesting_of_exactly_32_levels_is_parsed(app):
    client, auth = keyed_client(app)
    for body in ("[" * 32 + "1" + "]" * 32, "[" * 31 + "{}" + "]" * 31):
        response = post_raw(client, "/api/v1/recommendations", body, auth)
        assert response.status_code == 422 and response.json["error"] == "validation_error", response.json


def test_a_context_number_beyond_a_billion_is_refused(app):
    client, auth = keyed_client(app)
    for value in (1e9 + 1, -(10**10), 10**30):
        response = client.post("/api/v1/recommendations", json={"user_id": "bob", "context": {"price": value}}, headers=auth)
        assert response.status_code == 422, response.json
        assert response.json["details"][0]["field"].startswith("context.price")
    assert recommend(client, auth, context={"price": 1e9, "count": -(10**9)})["items"]


def test_the_json_provider_never_writes_a_non_finite_number(app):
    for value in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError):
            app.json.dumps({"x": value})


def random_context(rng: random.Random) -> dict:
    def value():
        kind = rng.choice(["int", "float", "str", "bool"])
        if kind == "int":
            return rng.randint(-(10**9), 10**9)
        if kind == "float":
            return rng.uniform(-1e9, 1e9) * rng.choice([1, 1e-9, 1e-300])
        if kind == "str":
            return "".join(rng.choice("ab |:\t\n\\é😀") for _ in range(rng.randint(0, 12)))
        return rng.random() < 0.5

    return {f"f{rng.randint(0, 8)}": value() for _ in range(rng.randint(0, 6))}


def test_a_model_trained_on_fuzzed_rewards_and_contexts_answers_finite_scores(app, learner, clock):
    client, auth = keyed_client(app)
    stepped_models(app, clock)
    rng = random.Random(7)
    for _batch in range(4):
        for _ in range(50):
            body = {"user_id": f"u{rng.randint(0, 20)}", "context": random_context(rng), "k": rng.randint(1, 6)}
            answer = recommend(client, auth, **body)
            for shown in rng.sample(answer["items"], rng.randint(0, len(answer["items"]))):
                reward = {"event_id": answer["event_id"], "item_id": shown["id"], "reward": rng.random()}
                assert client.post("/api/v1/rewards", json=reward, headers=auth).status_code == 202
        learner.step()
        learner.publish()
        clock.advance(1)  # past the ModelStore's look interval: the next request loads the snapshot
    assert len(stored_rewards(app)) > 100

    versions = set()
    for _ in range(30):
        body = {"user_id": f"u{rng.randint(0, 20)}", "context": random_context(rng), "k": 6}
        response = client.post("/api/v1/recommendations", json=body, headers=auth)
        assert response.status_code == 200, response.json
        answer = strict_json(response.data)
        versions.add(answer["model_version"])
        for item in answer["items"]:
            assert math.isfinite(item["score"]) and math.isfinite(item["probability"]), item
            assert 0.0 < item["probability"] <= 1.0, item
    assert "v0" not in versions  # the trained model answered, not the initial one


UNREACHABLE = "postgresql+psycopg://feedloop_user@127.0.0.1:1/feedloop_secret_db"


def test_an_unreachable_database_answers_503_logs_once_and_recovers_without_a_restart(app, caplog):
    client, auth = keyed_client(app)
    event_id = recommend(client, auth)["event_id"]  # the key is now cached: the requests below reach the database
    engine, down = app.extensions["db_engine"], make_engine(UNREACHABLE)
    reward = {"event_id": event_id, "reward": 1.0}
    app.extensions["db_engine"] = down
    try:
        with caplog.at_level(logging.INFO):
            for _ in range(20):
                response = client.post("/api/v1/rewards", json=reward, headers=auth)
                assert response.status_code == 503
                assert response.json["error"] == "database_unavailable"
                assert int(response.headers["Retry-After"]) > 0
    finally:
        app.extensions["db_engine"] = engine
        down.dispose()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "database unavailable" in errors[0].getMessage()
    assert all(r.exc_info is None for r in caplog.records) and "Traceback" not in caplog.text

    caplog.clear()
    with caplog.at_level(logging.INFO):
        response = client.post("/api/v1/rewards", json=reward, headers=auth)
    assert response.status_code == 202, response.json
    assert len(stored_rewards(app)) == 1
    assert "reachable again" in caplog.text


def test_health_reports_the_database_down_without_naming_it(app, config):
    engine, down = app.extensions["db_engine"], make_engine(UNREACHABLE)
    app.extensions["db_engine"] = down
    try:
        response = app.test_client().get("/healthz")
    finally:
        app.extensions["db_engine"] = engine
        down.dispose()
    assert response.status_code == 503
    assert response.json["checks"]["database"] == {"status": "down"}
    body = response.get_data(as_text=True)
    for secret in ("127.0.0.1", "feedloop_user", "feedloop_secret_db", "psycopg", "postgres", config["home"], "feedloop.db"):
        assert secret not in body


def test_the_docs_page_does_not_keep_api_keys_in_local_storage():
    script = DOCS_JS.read_text()
    assert "SwaggerUIBundle" in script
    assert "persistAuthorization" not in script.replace("persistAuthorization: false", "")
