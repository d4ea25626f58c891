"""The loop's status from the database alone (app.services.status), as /healthz and `feedloop status` show it:
the learner's liveness from its heartbeat row, its lag, overdue settlements and rewards set aside."""

from datetime import timedelta

import pytest
from sqlmodel import Session, update

from app.models import LearnerState, Reward, utcnow
from app.services.learner import Learner
from app.services.status import learner_status
from tests.helpers import SteppedClock, age_events, keyed_client, make_app, recommend, stored_rewards

STALE = 5  # learner_stale_seconds in these tests (its minimum)


@pytest.fixture
def strict(config):
    """An app whose learner counts as gone or stuck after STALE seconds, with a key and the test catalogue."""
    app = make_app({**config, "learner_stale_seconds": STALE})
    client, auth = keyed_client(app)
    learner = Learner(app.config["FEEDLOOP"], app.extensions["db_engine"], clock=SteppedClock())
    yield app, client, auth, learner
    app.extensions["db_engine"].dispose()


def status_of(app):
    return learner_status(app.extensions["db_engine"], app.config["FEEDLOOP"])


def healthz(client) -> tuple[int, dict]:
    response = client.get("/healthz")
    return response.status_code, response.json["checks"]["learner"]


def move_heartbeat_back(app, seconds: float) -> None:
    with Session(app.extensions["db_engine"]) as s:
        s.exec(update(LearnerState).values(heartbeat_at=utcnow() - timedelta(seconds=seconds)))
        s.commit()


def move_rewards_back(app, seconds: float) -> None:
    with Session(app.extensions["db_engine"]) as s:
        for r in stored_rewards(app):
            s.exec(update(Reward).where(Reward.id == r.id).values(received_at=r.received_at - timedelta(seconds=seconds)))
        s.commit()


def reward(client, auth, event: dict) -> None:
    response = client.post("/api/v1/rewards", json={"event_id": event["event_id"], "reward": 1.0}, headers=auth)
    assert response.status_code == 202, response.json


def test_no_learner_and_no_rewards_is_not_started_and_healthy(client):
    status, learner = healthz(client)
    assert status == 200 and learner["status"] == "not_started"
    assert learner["heartbeat_age_seconds"] is None and learner["model_version"] is None
    assert learner["lag_seconds"] == 0 and learner["last_reward_id"] == 0 and learner["set_aside_rewards"] == 0


def test_a_heartbeat_makes_it_ok_with_its_position(app, client, auth, catalogue, learner):
    learner.heartbeat()
    status, body = healthz(client)
    assert status == 200 and body["status"] == "ok" and body["last_reward_id"] == 0
    assert 0 <= body["heartbeat_age_seconds"] < 5

    reward(client, auth, recommend(client, auth, k=1))
    learner.step()  # learns the reward, then beats
    [stored] = stored_rewards(app)
    status, body = healthz(client)
    assert status == 200 and body["status"] == "ok" and body["last_reward_id"] == stored.id
    assert body["model_version"] == learner.model.version and body["lag_seconds"] == 0


def test_a_stale_heartbeat_is_gone_and_503(strict):
    app, client, _auth, learner = strict
    learner.heartbeat()
    move_heartbeat_back(app, STALE - 2)
    assert healthz(client)[1]["status"] == "ok"  # within the limit
    move_heartbeat_back(app, STALE + 5)
    status, body = healthz(client)
    assert status == 503 and body["status"] == "gone" and body["heartbeat_age_seconds"] >= STALE + 5
    assert client.get("/healthz").json["status"] == "unavailable"
    learner.heartbeat()  # it came back
    assert healthz(client)[0] == 200


def test_a_reward_waiting_past_the_limit_is_stuck_until_learned(strict):
    app, client, auth, learner = strict
    learner.heartbeat()
    reward(client, auth, recommend(client, auth, k=1))
    status, body = healthz(client)
    assert status == 200 and body["status"] == "ok" and 0 <= body["lag_seconds"] < STALE  # waiting, not for long

    move_rewards_back(app, STALE + 10)
    learner.heartbeat()  # alive, but not learning
    status, body = healthz(client)
    assert status == 503 and body["status"] == "stuck"
    assert STALE + 10 <= body["lag_seconds"] < STALE + 20

    assert learner.step() == 1
    status, body = healthz(client)
    assert status == 200 and body["status"] == "ok" and body["lag_seconds"] == 0
    assert body["last_reward_id"] == stored_rewards(app)[0].id


def test_lag_is_the_age_of_the_oldest_unlearned_reward(app, client, auth, catalogue, learner):
    reward(client, auth, recommend(client, auth, k=1))
    move_rewards_back(app, 100)
    reward(client, auth, recommend(client, auth, k=1))  # a newer one does not hide the older
    assert 100 <= status_of(app).lag_seconds < 110
    learner.step()
    assert status_of(app).lag_seconds == 0 and status_of(app).last_reward_id == stored_rewards(app)[-1].id


def test_no_heartbeat_but_rewards_waiting_past_the_limit_is_stuck(strict):
    app, client, auth, _learner = strict
    reward(client, auth, recommend(client, auth, k=1))
    assert healthz(client)[1]["status"] == "not_started"
    move_rewards_back(app, STALE + 10)
    status, body = healthz(client)
    assert status == 503 and body["status"] == "stuck"


def test_unsettled_events_are_counted_from_when_they_were_shown(strict):
    app, client, auth, learner = strict
    wait = app.config["FEEDLOOP"].reward_wait_seconds
    learner.heartbeat()
    recommend(client, auth, k=1)
    age_events(app, 50)
    assert 50 <= status_of(app).oldest_unsettled_event_seconds < 60
    assert status_of(app).status == "ok"  # its reward wait has not passed
    age_events(app, wait)
    learner.heartbeat()
    status, body = healthz(client)
    assert status == 503 and body["status"] == "stuck" and body["oldest_unsettled_event_seconds"] >= wait + 50
    learner.step(now=utcnow())  # settles it
    status, body = healthz(client)
    assert status == 200 and body["oldest_unsettled_event_seconds"] == 0


def test_a_deferred_event_is_overdue_only_from_its_activation(strict):
    app, client, auth, learner = strict
    wait = app.config["FEEDLOOP"].reward_wait_seconds
    learner.heartbeat()
    deferred = recommend(client, auth, k=1, defer=True)
    age_events(app, wait + STALE + 100)
    status = status_of(app)  # never activated: never shown, never learned, never overdue
    assert status.oldest_unsettled_event_seconds == 0 and status.status == "ok"

    assert client.post(f"/api/v1/recommendations/{deferred['event_id']}/activate", headers=auth).status_code == 204
    status = status_of(app)  # shown just now: its reward wait starts now
    assert status.oldest_unsettled_event_seconds < STALE and status.status == "ok"
    age_events(app, wait + STALE + 10)  # moves the activation too
    learner.heartbeat()
    assert status_of(app).status == "stuck"


def test_set_aside_rewards_are_counted(app, client, auth, catalogue, learner):
    reward(client, auth, recommend(client, auth, k=1))
    learner.step()
    with Session(app.extensions["db_engine"]) as s:
        s.exec(update(Reward).values(learn_error="ValueError: not finite"))
        s.commit()
    assert healthz(client)[1]["set_aside_rewards"] == 1


def test_feedloop_status_prints_the_learner_lines(ready, app, client, auth, catalogue, learner):
    out = ready("status").output
    assert "learner: not_started (heartbeat never; serving the initial model)" in out
    assert "learned up to reward 0; oldest unlearned reward waits 0.0 s" in out
    assert "oldest event whose rewards are not final: 0.0 s old" in out
    assert "rewards set aside after failing to learn: 0" in out

    reward(client, auth, recommend(client, auth, k=1))
    move_rewards_back(app, 30)
    out = ready("status").output
    lag = next(line for line in out.splitlines() if line.startswith("learned up to reward 0;"))
    assert 30 <= float(lag.split("waits ")[1].split(" s")[0]) < 40

    learner.step()
    out = ready("status").output
    [stored] = stored_rewards(app)
    assert "learner: ok (heartbeat 0." in out and f"serving {learner.model.version})" in out
    assert f"learned up to reward {stored.id}; oldest unlearned reward waits 0.0 s" in out

    move_heartbeat_back(app, app.config["FEEDLOOP"].learner_stale_seconds + 10)
    gone = ready("status", ok=False)  # exit code 1, as /healthz answers 503
    assert "learner: gone (heartbeat" in gone.output
