"""POST and GET /api/v1/review-tasks: idempotent enqueue, clear 422s that store nothing, filters and paging."""

from __future__ import annotations

import pytest
from sqlmodel import Session, func, select

from app.models import ReviewTask
from tests.helpers import new_key

URL = "/api/v1/review-tasks"


@pytest.fixture
def api(bare):
    return bare.test_client(), {"Authorization": f"Bearer {new_key(bare)}"}


def count(app) -> int:
    with Session(app.extensions["db_engine"]) as s:
        return s.exec(select(func.count()).select_from(ReviewTask)).one()


def post(api, **body):
    client, auth = api
    return client.post(URL, json=body, headers=auth)


def test_enqueue_answers_201_then_200_with_the_same_id_for_the_same_task(bare, api):
    evidence = {"rewards_per_hour": 340, "series": {"rewards": [3, 4, 90]}, "x": ["09", "10", "11"]}
    first = post(api, queue="anomalies", subject_type="user", subject_id="u-42", evidence=evidence, priority=5)
    assert first.status_code == 201 and first.json == {"id": first.json["id"], "created": True}
    reordered = dict(reversed(list(evidence.items())))
    again = post(api, queue="anomalies", subject_type="user", subject_id="u-42", evidence=reordered)
    assert again.status_code == 200 and again.json == {"id": first.json["id"], "created": False}
    other = post(api, queue="anomalies", subject_type="user", subject_id="u-42", evidence={"rewards_per_hour": 341})
    assert other.status_code == 201 and other.json["id"] != first.json["id"]
    assert count(bare) == 2


def test_an_unknown_queue_is_a_clear_422(bare, api):
    response = post(api, queue="fraud", subject_type="user", subject_id="u1")
    assert response.status_code == 422 and response.json["error"] == "unknown_queue"
    assert "anomalies" in response.json["message"] and response.json["details"][0]["field"] == "queue"
    assert count(bare) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"queue": "anomalies", "subject_type": "account", "subject_id": "u"}, "subject_type"),
        ({"queue": "anomalies", "subject_type": "user", "subject_id": ""}, "subject_id"),
        ({"queue": "anomalies", "subject_type": "user", "subject_id": "x" * 257}, "subject_id"),
        ({"queue": "anomalies", "subject_type": "user", "subject_id": "u", "priority": 10**6}, "priority"),
        ({"queue": "anomalies", "subject_type": "user", "subject_id": "u", "priority": "5"}, "priority"),
        ({"queue": "anomalies", "subject_type": "user", "subject_id": "u", "evidence": [1]}, "evidence"),
        ({"queue": "anomalies", "subject_type": "user", "subject_id": "u", "evidence": {"b": "x" * 20_000}}, "body.evidence"),
        ({"queue": "anomalies", "subject_type": "user", "subject_id": "u", "evidence": {"series": {"a": ["x"]}}}, "series"),
        ({"queue": "anomalies", "subject_type": "user", "subject_id": "u", "owner": "me"}, "owner"),
        ({"subject_type": "user", "subject_id": "u"}, "queue"),
    ],
)
def test_invalid_tasks_are_refused_and_nothing_is_stored(bare, api, body, field):
    response = api[0].post(URL, json=body, headers=api[1])
    assert response.status_code == 422, response.json
    assert any(field in d["field"] for d in response.json["details"]), response.json
    assert count(bare) == 0


def test_non_finite_and_deep_evidence_are_refused(bare, api):
    client, auth = api
    headers = {**auth, "Content-Type": "application/json"}
    body = '{"queue": "anomalies", "subject_type": "user", "subject_id": "u", "evidence": {"z": 1e999}}'
    assert client.post(URL, data=body, headers=headers).status_code == 400
    deep = '{"queue": "anomalies", "subject_type": "user", "subject_id": "u", "evidence": ' + '{"a": ' * 8 + "1" + "}" * 9
    response = client.post(URL, data=deep, headers=headers)
    assert response.status_code == 422 and "deeper" in response.json["message"]
    assert count(bare) == 0


def test_listing_filters_and_pages(api):
    ids = [post(api, queue="anomalies", subject_type="user", subject_id=f"u{n}").json["id"] for n in range(3)]
    item = post(api, queue="labeling", subject_type="item", subject_id="i1", evidence={"p": 0.3}).json["id"]
    client, auth = api
    body = client.get(f"{URL}?queue=anomalies&status=open&limit=2", headers=auth).json
    assert [t["id"] for t in body["tasks"]] == ids[:2] and body["next"] == ids[1]
    rest = client.get(f"{URL}?queue=anomalies&status=open&limit=2&after={body['next']}", headers=auth).json
    assert [t["id"] for t in rest["tasks"]] == ids[2:] and rest["next"] is None
    (task,) = client.get(f"{URL}?subject_type=item", headers=auth).json["tasks"]
    assert {k: task[k] for k in ("id", "queue", "subject_type", "subject_id", "status", "priority", "evidence", "decision")} == {
        "id": item,
        "queue": "labeling",
        "subject_type": "item",
        "subject_id": "i1",
        "status": "open",
        "priority": 0,
        "evidence": {"p": 0.3},
        "decision": None,
    }
    assert client.get(f"{URL}?status=resolved", headers=auth).json == {"tasks": [], "next": None}


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("queue=fraud", "unknown_queue"),
        ("status=done", "validation_error"),
        ("sort=queue", "validation_error"),
        ("limit=0", "validation_error"),
    ],
)
def test_bad_filters_are_a_clear_422(api, query, error):
    response = api[0].get(f"{URL}?{query}", headers=api[1])
    assert response.status_code == 422 and response.json["error"] == error


def test_both_routes_need_a_key(api):
    client, _ = api
    assert client.get(URL).status_code == 401
    assert client.post(URL, json={"queue": "anomalies", "subject_type": "user", "subject_id": "u"}).status_code == 401
