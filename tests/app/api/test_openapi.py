import re

import pytest
from jsonschema.validators import validator_for
from openapi_spec_validator import validate
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from app.api.schemas.common import ITEM_ID_PATTERN
from tests.helpers import keyed_client, make_app


def test_the_document_is_valid_openapi_and_lists_every_route(client):
    spec = client.get("/api/v1/openapi.json").json
    validate(spec)
    assert {"/api/v1/items", "/api/v1/items/{item_id}", "/api/v1/items/{item_id}/similar", "/api/v1/search"} <= set(spec["paths"])
    assert set(spec["paths"]["/api/v1/items/{item_id}"]) == {"get", "delete"}


def test_the_document_uses_the_validating_schemas(client):
    spec = client.get("/api/v1/openapi.json").json
    item = spec["components"]["schemas"]["ItemIn"]
    assert item["additionalProperties"] is False
    assert item["properties"]["title"]["maxLength"] == 500
    assert set(item["required"]) == {"id", "title"}
    params = {p["name"]: p for p in spec["paths"]["/api/v1/search"]["get"]["parameters"]}
    assert params["q"]["required"] and params["k"]["schema"]["maximum"] == 1000
    assert spec["paths"]["/api/v1/search"]["get"]["security"] == [{"bearer": []}]


def test_the_docs_page_loads_its_assets_from_this_server(client):
    page = client.get("/api/v1/docs").text
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page and "http" not in page.split("<body>")[1]
    for asset in (
        "/static/vendor/swagger-ui/swagger-ui-bundle.js",
        "/static/vendor/swagger-ui/swagger-ui.css",
        "/static/docs.js",
    ):
        assert client.get(asset).status_code == 200, asset


# Every status each operation can answer: 400/415/413 come with a JSON body, 422 with a body or a query string,
# 401 and 503 (database unreachable) with a key, the rest from the views themselves.
STATUSES = {
    ("post", "/api/v1/items"): {200, 400, 401, 503, 413, 415, 422},
    ("get", "/api/v1/items/{item_id}"): {200, 401, 503, 404},
    ("delete", "/api/v1/items/{item_id}"): {204, 401, 503, 404},
    ("get", "/api/v1/items/{item_id}/similar"): {200, 401, 503, 404, 422},
    ("get", "/api/v1/search"): {200, 401, 503, 422},
    ("post", "/api/v1/recommendations"): {200, 400, 401, 503, 413, 415, 422},
    ("get", "/api/v1/recommendations/{event_id}"): {200, 401, 503, 404},
    ("post", "/api/v1/recommendations/{event_id}/activate"): {204, 401, 503, 404, 410},
    ("post", "/api/v1/rewards"): {202, 400, 401, 503, 404, 409, 410, 413, 415, 422},
    ("post", "/api/v1/events"): {202, 400, 401, 503, 413, 415, 422},
    ("get", "/api/v1/users/{user_id}/activity"): {200, 401, 503, 422},
    ("get", "/api/v1/items/{item_id}/activity"): {200, 401, 503, 422},
    ("get", "/api/v1/loop"): {200, 401, 503},
    ("get", "/api/v1/openapi.json"): {200},
    ("get", "/api/v1/docs"): {200},
    ("post", "/api/v1/polls"): {201, 400, 401, 503, 404, 413, 415, 422},
    ("get", "/api/v1/polls"): {200, 401, 503},
    ("get", "/api/v1/polls/{poll_id}"): {200, 401, 503, 404},
    ("get", "/api/v1/polls/{poll_id}/results"): {200, 401, 503, 404},
    ("post", "/api/v1/polls/{poll_id}/close"): {200, 401, 503, 404},
    ("get", "/api/v1/polls/{token}/ask"): {200, 403, 404, 422, 429, 503},
    ("post", "/api/v1/polls/{token}/responses"): {201, 400, 403, 404, 409, 410, 413, 415, 422, 429, 503},
    ("post", "/api/v1/review-tasks"): {200, 201, 400, 401, 413, 415, 422, 503},
    ("get", "/api/v1/review-tasks"): {200, 401, 422, 503},
}


def operations(spec: dict):
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            yield method, path, op


def test_every_operation_documents_every_status_it_can_answer(client):
    spec = client.get("/api/v1/openapi.json").json
    documented = {(method, path): {int(s) for s in op["responses"]} for method, path, op in operations(spec)}
    assert documented == STATUSES
    for method, path, op in operations(spec):
        for status, response in op["responses"].items():
            if status != "204" and (method, path) not in {("get", "/api/v1/openapi.json"), ("get", "/api/v1/docs")}:
                assert "$ref" in response["content"]["application/json"]["schema"], (method, path, status)
            if int(status) >= 400:
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}


def test_401_is_documented_exactly_on_keyed_routes(app, client):
    spec = client.get("/api/v1/openapi.json").json
    keyed = {
        re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for rule in app.url_map.iter_rules()
        if getattr(app.blueprints.get(rule.endpoint.rpartition(".")[0]), "access", None) == "key"
    }
    for method, path, op in operations(spec):
        assert ("401" in op["responses"]) == (path in keyed) == (op["security"] == [{"bearer": []}]), (method, path)
        if path not in keyed:
            assert op["security"] == [], (method, path)


def test_body_routes_document_malformed_oversized_and_non_json_bodies(client):
    spec = client.get("/api/v1/openapi.json").json
    for method, path, op in operations(spec):
        if "requestBody" in op:
            assert {"400", "413", "415", "422"} <= set(op["responses"]), (method, path)
        else:
            assert not {"400", "413", "415"} & set(op["responses"]), (method, path)
    rewards = spec["paths"]["/api/v1/rewards"]["post"]["responses"]
    assert {"404", "409", "410"} <= set(rewards)
    assert {"404", "410"} <= set(spec["paths"]["/api/v1/recommendations/{event_id}/activate"]["post"]["responses"])


def test_path_parameters_are_typed(client):
    spec = client.get("/api/v1/openapi.json").json
    for method, path, op in operations(spec):
        names = set(re.findall(r"{([^}]+)}", path))
        params = {p["name"]: p for p in op["parameters"] if p["in"] == "path"}
        assert set(params) == names, (method, path)
        for name, param in params.items():
            schema = param["schema"]
            assert param["required"] and schema["type"] == "string", (method, path, name)
            assert schema["pattern"].startswith("^") and schema["pattern"].endswith("$"), (method, path, name)
            assert schema["minLength"] == 1 and schema["maxLength"] > 0, (method, path, name)
            if name == "item_id":
                assert schema["pattern"] == ITEM_ID_PATTERN and schema["maxLength"] == 256
            elif name == "event_id":
                assert schema["maxLength"] == 32
            elif name in ("poll_id", "token"):
                assert schema["maxLength"] <= 32
            elif name == "user_id":
                assert schema["pattern"] == "^[^/]+$" and schema["maxLength"] == 256
            else:
                raise AssertionError(f"untested path parameter {name} in {method} {path}")


def test_query_parameters_and_dict_keys_match_the_validation(client):
    spec = client.get("/api/v1/openapi.json").json
    schemas = spec["components"]["schemas"]
    for model, field in [("ItemIn", "attributes"), ("RecommendationRequest", "context")]:
        assert schemas[model]["properties"][field]["propertyNames"] == {"minLength": 1, "maxLength": 100}
    assert (
        schemas["RecommendationRequest"]["properties"]["k"] | {"minimum": 1, "maximum": 1000, "type": "integer"}
        == (schemas["RecommendationRequest"]["properties"]["k"])
    )
    q = {p["name"]: p for p in spec["paths"]["/api/v1/search"]["get"]["parameters"]}["q"]["schema"]
    assert q["minLength"] == 1 and q["pattern"] == r"[^\t\n\v\f\r ]"


@pytest.mark.parametrize("k, accepted", [(63.0, True), (63, True), (63.5, False), ("63", False), (True, False)])
def test_k_is_an_integer_as_json_schema_means_it(client, auth, catalogue, k, accepted):
    response = client.post("/api/v1/recommendations", json={"user_id": "alice", "k": k}, headers=auth)
    assert response.status_code == (200 if accepted else 422), response.json


def test_max_k_refuses_more_than_it_allows_within_the_documented_maximum(config):
    app = make_app({**config, "max_k": 300})
    try:
        client, auth = keyed_client(app)
        assert client.post("/api/v1/recommendations", json={"user_id": "a", "k": 250}, headers=auth).status_code == 200
        refused = client.post("/api/v1/recommendations", json={"user_id": "a", "k": 301}, headers=auth)
        assert refused.status_code == 422 and refused.json["details"] == [{"field": "k", "message": "at most 300"}]
        spec = client.get("/api/v1/openapi.json").json
        assert spec["components"]["schemas"]["RecommendationRequest"]["properties"]["k"]["maximum"] == 1000
    finally:
        app.extensions["db_engine"].dispose()


def conforms(spec: dict, method: str, path: str, response) -> None:
    """The status is documented for the operation and the body matches the document's schema for it."""
    documented = spec["paths"][path][method]["responses"]
    assert str(response.status_code) in documented, (method, path, response.status_code, response.data)
    content = documented[str(response.status_code)].get("content", {}).get("application/json")
    if content is None:
        assert response.status_code != 204 or response.data == b""
        return
    assert response.mimetype == "application/json", (method, path, response.status_code)
    registry = Registry().with_resource("urn:feedloop", DRAFT202012.create_resource(spec))
    schema = {"$ref": "urn:feedloop" + content["schema"]["$ref"]}
    validator = validator_for({"$schema": "https://json-schema.org/draft/2020-12/schema"})(schema, registry=registry)
    errors = [e.message for e in validator.iter_errors(response.json)]
    assert not errors, (method, path, response.status_code, response.json, errors)


def test_real_responses_match_the_documented_schemas(app, client, auth, catalogue):
    spec = client.get("/api/v1/openapi.json").json
    items, recs, rewards = "/api/v1/items", "/api/v1/recommendations", "/api/v1/rewards"
    seen = set()

    def check(method: str, path: str, url: str, **kwargs):
        response = client.open(url, method=method.upper(), **{"headers": auth, **kwargs})
        conforms(spec, method, path, response)
        seen.add((method, path, response.status_code))
        return response

    check("post", items, items, json={"items": [*catalogue, {"id": "bad id", "title": "x"}]})
    check("post", items, items, json={"items": [{"id": "bad id", "title": "x"}]})
    check("post", items, items, data="{", content_type="application/json")
    check("post", items, items, data="items", content_type="text/plain")
    check("post", items, items, json={"items": []}, headers={})
    check("get", items + "/{item_id}", items + "/pasta")
    check("get", items + "/{item_id}", items + "/nope")
    check("get", items + "/{item_id}/similar", items + "/pasta/similar?k=2")
    check("get", items + "/{item_id}/similar", items + "/nope/similar")
    check("get", items + "/{item_id}/similar", items + "/pasta/similar?k=0")
    check("get", "/api/v1/search", "/api/v1/search?q=pasta&k=3")
    check("get", "/api/v1/search", "/api/v1/search?q=%20")
    event = check("post", recs, recs, json={"user_id": "alice", "k": 3, "context": {"device": "mobile"}}).json
    deferred = check("post", recs, recs, json={"user_id": "bob", "k": 2, "defer": True}).json
    check("post", recs, recs, json={"user_id": "alice", "k": 0})
    check("post", rewards, rewards, json={"event_id": event["event_id"], "reward": 1})
    check("post", rewards, rewards, json={"event_id": event["event_id"], "reward": 0.5, "reward_id": "r1"})
    check("post", rewards, rewards, json={"event_id": event["event_id"], "reward": 0.7, "reward_id": "r1"})
    check(
        "post", rewards, rewards, json={"rewards": [{"event_id": event["event_id"], "reward": 1}, {"event_id": "x", "reward": 1}]}
    )
    check("post", rewards, rewards, json={"event_id": "nope", "reward": 1})
    check("post", rewards, rewards, json={"rewards": [{"event_id": "nope", "reward": 1}]})
    # interaction events: stored with a row refused (202), a body of the wrong shape (422)
    events = "/api/v1/events"
    clicked = {"type": "click", "user_id": "u1", "event_id": event["event_id"]}
    check("post", events, events, json={"events": [clicked, {"type": "?"}]})
    check("post", events, events, json={"events": []})
    users_activity, items_activity = "/api/v1/users/{user_id}/activity", "/api/v1/items/{item_id}/activity"
    check("get", users_activity, "/api/v1/users/u1/activity")
    check("get", users_activity, "/api/v1/users/u1/activity?at=yesterday")
    check("get", items_activity, "/api/v1/items/drone/activity?at=2026-11-27T12:00:00%2B00:00")
    check("get", items_activity, "/api/v1/items/drone/activity?since=1")
    check("get", recs + "/{event_id}", f"{recs}/{event['event_id']}")
    check("get", recs + "/{event_id}", f"{recs}/nope")
    check("post", recs + "/{event_id}/activate", f"{recs}/{deferred['event_id']}/activate")
    check("post", recs + "/{event_id}/activate", f"{recs}/nope/activate")
    check("get", "/api/v1/loop", "/api/v1/loop")
    check("get", "/api/v1/loop", "/api/v1/loop", headers={})
    check("delete", items + "/{item_id}", items + "/drone")
    check("delete", items + "/{item_id}", items + "/drone")
    check("get", "/api/v1/openapi.json", "/api/v1/openapi.json", headers={})
    check("get", "/api/v1/docs", "/api/v1/docs", headers={})
    too_big = "[" + " " * app.config["MAX_CONTENT_LENGTH"] + "]"
    check("post", recs, recs, data=too_big, content_type="application/json")
    # polls: apps with a key, respondents without one
    polls, public = "/api/v1/polls", "/api/v1/polls/{token}"
    poll = check("post", polls, polls, json={"question": "Useful?", "kind": "thumbs", "target": "event"}).json
    check("post", polls, polls, json={"question": "Useful?", "kind": "thumbs", "options": ["a", "b"]})
    check("post", polls, polls, json={"question": "Useful?", "kind": "rating", "target": "item", "target_item_id": "nope"})
    check("get", polls, polls)
    check("get", polls, polls, headers={})
    for path in (polls + "/{poll_id}", polls + "/{poll_id}/results"):
        check("get", path, path.replace("{poll_id}", str(poll["id"])))
        check("get", path, path.replace("{poll_id}", "999"))
    token, answers = poll["public_token"], f"{polls}/{poll['public_token']}/responses"
    check("get", public + "/ask", f"{polls}/{token}/ask?respondent_id=a&event_id={event['event_id']}", headers={})
    check("get", public + "/ask", f"{polls}/{token}/ask?respondent_id=a&event_id=f00", headers={})
    check("get", public + "/ask", f"{polls}/{token}/ask", headers={})
    check("get", public + "/ask", f"{polls}/{token}/ask?respondent_id=a", headers={"Origin": "https://evil.example.com"})
    answer = {"respondent_id": "a", "answer": "up", "event_id": event["event_id"]}
    check("post", public + "/responses", answers, json=answer, headers={})
    check("post", public + "/responses", answers, json=answer, headers={})
    check("post", public + "/responses", answers, json={**answer, "answer": "sideways"}, headers={})
    check("post", public + "/responses", f"{polls}/nope/responses", json=answer, headers={})
    check("post", polls + "/{poll_id}/close", f"{polls}/{poll['id']}/close")
    check("post", polls + "/{poll_id}/close", f"{polls}/999/close")
    check("post", public + "/responses", answers, json={**answer, "respondent_id": "b"}, headers={})
    # review tasks: enqueued (201), again (200), an unknown queue (422); listed, with a bad filter
    tasks, task = "/api/v1/review-tasks", {"queue": "anomalies", "subject_type": "user", "subject_id": "u1", "evidence": {"z": 6}}
    check("post", tasks, tasks, json=task)
    check("post", tasks, tasks, json=task)
    check("post", tasks, tasks, json={**task, "queue": "nope"})
    check("get", tasks, tasks + "?queue=anomalies&status=open")
    check("get", tasks, tasks + "?status=done")
    # a happy path and an error for every operation that has one
    for method, path in STATUSES:
        answered = {status for m, p, status in seen if (m, p) == (method, path)}
        assert any(s < 300 for s in answered), (method, path, answered)
        if set(STATUSES[method, path]) - {200, 202, 204}:
            assert any(s >= 400 for s in answered) or path.endswith("/docs"), (method, path, answered)
    assert {("post", rewards, 404), ("post", rewards, 409), ("post", items, 415), ("post", recs, 413)} <= seen
