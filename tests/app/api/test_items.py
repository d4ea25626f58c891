import pytest

from app.models import Item
from tests.helpers import CATALOGUE, item

URL = "/api/v1/items"


def stored_ids(app) -> set[str]:
    from sqlmodel import Session, select

    with Session(app.extensions["db_engine"]) as s:
        return set(s.exec(select(Item.id)).all())


def test_upsert_stores_items_and_get_returns_them(client, auth):
    response = client.post(URL, json={"items": CATALOGUE[:2]}, headers=auth)
    assert response.status_code == 200
    assert response.json == {"upserted": 2, "errors": []}
    got = client.get("/api/v1/items/pasta", headers=auth).json
    assert got["title"] == "Spaghetti carbonara" and got["tags"] == ["italian"] and got["category"] == "recipes"


def test_upsert_updates_an_existing_item_in_place(client, auth, catalogue):
    first = client.get("/api/v1/items/pasta", headers=auth).json
    response = client.post(URL, json={"items": [item("pasta", "Penne arrabbiata", attributes={"spicy": True})]}, headers=auth)
    assert response.json["upserted"] == 1
    got = client.get("/api/v1/items/pasta", headers=auth).json
    assert got["title"] == "Penne arrabbiata" and got["attributes"] == {"spicy": True}
    assert got["description"] == "" and got["created_at"] == first["created_at"]
    assert got["updated_at"] > first["updated_at"]


def test_valid_rows_are_stored_and_bad_rows_reported_by_index_and_field(app, client, auth):
    rows = [
        item("ok-1", "Fine"),
        {"title": "no id"},
        item("ok-2", 42),
        item("bad id/with slash", "x"),
        item("ok-3", "x", tags=["a", 7]),
        item("ok-4", "x", colour="red"),
        item("ok-1", "repeated"),
        item("ok-5", "x", attributes={"nested": {"a": 1}}),
    ]
    response = client.post(URL, json={"items": rows}, headers=auth)
    assert response.status_code == 200
    assert response.json["upserted"] == 1
    errors = {(e["index"], e["field"]) for e in response.json["errors"]}
    assert {(1, "id"), (2, "title"), (3, "id"), (4, "tags[1]"), (5, "colour"), (6, "id")} <= errors
    assert any(e["index"] == 7 and e["field"].startswith("attributes.nested") for e in response.json["errors"])
    assert next(e for e in response.json["errors"] if e["index"] == 5)["message"] == "unknown field"
    assert stored_ids(app) == {"ok-1"}
    assert client.get("/api/v1/items/ok-1", headers=auth).json["title"] == "Fine"


@pytest.mark.parametrize(
    "body",
    [
        {"items": [{"title": "missing id"}]},
        {"items": []},
        {"items": "not a list"},
        {"products": [item("a", "b")]},
        {"items": [item("a", "b")], "extra": 1},
        [item("a", "b")],
    ],
)
def test_a_body_with_no_valid_row_is_422_and_stores_nothing(app, client, auth, body):
    response = client.post(URL, json=body, headers=auth)
    assert response.status_code == 422
    assert response.json["error"] == "validation_error" and response.json["message"]
    assert stored_ids(app) == set()


@pytest.mark.parametrize(
    "field, value",
    [
        ("id", "x" * 257),
        ("title", "t" * 501),
        ("title", ""),
        ("description", "d" * 10_001),
        ("category", "c" * 101),
        ("tags", ["t"] * 51),
        ("attributes", {f"k{i}": i for i in range(51)}),
        ("attributes", {"long": "v" * 1001}),
        ("title", None),
        ("tags", "italian"),
    ],
)
def test_field_limits_and_types_are_enforced(client, auth, field, value):
    row = {**item("a", "title"), field: value}
    response = client.post(URL, json={"items": [row]}, headers=auth)
    assert response.status_code == 422
    assert response.json["details"][0]["field"].split("[")[0].split(".")[0] == field


def test_malformed_json_is_400(client, auth):
    response = client.post(URL, data='{"items": [', headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == 400 and response.json["error"] == "invalid_json"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(app, client, auth, constant):
    body = f'{{"items": [{{"id": "a", "title": "t", "attributes": {{"price": {constant}}}}}]}}'
    response = client.post(URL, data=body, headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == 400 and response.json["error"] == "invalid_json"
    assert stored_ids(app) == set()


def test_a_body_that_is_not_json_is_415(client, auth):
    response = client.post(URL, data="id=a", headers={**auth, "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415 and response.json["error"] == "unsupported_media_type"


def test_oversized_body_is_413_and_stores_nothing(config, app, client, auth):
    app.config["MAX_CONTENT_LENGTH"] = 50_000
    rows = [item(f"i{n}", "t", description="d" * 5000) for n in range(20)]
    response = client.post(URL, json={"items": rows}, headers=auth)
    assert response.status_code == 413 and response.json["error"] == "request_entity_too_large"
    assert stored_ids(app) == set()


def test_too_many_items_is_413(app, client, auth):
    limit = app.config["FEEDLOOP"].max_items_per_request
    rows = [item(f"i{n}", "t") for n in range(limit + 1)]
    response = client.post(URL, json={"items": rows}, headers=auth)
    assert response.status_code == 413 and response.json["error"] == "too_many_items"
    assert stored_ids(app) == set()


def test_delete_hides_the_item_and_unknown_ids_are_404(client, auth, catalogue):
    assert client.delete("/api/v1/items/pasta", headers=auth).status_code == 204
    for method in (client.get, client.delete):
        response = method("/api/v1/items/pasta", headers=auth)
        assert response.status_code == 404 and response.json["error"] == "not_found"
    assert client.get("/api/v1/items/never-was", headers=auth).status_code == 404


def test_a_deleted_item_comes_back_when_upserted_again(client, auth, catalogue):
    client.delete("/api/v1/items/pasta", headers=auth)
    client.post(URL, json={"items": [CATALOGUE[0]]}, headers=auth)
    assert client.get("/api/v1/items/pasta", headers=auth).status_code == 200
    hits = client.get("/api/v1/search?q=carbonara&k=1", headers=auth).json["items"]
    assert hits[0]["id"] == "pasta"


def test_wrong_method_is_405_json(client, auth):
    response = client.put(URL, json={}, headers=auth)
    assert response.status_code == 405 and response.json["error"] == "method_not_allowed"


def test_timestamps_are_answered_with_their_time_zone(client, auth, catalogue):
    """The document says date-time, which needs a zone; SQLite keeps none, so the column type restores UTC."""
    from datetime import datetime, timedelta

    got = client.get("/api/v1/items/pasta", headers=auth).json
    for field in ("created_at", "updated_at"):
        assert datetime.fromisoformat(got[field]).utcoffset() == timedelta(0), got[field]
    event = client.post("/api/v1/recommendations", json={"user_id": "u", "k": 1}, headers=auth).json["event_id"]
    client.post("/api/v1/rewards", json={"event_id": event, "reward": 1.0}, headers=auth)
    logged = client.get(f"/api/v1/recommendations/{event}", headers=auth).json
    assert datetime.fromisoformat(logged["rewards"][0]["received_at"]).utcoffset() == timedelta(0)
