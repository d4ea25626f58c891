import pytest
from sqlmodel import Session, select

from app import db
from app.models import ApiKey
from app.services.keys import revoke_key
from tests.helpers import new_key

PROTECTED = [
    ("get", "/api/v1/search?q=x"),
    ("post", "/api/v1/items"),
    ("get", "/api/v1/items/a"),
    ("delete", "/api/v1/items/a"),
    ("get", "/api/v1/items/a/similar"),
]


@pytest.mark.parametrize("method, url", PROTECTED)
@pytest.mark.parametrize("header", [None, "Bearer", "Bearer wrong-key", "Basic dXNlcjpwYXNz", "fl_abc"])
def test_api_routes_answer_401_json_without_a_valid_key(client, method, url, header):
    headers = {"Authorization": header} if header else {}
    response = getattr(client, method)(url, headers=headers, json={"items": []})
    assert response.status_code == 401
    assert response.json["error"] == "unauthorized" and "key" in response.json["message"]


def test_keys_are_stored_only_as_hashes(app):
    key = new_key(app, "mobile app")
    with Session(app.extensions["db_engine"]) as s:
        row = s.exec(select(ApiKey)).one()
    assert key not in (row.key_hash, row.prefix) and key.startswith(row.prefix)
    assert row.name == "mobile app" and len(row.key_hash) == 64


def test_a_revoked_key_stops_working(config, app):
    key = new_key(app)
    headers = {"Authorization": f"Bearer {key}"}
    assert app.test_client().get("/api/v1/items/a", headers=headers).status_code == 404
    with app.app_context(), db.write_session() as s:
        revoke_key(s, 1)
    app.extensions["api_keys"].__init__()  # what every worker does on its own within CACHE_SECONDS
    assert app.test_client().get("/api/v1/items/a", headers=headers).status_code == 401


def test_health_and_docs_need_no_key(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/openapi.json").status_code == 200
    assert client.get("/api/v1/docs").status_code == 200
