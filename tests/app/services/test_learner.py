"""The loop learns: rewards reach the model, workers reload snapshots, versions can be rolled back."""

import threading

import numpy as np
import pytest
from click.testing import CliRunner

from app.services.learner import Learner
from app.services.model_store import ModelStore
from tests.helpers import recommend, stepped_models


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


def test_rewards_change_what_the_user_is_recommended(app, client, auth, catalogue, learner, clock):
    stepped_models(app, clock)
    app.extensions["recommender"].rng = np.random.default_rng(5)
    before = recommend(client, auth, k=1, context={"device": "mobile"})
    train_to_like(client, auth, learner, liked="drone")
    clock.advance(1)  # the next request comes after the snapshot check is due
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


def test_workers_swap_in_new_snapshots_while_requests_flow(app, client, auth, catalogue, learner, clock):
    stepped_models(app, clock)
    errors, versions, stop = [], set(), threading.Event()

    def serve():
        worker = app.test_client()
        for _ in range(2000):  # bounded
            if stop.is_set():
                return
            response = worker.post("/api/v1/recommendations", json={"user_id": "bob", "k": 2}, headers=auth)
            if response.status_code != 200 or response.json["fallback"]:
                errors.append(response.get_data(as_text=True))
            else:
                versions.add(response.json["model_version"])

    thread, published = threading.Thread(target=serve), []
    thread.start()
    try:
        for _ in range(15):
            body = recommend(client, auth, k=1)
            client.post("/api/v1/rewards", json={"event_id": body["event_id"], "reward": 1.0}, headers=auth)
            learner.step()
            published.append(learner.publish())
            clock.advance(1)  # the worker's next request looks for the new snapshot
            for _ in range(1000):  # until the worker served it (at most 10 s)
                if published[-1] in versions or not thread.is_alive():
                    break
                stop.wait(0.01)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert errors == []
    assert set(published) <= versions  # every snapshot was picked up without a restart or a failed request


def test_a_damaged_snapshot_is_ignored_by_workers(app, config, learner, catalogue, clock):
    store = ModelStore(app.config["FEEDLOOP"], clock=clock)
    assert store.current().version == "v0"
    good = learner.publish()
    clock.advance(1)
    assert store.current().version == good  # the good snapshot was loaded
    app.config["FEEDLOOP"].snapshot_path.write_bytes(b"garbage")
    clock.advance(1)
    assert store.current().version == good


def test_rollback_export_and_import(app, config, client, auth, catalogue, learner, monkeypatch, tmp_path, clock):
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
    version = imported.output.split(" as ")[1].split(";")[0]
    assert runner.invoke(main, ["models", "rollback", version, "--wait", "0"]).exit_code == 0
    stepped_models(app, clock)
    learner.step()
    clock.advance(1)
    assert recommend(client, auth, k=1)["model_version"] == version  # the imported model serves
    archive.write_bytes(archive.read_bytes()[:-40])
    refused = runner.invoke(main, ["models", "import", str(archive)])
    assert refused.exit_code != 0 and "not a feedloop model archive" in refused.output
    assert "no model version" in runner.invoke(main, ["models", "rollback", "v999"]).output


def test_apprentice_mode_serves_the_baseline_and_reports_agreement(config, clock):
    from tests.helpers import CATALOGUE, make_app, new_key

    app = make_app({**config, "loop_mode": "apprentice"})
    client, auth = app.test_client(), {"Authorization": f"Bearer {new_key(app)}"}
    client.post("/api/v1/items", json={"items": CATALOGUE}, headers=auth)
    learner = Learner(app.config["FEEDLOOP"], app.extensions["db_engine"], clock=clock)
    stepped_models(app, clock)
    app.extensions["recommender"].rng = np.random.default_rng(5)
    for _ in range(20):
        clock.advance(1)  # each request sees the snapshot published after the last reward
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


def test_online_mode_ignores_the_baseline_for_serving(app, client, auth, catalogue):
    from tests.helpers import events

    app.extensions["recommender"].rng = np.random.default_rng(3)
    bodies = [recommend(client, auth, k=3, baseline_item_id="novel") for _ in range(12)]
    logged = {e.id: e for e in events(app)}
    for body in bodies:
        event = logged[body["event_id"]]
        # the policy's own first choice is served, with the policy's probability, whatever the baseline says
        assert body["items"][0]["id"] == event.policy_item_id
        if body["items"][0]["id"] == "novel":
            continue
        assert body["items"][0]["probability"] < 1.0
    assert any(b["items"][0]["id"] != "novel" for b in bodies)
    assert all(b["items"][0]["probability"] < 1.0 for b in bodies)  # untrained: the policy explores
    status = client.get("/api/v1/loop", headers=auth).json
    assert (status["mode"], status["model_version"]) == ("online", "v0")


def test_a_decision_is_explained_by_the_model_that_made_it_while_that_model_is_kept(app, client, auth, catalogue, learner, clock):
    stepped_models(app, clock)
    train_to_like(client, auth, learner, liked="drone", rounds=5)
    kept = learner.publish(keep=True)
    clock.advance(1)
    decided = recommend(client, auth, k=2, context={"device": "mobile"})
    assert decided["model_version"] == kept
    train_to_like(client, auth, learner, liked="novel", rounds=10)
    unkept = learner.publish()
    clock.advance(1)
    newer = recommend(client, auth, k=2, context={"device": "mobile"})
    learner.step()
    learner.publish()  # `unkept` no longer serves, and no version row holds it
    clock.advance(1)

    old = client.get(f"/api/v1/recommendations/{decided['event_id']}", headers=auth).json
    assert old["explained_by"] == old["model_version"] == kept
    assert newer["model_version"] == unkept
    latest = client.get(f"/api/v1/recommendations/{newer['event_id']}", headers=auth).json
    assert latest["explained_by"] not in (unkept, kept)


def reward_first_slots(client, auth, n: int) -> None:
    for _ in range(n):
        body = recommend(client, auth, k=1)
        assert client.post("/api/v1/rewards", json={"event_id": body["event_id"], "reward": 1.0}, headers=auth).status_code == 202


def test_a_restored_backup_makes_the_learner_fall_back_to_a_model_the_database_holds(
    app, client, auth, catalogue, learner, caplog
):
    from sqlmodel import Session, delete, func, select

    from app.models import Reward

    reward_first_slots(client, auth, 1)
    assert learner.step() == 1
    kept = learner.publish(keep=True)  # kept at the first reward
    reward_first_slots(client, auth, 2)
    assert learner.step() == 2
    newest = learner.publish(keep=True)  # served and kept at the third reward
    engine = app.extensions["db_engine"]
    with Session(engine) as s:
        ids = s.exec(select(Reward.id).order_by(Reward.id)).all()
        s.exec(delete(Reward).where(Reward.id.in_(ids[1:])))  # the backup was taken after the first reward
        s.commit()
        last_stored = s.exec(select(func.max(Reward.id))).one()
    with caplog.at_level("WARNING", logger="app.services.learner"):
        restarted = Learner(app.config["FEEDLOOP"], engine)
    assert restarted.last_reward_id <= last_stored
    assert (restarted.model.version, restarted.last_reward_id, restarted.learned) == (kept, ids[0], 1)
    assert newest != kept and "restored backup" in caplog.text
    reward_first_slots(client, auth, 1)
    assert restarted.step() == 1  # the reward stored after the restore is learned, not skipped


def test_with_no_model_the_database_holds_the_learner_starts_untrained_and_learns_everything_again(
    app, client, auth, catalogue, learner, caplog
):
    from sqlmodel import Session, delete

    from app.models import Reward

    reward_first_slots(client, auth, 3)
    assert learner.step() == 3
    learner.publish(keep=True)
    with Session(app.extensions["db_engine"]) as s:
        s.exec(delete(Reward))
        s.commit()
    reward_first_slots(client, auth, 1)
    with caplog.at_level("WARNING", logger="app.services.learner"):
        restarted = Learner(app.config["FEEDLOOP"], app.extensions["db_engine"])
    assert (restarted.model.version, restarted.last_reward_id, restarted.learned) == ("v0", 0, 0)
    assert "trying an older model" in caplog.text and "learning every stored reward again" in caplog.text
    assert restarted.step() == 1


def test_a_reward_that_keeps_failing_is_set_aside_and_the_rewards_behind_it_are_learned(
    app, client, auth, catalogue, learner, cli
):
    from sqlmodel import Session, select, update

    from app.models import Event
    from tests.helpers import stored_rewards

    broken = recommend(client, auth, k=1)
    with Session(app.extensions["db_engine"]) as s:  # a slot pointing outside its logged candidates
        slots = [{**s.exec(select(Event.slots).where(Event.id == broken["event_id"])).one()[0], "position": 999}]
        s.exec(update(Event).where(Event.id == broken["event_id"]).values(slots=slots))
        s.commit()
    client.post("/api/v1/rewards", json={"event_id": broken["event_id"], "reward": 1.0}, headers=auth)
    reward_first_slots(client, auth, 2)
    attempts = app.config["FEEDLOOP"].learn_attempts
    weights = learner.model.policy.to_bytes()
    for _ in range(attempts - 1):
        assert learner.step() == 0  # in order: the rewards behind it wait
    assert learner.model.policy.to_bytes() == weights
    assert learner.step() == 2
    assert learner.learned == 2
    rows = stored_rewards(app)
    assert "outside the" in rows[0].learn_error and [r.learn_error for r in rows[1:]] == [None, None]
    assert learner.last_reward_id == rows[-1].id
    assert "rewards set aside after failing to learn: 1" in cli("status").output


def test_a_rollback_waiting_on_the_learner_reports_what_it_serves(app, client, auth, catalogue, learner, cli):
    first = learner.publish(keep=True)
    reward_first_slots(client, auth, 2)
    learner.step()
    learner.publish()
    result = {}
    thread = threading.Thread(target=lambda: result.update(out=cli("models", "rollback", first, "--wait", 10).output))
    thread.start()
    for _ in range(500):  # the learner's loop, bounded
        learner.step()
        if not thread.is_alive():
            break
        threading.Event().wait(0.02)
    thread.join(timeout=15)
    assert f"the learner is serving {first}" in result["out"]
    assert learner.model.version == first


def test_a_rollback_is_not_overwritten_by_the_learning_it_discarded(app, client, auth, catalogue, learner, clock, cli):
    from sqlmodel import Session

    from app.models import ModelVersion
    from app.services.model_store import current_version, load_snapshot

    settings = app.config["FEEDLOOP"]
    kept = learner.publish(keep=True)
    reward_first_slots(client, auth, 1)
    assert learner.step() == 1  # learned, not published yet
    cli("models", "rollback", kept, "--wait", 0)
    clock.advance(settings.publish_seconds + 1)  # a publish would be due
    learner.step()
    assert current_version(settings) == kept and ModelStore(settings, clock=clock).current().version == kept
    with Session(app.extensions["db_engine"]) as s:
        served = load_snapshot(s.get(ModelVersion, kept).archive, settings)
    assert learner.model.policy.to_bytes() == served.policy.to_bytes()
    reward_first_slots(client, auth, 1)
    clock.advance(settings.publish_seconds + 1)
    assert learner.step() == 1
    newer = current_version(settings)
    assert newer not in (kept, None)
    assert ModelStore(settings, clock=clock).current().policy.to_bytes() != served.policy.to_bytes()


def test_a_first_start_with_rewards_waiting_learns_them_without_a_warning(app, client, auth, catalogue, caplog):
    reward_first_slots(client, auth, 2)
    with caplog.at_level("WARNING", logger="app.services.learner"):
        first = Learner(app.config["FEEDLOOP"], app.extensions["db_engine"])
    assert caplog.text == ""
    assert first.step() == 2
