"""The loop learns: rewards reach the model, workers reload snapshots, versions can be rolled back."""

import threading

import numpy as np
import pytest
from click.testing import CliRunner

from app.services.learner import Learner
from app.services.model_store import ModelStore
from tests.helpers import recommend


def train_to_like(client, auth, learner, liked: str, rounds: int = 40) -> None:
    """The user clicks `liked` wherever it is shown and ignores the first slot otherwise."""
    for _ in range(rounds):
        body = recommend(client, auth, k=3, context={"device": "mobile"})
        shown = [i["id"] for i in body["items"]]
        rewards = [{"event_id": body["event_id"], "item_id": shown[0], "reward": 0.0}] if shown[0] != liked else []
        if liked in shown:
            rewards.append({"event_id": body["event_id"], "item_id": liked, "reward": 1.0})
        client.post("/api/v1/rewards", json={"rewards": rewards}, headers=auth)
        learner.step()
    learner.publish()


def test_rewards_change_what_the_user_is_recommended(app, client, auth, catalogue, learner):
    app.extensions["recommender"].rng = np.random.default_rng(5)
    before = recommend(client, auth, k=1, context={"device": "mobile"})
    train_to_like(client, auth, learner, liked="drone")
    app.extensions["models"]._checked = 0.0  # as if the next request came CHECK_SECONDS later
    after = [recommend(client, auth, k=1, context={"device": "mobile"}) for _ in range(20)]
    assert after[0]["model_version"] != before["model_version"]
    firsts = [a["items"][0] for a in after]
    assert sum(f["id"] == "drone" for f in firsts) >= 15
    assert all(f["probability"] >= 0.9 for f in firsts if f["id"] == "drone")
    event = client.get(
        f"/api/v1/recommendations/{next(a for a in after if a['items'][0]['id'] == 'drone')['event_id']}", headers=auth
    ).json
    assert event["items"][0]["explanation"][0]["contribution"] > 0


def test_q_values_follow_the_rewards(app, client, auth, catalogue, learner):
    from sqlmodel import Session, select

    from app.models import QValue

    body = recommend(client, auth, k=1, context={"device": "mobile"})
    client.post("/api/v1/rewards", json={"event_id": body["event_id"], "reward": 1.0}, headers=auth)
    learner.step()
    with Session(app.extensions["db_engine"]) as s:
        row = s.exec(select(QValue)).one()
    assert (row.item_id, row.segment, row.n) == (body["items"][0]["id"], "device=mobile", 1)
    assert row.q == pytest.approx(app.config["FEEDLOOP"].q_alpha)


def test_a_restarted_learner_neither_skips_nor_repeats_rewards(app, client, auth, catalogue, learner):
    for _ in range(3):
        body = recommend(client, auth, k=1)
        client.post("/api/v1/rewards", json={"event_id": body["event_id"], "reward": 1.0}, headers=auth)
    assert learner.step() == 3
    learner.publish()
    body = recommend(client, auth, k=1)
    client.post("/api/v1/rewards", json={"event_id": body["event_id"], "reward": 0.0}, headers=auth)
    restarted = Learner(app.config["FEEDLOOP"], app.extensions["db_engine"])
    assert restarted.last_reward_id == learner.last_reward_id
    assert restarted.step() == 1


def test_workers_swap_in_new_snapshots_while_requests_flow(app, client, auth, catalogue, learner):
    errors, versions, stop = [], set(), threading.Event()

    def serve():
        worker = app.test_client()
        for _ in range(400):  # bounded: at most 400 requests
            if stop.is_set():
                return
            response = worker.post("/api/v1/recommendations", json={"user_id": "bob", "k": 2}, headers=auth)
            if response.status_code != 200 or response.json["fallback"]:
                errors.append(response.get_data(as_text=True))
            else:
                versions.add(response.json["model_version"])

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        for _ in range(15):
            body = recommend(client, auth, k=1)
            client.post("/api/v1/rewards", json={"event_id": body["event_id"], "reward": 1.0}, headers=auth)
            learner.step()
            learner.publish()
            stop.wait(0.12)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert errors == []
    assert len(versions) >= 3  # several snapshots were picked up without a restart or a failed request


def test_a_damaged_snapshot_is_ignored_by_workers(app, config, learner, catalogue, clock):
    store = ModelStore(app.config["FEEDLOOP"], clock=clock)
    assert store.current().version == "v0"
    good = learner.publish()
    clock.advance(1)
    assert store.current().version == good  # the good snapshot was loaded
    app.config["FEEDLOOP"].snapshot_path.write_bytes(b"garbage")
    clock.advance(1)
    assert store.current().version == good


def test_rollback_export_and_import(app, config, client, auth, catalogue, learner, monkeypatch, tmp_path):
    from app.cli import main

    for name, value in (("HOME", config["home"]), ("DATABASE_URL", config["database_url"]), ("ENV", "test")):
        monkeypatch.setenv(f"FEEDLOOP_{name}", value)
    first = learner.publish(keep=True)
    train_to_like(client, auth, learner, liked="drone", rounds=5)
    second = learner.publish(keep=True)
    runner = CliRunner()
    listing = runner.invoke(main, ["models", "list"]).output
    assert first in listing and second in listing and f"* {second}" in listing

    requested = runner.invoke(main, ["models", "rollback", first, "--wait", "0"])
    assert requested.exit_code == 0 and "requested" in requested.output
    learner.step()  # the learner carries out the rollback and keeps learning from that model
    assert learner.model.version == first
    assert ModelStore(app.config["FEEDLOOP"]).current().version == first

    archive = tmp_path / "model.zip"
    assert runner.invoke(main, ["models", "export", second, str(archive)]).exit_code == 0
    imported = runner.invoke(main, ["models", "import", str(archive)])
    assert imported.exit_code == 0 and "import-" in imported.output
    archive.write_bytes(archive.read_bytes()[:-40])
    refused = runner.invoke(main, ["models", "import", str(archive)])
    assert refused.exit_code != 0 and "not a feedloop model archive" in refused.output
    assert "no model version" in runner.invoke(main, ["models", "rollback", "v999"]).output


def test_apprentice_mode_serves_the_baseline_and_reports_agreement(config):
    from tests.helpers import CATALOGUE, make_app, new_key

    app = make_app({**config, "loop_mode": "apprentice"})
    client, auth = app.test_client(), {"Authorization": f"Bearer {new_key(app)}"}
    client.post("/api/v1/items", json={"items": CATALOGUE}, headers=auth)
    learner = Learner(app.config["FEEDLOOP"], app.extensions["db_engine"])
    app.extensions["recommender"].rng = np.random.default_rng(5)
    for _ in range(20):
        app.extensions["models"]._checked = 0.0  # each request sees the snapshot published after the last reward
        body = recommend(client, auth, k=3, baseline_item_id="novel")
        assert body["items"][0]["id"] == "novel" and body["items"][0]["probability"] == 1.0
        client.post("/api/v1/rewards", json={"event_id": body["event_id"], "reward": 1.0}, headers=auth)
        learner.step()
        learner.publish()
    status = client.get("/api/v1/loop", headers=auth).json
    assert status["mode"] == "apprentice" and status["apprentice"]["events"] == 20
    assert status["apprentice"]["baseline_reward"] == 1.0
    assert 0.5 <= status["apprentice"]["agreement"] <= 1.0  # the policy learned to pick the baseline's choice
    app.extensions["db_engine"].dispose()


def test_online_mode_ignores_the_baseline_for_serving(client, auth, catalogue):
    status = client.get("/api/v1/loop", headers=auth).json
    assert status == {
        "mode": "online",
        "model_version": "v0",
        "apprentice": {"events": 0, "agreement": None, "baseline_reward": None},
    }


def test_a_decision_is_explained_by_the_model_that_made_it_while_that_model_is_kept(app, client, auth, catalogue, learner):
    train_to_like(client, auth, learner, liked="drone", rounds=5)
    kept = learner.publish(keep=True)
    app.extensions["models"]._checked = 0.0
    decided = recommend(client, auth, k=2, context={"device": "mobile"})
    assert decided["model_version"] == kept
    train_to_like(client, auth, learner, liked="novel", rounds=10)
    unkept = learner.publish()
    app.extensions["models"]._checked = 0.0
    newer = recommend(client, auth, k=2, context={"device": "mobile"})
    learner.step()
    learner.publish()  # `unkept` no longer serves, and no version row holds it
    app.extensions["models"]._checked = 0.0

    old = client.get(f"/api/v1/recommendations/{decided['event_id']}", headers=auth).json
    assert old["explained_by"] == old["model_version"] == kept
    assert newer["model_version"] == unkept
    latest = client.get(f"/api/v1/recommendations/{newer['event_id']}", headers=auth).json
    assert latest["explained_by"] not in (unkept, kept)
