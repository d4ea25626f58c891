"""A serving worker loads new model snapshots and the items' activity counts between requests, or in its own
thread while it is idle: a request never loads, nor does the thread while a request runs."""

from __future__ import annotations

import threading
import time

import pytest

from app.services import activity_features, model_store
from app.services.background import IDLE_SECONDS, Freshener
from app.services.interactions import InteractionIn
from app.services.recommender import Request
from tests.app.services.test_recommender_activity import post_events


def wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """What was loaded, in order: "model" or "activity"."""
    done = []
    for module, name, what in ((model_store, "load_snapshot", "model"), (activity_features, "load", "activity")):

        def recorded(*a, _original=getattr(module, name), _what=what, **k):
            done.append(_what)
            return _original(*a, **k)

        monkeypatch.setattr(module, name, recorded)
    return done


@pytest.fixture
def worker(app):
    """The app's freshener, started as a serving worker starts it; stopped after the test."""
    recommender = app.extensions["recommender"]
    freshener = Freshener(app.extensions["models"], recommender.item_activity)
    stop = threading.Event()
    freshener.start(stop)
    yield freshener
    stop.set()


def serve(app, freshener: Freshener, loads: list[str], **request):
    """One request as gunicorn runs it, checking that the request itself loaded nothing."""
    freshener.before_request()
    loaded = len(loads)
    decision = app.extensions["recommender"].recommend(Request(**request))
    assert len(loads) == loaded, f"the request loaded {loads[loaded:]}"
    freshener.after_request()
    return decision


def learned_snapshot(client, auth, learner) -> str:
    body = client.post("/api/v1/recommendations", json={"user_id": "u", "k": 1}, headers=auth).json
    client.post("/api/v1/rewards", json={"event_id": body["event_id"], "reward": 1.0}, headers=auth)
    assert learner.step() == 1
    return learner.publish()


def test_a_snapshot_published_mid_traffic_is_served_from_the_next_request_on(
    app, worker, client, auth, catalogue, learner, loads
):
    first = serve(app, worker, loads, user_id="alice", k=3).model_version
    worker.before_request()  # a request is in progress: the worker's thread must not load meanwhile
    version = learned_snapshot(client, auth, learner)
    time.sleep(IDLE_SECONDS + 5 * model_store.CHECK_SECONDS)
    assert app.extensions["recommender"].recommend(Request(user_id="alice", k=3)).model_version == first != version
    worker.after_request()  # the answer is sent: now the worker loads
    assert serve(app, worker, loads, user_id="alice", k=3).model_version == version


def test_an_idle_worker_loads_a_new_snapshot_in_its_thread(app, worker, client, auth, catalogue, learner, loads):
    serve(app, worker, loads, user_id="alice", k=3)
    version = learned_snapshot(client, auth, learner)
    assert wait_for(lambda: app.extensions["models"].current().version == version)
    assert serve(app, worker, loads, user_id="alice", k=3).model_version == version


def test_a_damaged_snapshot_leaves_the_served_model_in_place(app, worker, client, auth, catalogue, learner, loads):
    good = learned_snapshot(client, auth, learner)
    assert wait_for(lambda: app.extensions["models"].current().version == good)
    app.config["FEEDLOOP"].snapshot_path.write_bytes(b"not a snapshot")
    decision = serve(app, worker, loads, user_id="alice", k=3)
    decision = serve(app, worker, loads, user_id="alice", k=3)
    assert decision.model_version == good and not decision.fallback


def test_item_activity_is_reloaded_between_requests_once_due(app, catalogue, loads, monkeypatch):
    recommender = app.extensions["recommender"]
    monkeypatch.setattr(recommender.item_activity, "refresh_seconds", 0.05)
    freshener = Freshener(app.extensions["models"], recommender.item_activity)
    stop = threading.Event()
    freshener.start(stop)
    try:
        assert recommender.item_activity.features("novel") == ()
        post_events(app, InteractionIn("impression", "bob", "novel"), InteractionIn("click", "bob", "novel"))
        time.sleep(0.1)
        serve(app, freshener, loads, user_id="alice", k=6)  # due: reloaded after this answer
        assert recommender.item_activity.features("novel")
    finally:
        stop.set()
