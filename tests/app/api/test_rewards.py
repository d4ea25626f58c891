import pytest

from app.models import utcnow
from app.services.learner import Learner
from tests.helpers import age_events, keyed_client, make_app, recommend
from tests.helpers import stored_rewards as stored

URL = "/api/v1/rewards"


@pytest.fixture
def event(client, auth, catalogue) -> dict:
    return recommend(client, auth, k=3)


def test_a_reward_is_stored_once_and_defaults_to_the_first_slot(app, client, auth, event):
    response = client.post(URL, json={"event_id": event["event_id"], "reward": 1.0}, headers=auth)
    assert response.status_code == 202 and response.json == {"accepted": 1, "duplicates": 0, "late": 0, "errors": []}
    again = client.post(URL, json={"event_id": event["event_id"], "reward": 1.0}, headers=auth)
    assert again.status_code == 202 and again.json == {"accepted": 0, "duplicates": 1, "late": 0, "errors": []}
    logged = client.get(f"/api/v1/recommendations/{event['event_id']}", headers=auth).json
    assert [(r["item_id"], r["reward"]) for r in logged["rewards"]] == [(event["items"][0]["id"], 1.0)]


def test_batch_form_reports_errors_per_row_and_stores_the_rest(app, client, auth, event):
    second = event["items"][1]["id"]
    body = {
        "rewards": [
            {"event_id": event["event_id"], "reward": 1, "item_id": second},
            {"event_id": "unknown", "reward": 1},
            {"event_id": event["event_id"], "reward": 0.5, "item_id": "not-shown"},
            {"event_id": event["event_id"], "reward": 1, "item_id": second},
        ]
    }
    response = client.post(URL, json=body, headers=auth)
    assert response.status_code == 202
    assert response.json["accepted"] == 1 and response.json["duplicates"] == 1
    assert [(e["index"], e["error"]) for e in response.json["errors"]] == [(1, "unknown_event"), (2, "item_not_shown")]
    assert [(r.item_id, r.value) for r in stored(app)] == [(second, 1.0)]


@pytest.mark.parametrize(
    "body, status",
    [
        ({"event_id": "nope", "reward": 1.0}, 404),
        ({"reward": 1.0}, 422),
        ({"event_id": "E", "reward": 1.5}, 422),
        ({"event_id": "E", "reward": -0.1}, 422),
        ({"event_id": "E", "reward": "1"}, 422),
        ({"event_id": "E", "reward": True}, 422),
        ({"event_id": "E", "reward": 1.0, "bonus": 2}, 422),
        ({"rewards": []}, 422),
        ({"rewards": [{"event_id": "E", "reward": 1}] * 1001}, 422),
    ],
)
def test_bad_rewards_are_refused_and_nothing_is_stored(app, client, auth, event, body, status):
    def fill(value):
        return event["event_id"] if value == "E" else value

    body = {k: ([{kk: fill(vv) for kk, vv in r.items()} for r in v] if k == "rewards" else fill(v)) for k, v in body.items()}
    response = client.post(URL, json=body, headers=auth)
    assert response.status_code == status and response.json["error"]
    assert stored(app) == []


def test_nan_reward_is_refused(app, client, auth, event):
    data = '{{"event_id": "{}", "reward": NaN}}'.format(event["event_id"])
    response = client.post(URL, data=data, headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == 400 and stored(app) == []


def test_a_reward_after_the_reward_window_is_refused(app, client, auth, event):
    age_events(app, app.config["FEEDLOOP"].reward_window_seconds + 60)
    response = client.post(URL, json={"event_id": event["event_id"], "reward": 1.0}, headers=auth)
    assert response.status_code == 410 and response.json["error"] == "event_expired"
    assert stored(app) == []


def test_unrewarded_slots_get_the_default_reward_after_the_wait(app, client, auth, event):
    client.post(URL, json={"event_id": event["event_id"], "reward": 1.0}, headers=auth)
    learner = Learner(app.config["FEEDLOOP"], app.extensions["db_engine"])
    learner.step()
    assert [r.is_default for r in stored(app)] == [False]  # the wait has not passed yet
    age_events(app, app.config["FEEDLOOP"].reward_wait_seconds + 1)
    learner.step(now=utcnow())
    rows = stored(app)
    assert [(r.item_id, r.value, r.is_default) for r in rows[1:]] == [(i["id"], 0.0, True) for i in event["items"][1:]]
    assert learner.last_reward_id == rows[-1].id  # the default rewards were learned too
    learner.step(now=utcnow())
    assert len(stored(app)) == 3  # settled once


def test_deferred_events_learn_only_after_activation(app, client, auth, catalogue):
    event = recommend(client, auth, k=2, defer=True)
    refused = client.post(URL, json={"event_id": event["event_id"], "reward": 1.0}, headers=auth)
    assert refused.status_code == 409 and refused.json["error"] == "event_not_activated"
    age_events(app, app.config["FEEDLOOP"].reward_wait_seconds + 1)
    Learner(app.config["FEEDLOOP"], app.extensions["db_engine"]).step()
    assert stored(app) == []  # no default reward for what may never have been shown
    assert client.post(f"/api/v1/recommendations/{event['event_id']}/activate", headers=auth).status_code == 204
    assert client.post(URL, json={"event_id": event["event_id"], "reward": 1.0}, headers=auth).status_code == 202


@pytest.mark.parametrize(
    "aggregation, on_arrival, final",
    [
        ("earliest", [0.75, None], []),  # the first reward is final and learned at once
        ("sum", [None, None], [1.25]),  # learned once, when the wait ends, as the total
        ("capped", [None, None], [1.0]),  # the total, capped at FEEDLOOP_REWARD_MAX
    ],
)
def test_several_rewards_for_one_item_are_learned_once_as_their_aggregate(config, aggregation, on_arrival, final):
    app = make_app({**config, "reward_aggregation": aggregation})
    client, auth = keyed_client(app)
    event = recommend(client, auth, k=1)
    for key, value in (("view", 0.75), ("buy", 0.5)):
        client.post(URL, json={"event_id": event["event_id"], "reward": value, "reward_id": key}, headers=auth)
    assert [r.learn_value for r in stored(app)] == on_arrival
    learner = Learner(app.config["FEEDLOOP"], app.extensions["db_engine"])
    age_events(app, app.config["FEEDLOOP"].reward_wait_seconds + 1)
    learner.step(now=utcnow())
    settled = [r for r in stored(app) if r.source == "settlement"]
    assert [r.learn_value for r in settled] == final
    assert learner.learned == 1  # one shown slot, learned exactly once
    app.extensions["db_engine"].dispose()


def test_a_reward_after_settlement_is_counted_late_and_not_learned(app, client, auth, event, learner):
    age_events(app, app.config["FEEDLOOP"].reward_wait_seconds + 1)
    assert learner.step(now=utcnow()) == 3  # every slot settled with the default
    weights = learner.model.policy.to_bytes()
    response = client.post(URL, json={"event_id": event["event_id"], "reward": 1.0, "reward_id": "default"}, headers=auth)
    assert response.status_code == 202 and response.json == {"accepted": 1, "duplicates": 0, "late": 1, "errors": []}
    assert learner.step(now=utcnow()) == 0
    assert learner.learned == 3 and learner.model.policy.to_bytes() == weights
    logged = client.get(f"/api/v1/recommendations/{event['event_id']}", headers=auth).json
    assert [r["late"] for r in logged["rewards"] if r["reward"] == 1.0] == [True]


def test_the_same_reward_id_with_another_value_is_409_alone_and_an_error_row_in_a_batch(app, client, auth, event):
    first = {"event_id": event["event_id"], "reward": 0.5, "reward_id": "buy"}
    assert client.post(URL, json=first, headers=auth).status_code == 202
    single = client.post(URL, json={**first, "reward": 1.0}, headers=auth)
    assert single.status_code == 409 and single.json["error"] == "reward_conflict"
    batch = client.post(
        URL, json={"rewards": [{**first, "reward": 1.0}, first, {**first, "reward_id": "view"}]}, headers=auth
    ).json
    assert (batch["accepted"], batch["duplicates"]) == (1, 1)
    assert [(e["index"], e["error"]) for e in batch["errors"]] == [(0, "reward_conflict")]
    assert sorted((r.reward_key, r.value) for r in stored(app)) == [("buy", 0.5), ("view", 0.5)]


def test_each_slot_is_learned_once_over_the_api(app, client, auth, event, learner):
    first, second = event["items"][0]["id"], event["items"][1]["id"]
    for body in (
        {"event_id": event["event_id"], "reward": 1.0},
        {"event_id": event["event_id"], "reward": 0.5, "reward_id": "again"},  # earliest: not learned
        {"event_id": event["event_id"], "reward": 0.5, "item_id": second},
    ):
        assert client.post(URL, json=body, headers=auth).status_code == 202
    assert learner.step() == 2
    age_events(app, app.config["FEEDLOOP"].reward_wait_seconds + 1)
    assert learner.step(now=utcnow()) == 1  # the third slot, with the default
    learned = [(r.item_id, r.learn_value) for r in stored(app) if r.learn_value is not None]
    assert sorted(learned) == sorted([(first, 1.0), (second, 0.5), (event["items"][2]["id"], 0.0)])
    assert learner.learned == 3


def test_activating_after_the_reward_window_is_410(app, client, auth, catalogue, learner):
    event = recommend(client, auth, k=2, defer=True)
    age_events(app, app.config["FEEDLOOP"].reward_window_seconds + 60)
    assert learner.step(now=utcnow()) == 0
    response = client.post(f"/api/v1/recommendations/{event['event_id']}/activate", headers=auth)
    assert response.status_code == 410 and response.json["error"] == "event_expired"
    assert stored(app) == []


def test_reward_ids_of_poll_answers_cannot_be_sent_by_apps(client, auth):
    response = client.post(
        "/api/v1/rewards", headers=auth, json={"rewards": [{"event_id": "e" * 32, "reward": 1, "reward_id": "poll:7"}]}
    )
    assert response.status_code == 422 and "reserved for poll answers" in response.get_data(as_text=True)
