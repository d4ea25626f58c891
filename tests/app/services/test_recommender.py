"""The Recommender service without HTTP: one request syncs the catalogue once, takes the model once, and logs
the version of the model whose Q-values and policy it used."""

from sqlmodel import Session

from app.models import Event
from app.services.recommender import Request


def counted(obj, name: str, calls: list, before=None):
    original = getattr(obj, name)

    def wrapper(*a, **k):
        calls.append(name)
        if before is not None:
            before()
        return original(*a, **k)

    setattr(obj, name, wrapper)


def test_one_request_syncs_the_catalogue_once_and_reads_the_model_once(app, catalogue):
    recommender, calls = app.extensions["recommender"], []
    counted(recommender.catalogue, "sync", calls)
    counted(recommender.models, "current", calls)
    decision = recommender.recommend(Request(user_id="alice", k=3, query="flying camera"))
    assert len(decision.items) == 3 and not decision.fallback
    assert sorted(calls) == ["current", "sync"]


def test_the_logged_version_is_that_of_the_model_used_even_when_a_snapshot_lands_mid_request(
    app, client, auth, catalogue, learner, clock
):
    from app.services.model_store import ModelStore

    recommender = app.extensions["recommender"]
    store = recommender.models = app.extensions["models"] = ModelStore(app.config["FEEDLOOP"], clock=clock)
    first = store.current()
    body = client.post("/api/v1/recommendations", json={"user_id": "u", "k": 1, "context": {"device": "tv"}}, headers=auth).json
    client.post("/api/v1/rewards", json={"event_id": body["event_id"], "reward": 1.0}, headers=auth)
    assert learner.step() == 1  # the newer model has a Q-value the first one lacks
    published = []

    def publish_mid_request():
        if not published:
            published.append(learner.publish())
            clock.advance(1)
            assert store.current().version == published[0]  # the store serves the newer model now

    counted(recommender.catalogue, "describe", [], before=publish_mid_request)
    decision = recommender.recommend(Request(user_id="alice", k=6, context={"device": "tv"}))
    assert published and decision.model_version == first.version != published[0]
    with Session(app.extensions["db_engine"]) as s:
        event = s.get(Event, decision.event_id)
    assert event.model_version == first.version
    newer = store.current()
    rewarded = body["items"][0]["id"]
    assert newer.qvalues.get(rewarded, event.segment) != first.qvalues.get(rewarded, event.segment)
    assert {c["id"]: c["q"] for c in event.candidates} == {
        c["id"]: first.qvalues.get(c["id"], event.segment) for c in event.candidates
    }
