"""Webhooks on alerts: every new alert is posted, signed, to the alert webhooks through the same outbox as poll
answers, to a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select

from app.db import write_session
from app.models import Alert, WebhookDelivery
from app.services import monitoring
from app.services.webhooks import WebhookError, create_webhook, deliver_due, list_webhooks
from tests.app.services.test_webhooks import Receiver, answer, deliveries, hook, make_poll


@pytest.fixture
def engine(bare):
    return bare.extensions["db_engine"]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def alert(engine, subject: str = "context.age") -> monitoring.Raised:
    with write_session(engine) as s:
        return monitoring.raise_alert(s, "drift", "feature", subject, "red", f"{subject} drifted", {"psi": 0.4})


def test_a_new_alert_reaches_the_alert_webhooks_signed(engine, bare, receiver):
    poll = make_poll(engine)
    alerts_hook, receiver.secret = hook(engine, receiver.url, topic="alert")
    hook(engine, receiver.url + "/answers", poll)  # poll answers only
    raised = alert(engine)
    assert [d.webhook_id for d in deliveries(engine)] == [alerts_hook]
    assert alert(engine) == monitoring.Raised(raised.id, False)  # still open: no second alert, no second delivery
    assert deliver_due(engine, bare.config["FEEDLOOP"]).delivered == 1

    [got] = receiver.received
    assert got["verified"] and got["headers"]["Feedloop-Event"] == "alert"
    body = json.loads(got["body"])
    assert got["headers"]["Feedloop-Delivery"] == body["id"] == f"whd_{deliveries(engine)[0].id}"
    assert body["type"] == "alert" and body["created_at"] and set(body) == {"type", "id", "created_at", "alert"}
    with Session(engine) as s:
        stored = s.get(Alert, raised.id)
    assert body["alert"] == {
        "id": raised.id,
        "kind": "drift",
        "severity": "red",
        "subject_type": "feature",
        "subject_id": "context.age",
        "message": "context.age drifted",
        "evidence": {"psi": 0.4},
        "review_task_id": None,
        "created_at": stored.created_at.isoformat(),
    }


def test_poll_answers_do_not_go_to_alert_webhooks(engine, receiver):
    poll = make_poll(engine)
    hook(engine, receiver.url, topic="alert")
    answer(engine, poll)
    assert deliveries(engine) == []


def test_an_alert_and_its_deliveries_are_stored_together_or_not_at_all(engine, receiver):
    hook(engine, receiver.url, topic="alert")
    with pytest.raises(RuntimeError), write_session(engine) as s:
        monitoring.raise_alert(s, "drift", "feature", "score", "red", "score drifted")
        raise RuntimeError("the scan failed after raising it")
    with Session(engine) as s:
        assert s.exec(select(Alert)).all() == [] and s.exec(select(WebhookDelivery)).all() == []


def test_an_alert_webhook_takes_no_poll_and_is_checked_like_any_other(engine, receiver):
    poll = make_poll(engine)
    with write_session(engine) as s:
        with pytest.raises(WebhookError, match="takes no poll"):
            create_webhook(s, receiver.url, created_by="user:1", topic="alert", poll_id=poll.id, allow_private=True)
        with pytest.raises(WebhookError, match="loopback"):
            create_webhook(s, receiver.url, created_by="user:1", topic="alert")
        with pytest.raises(WebhookError, match="unknown topic"):
            create_webhook(s, receiver.url, created_by="user:1", topic="alerts", allow_private=True)
    hook(engine, receiver.url, topic="alert")
    hook(engine, receiver.url)  # the same URL may take poll answers too
    with write_session(engine) as s, pytest.raises(WebhookError, match="already sends these alerts"):
        create_webhook(s, receiver.url, created_by="user:1", topic="alert", allow_private=True)
    with Session(engine) as s:
        assert sorted(w.topic for w in list_webhooks(s)) == ["alert", "poll.response"]


def test_a_failed_alert_delivery_is_retried_like_an_answer(engine, bare, receiver):
    _, receiver.secret = hook(engine, receiver.url, topic="alert")
    alert(engine)
    receiver.plan = [503]
    settings = bare.config["FEEDLOOP"]
    assert deliver_due(engine, settings).retrying == 1
    [delivery] = deliveries(engine)
    assert deliver_due(engine, settings, now=delivery.next_attempt_at).delivered == 1
    first, second = receiver.received
    assert first["body"] == second["body"] and second["verified"]
