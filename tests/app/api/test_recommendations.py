import pytest
from sqlmodel import Session, select

from app.models import Event
from bandit.features import Candidate, Shared
from tests.helpers import CATALOGUE, make_app

URL = "/api/v1/recommendations"


def recommend(client, auth, **body) -> dict:
    response = client.post(URL, json={"user_id": "alice", **body}, headers=auth)
    assert response.status_code == 200, response.json
    return response.json


def events(app) -> list[Event]:
    with Session(app.extensions["db_engine"]) as s:
        return list(s.exec(select(Event)).all())


def test_recommendation_answers_k_distinct_items_with_probabilities(app, client, auth, catalogue):
    body = recommend(client, auth, k=4, context={"device": "mobile"})
    assert set(body) == {"event_id", "model_version", "items", "latency_ms", "fallback"}
    assert len(body["items"]) == 4 and len({i["id"] for i in body["items"]}) == 4
    assert all(set(i) == {"id", "title", "score", "probability"} for i in body["items"])
    assert all(0 < i["probability"] <= 1 for i in body["items"])
    assert body["fallback"] is False and body["latency_ms"] > 0


def test_the_logged_decision_matches_what_was_served(app, client, auth, catalogue):
    body = recommend(client, auth, k=3, context={"device": "mobile", "premium": True})
    logged = client.get(f"{URL}/{body['event_id']}", headers=auth).json
    assert [i["id"] for i in logged["items"]] == [i["id"] for i in body["items"]]
    assert [i["probability"] for i in logged["items"]] == [i["probability"] for i in body["items"]]
    assert logged["context"] == {"device": "mobile", "premium": True} and logged["user_id"] == "alice"
    assert logged["model_version"] == body["model_version"] and logged["rewards"] == []
    event = events(app)[0]
    assert len(event.candidates) == len(CATALOGUE)  # every candidate's features are kept to learn again later
    # The first slot's probability is the policy's pmf, over every logged candidate, at the chosen position.
    model = app.extensions["models"].current()
    assert model.version == event.model_version
    pmf = model.policy.distribution(Shared.from_dict(event.shared), [Candidate.from_dict(c) for c in event.candidates])
    assert len(pmf) == len(event.candidates) and float(sum(pmf)) == pytest.approx(1.0)
    first = event.slots[0]
    assert event.candidates[first["position"]]["id"] == first["item_id"] == body["items"][0]["id"]
    assert first["probability"] == pytest.approx(float(pmf[first["position"]]))


def test_exclude_and_deleted_items_never_appear(client, auth, catalogue):
    client.delete("/api/v1/items/pasta", headers=auth)
    for _ in range(10):
        ids = {i["id"] for i in recommend(client, auth, k=4, exclude=["curry", "pizza"])["items"]}
        assert ids.isdisjoint({"pasta", "curry", "pizza"})


def test_another_workers_edits_and_deletes_show_at_once(config, client, auth, catalogue):
    """Item titles come from a per-process cache; the change log keeps it current across workers."""
    other = make_app(config).test_client()
    recommend(client, auth, k=len(CATALOGUE))  # this worker has now read every item
    renamed = {**CATALOGUE[3], "title": "Studio headphones"}
    assert other.post("/api/v1/items", json={"items": [renamed]}, headers=auth).status_code == 200
    assert other.delete("/api/v1/items/drone", headers=auth).status_code == 204
    titles = {i["id"]: i["title"] for i in recommend(client, auth, k=len(CATALOGUE))["items"]}
    assert titles["phones"] == "Studio headphones" and "drone" not in titles


def test_k_larger_than_the_catalogue_returns_what_there_is(client, auth, catalogue):
    assert len(recommend(client, auth, k=50)["items"]) == len(CATALOGUE)


def test_a_query_steers_the_candidates(app, client, auth, catalogue):
    body = recommend(client, auth, k=len(CATALOGUE), query="flying camera")
    (event,) = [e for e in events(app) if e.id == body["event_id"]]
    similarity = {c["id"]: Candidate.from_dict(c).similarity for c in event.candidates}
    assert max(similarity, key=similarity.get) == "drone" and similarity["drone"] > 0


@pytest.mark.parametrize(
    "body, field",
    [
        ({"user_id": "a", "k": 0}, "k"),
        ({"user_id": "a", "k": -1}, "k"),
        ({"user_id": "a", "k": 10_000}, "k"),
        ({"user_id": "a", "k": "3"}, "k"),
        ({"user_id": "a", "colour": "red"}, "colour"),
        ({"k": 3}, "user_id"),
        ({"user_id": 7}, "user_id"),
        ({"user_id": "a", "context": {"device": ["x"]}}, "context.device"),
        ({"user_id": "a", "context": "mobile"}, "context"),
        ({"user_id": "a", "exclude": "pasta"}, "exclude"),
        ({"user_id": "a", "defer": "yes"}, "defer"),
    ],
)
def test_bad_requests_are_422_and_log_nothing(app, client, auth, catalogue, body, field):
    response = client.post(URL, json=body, headers=auth)
    assert response.status_code == 422
    assert response.json["details"][0]["field"].startswith(field)
    assert events(app) == []


def test_unknown_event_is_404(client, auth):
    assert client.get(f"{URL}/nope", headers=auth).status_code == 404


def test_an_empty_catalogue_recommends_nothing(client, auth):
    assert recommend(client, auth)["items"] == []


def make_popular(app, item_id: str, segment: str = "*") -> None:
    """Q-values of a trained model in which `item_id` is clearly the most popular item of the segment."""
    qvalues = app.extensions["models"].current().qvalues
    for _ in range(30):
        qvalues.update(item_id, segment, 1.0)
    for other in ("pasta", "curry", "pizza"):
        qvalues.update(other, segment, 0.1)


def test_a_broken_index_degrades_to_the_fallback_ranking(app, client, auth, catalogue):
    def broken(*_a, **_k):
        raise RuntimeError("index unavailable")

    app.extensions["catalogue"].search = broken
    make_popular(app, "novel")
    assert app.extensions["models"].current().qvalues.top("*", 1) == ["novel"]
    body = recommend(client, auth, k=3, query="pasta")
    assert body["fallback"] is True and len(body["items"]) == 3
    (event,) = events(app)
    assert event.fallback and [c["id"] for c in event.candidates][0] == "novel"  # popular first, then random
    logged = client.get(f"{URL}/{body['event_id']}", headers=auth).json
    assert [i["probability"] for i in logged["items"]] == [i["probability"] for i in body["items"]]


def test_a_broken_model_degrades_to_a_logged_fallback(app, client, auth, catalogue):
    class Broken:
        def choose(self, *a, **k):
            raise RuntimeError("model unavailable")

    app.extensions["models"].current().policy = Broken()
    body = recommend(client, auth, k=2)
    assert body["fallback"] is True and body["model_version"] == "fallback"
    assert [i["probability"] for i in body["items"]] == [1.0, 1.0]


def test_a_cold_start_user_sees_items_another_worker_just_stored(config, client, auth):
    other = make_app(config).test_client()
    assert other.post("/api/v1/items", json={"items": CATALOGUE[:2]}, headers=auth).status_code == 200
    body = recommend(client, auth, user_id="new-user", k=2)  # no profile: no search, only popular and random items
    assert {i["id"] for i in body["items"]} == {CATALOGUE[0]["id"], CATALOGUE[1]["id"]}


def test_an_encoder_failure_alone_degrades_to_a_logged_fallback(app, client, auth, catalogue, monkeypatch):
    def broken(*_a, **_k):
        raise RuntimeError("encoder unavailable")

    monkeypatch.setattr(app.extensions["catalogue"].encoder, "encode", broken)  # the process's one encoder
    body = recommend(client, auth, k=2, query="flying camera")
    assert body["fallback"] is True and len(body["items"]) == 2
    (event,) = events(app)
    assert event.id == body["event_id"] and event.fallback and event.query == "flying camera"
    assert [sl["item_id"] for sl in event.slots] == [i["id"] for i in body["items"]]
