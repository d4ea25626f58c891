"""`feedloop webhooks add/list/disable/rotate-secret`, and `feedloop jobs run webhooks` sending to a real receiver."""

import pytest

from tests.app.services.test_webhooks import Receiver, answer, make_poll
from tests.helpers import bare_app


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_add_list_run_rotate_and_disable(ready, config, receiver):
    refused = ready("webhooks", "add", receiver.url, ok=False).output
    assert "127.0.0.1 is a loopback address" in refused and "no webhook was created" in refused
    assert "only http" in ready("webhooks", "add", "ftp://example.com/", ok=False).output
    assert "no poll 999" in ready("webhooks", "add", receiver.url, "--poll", "999", "--allow-private", ok=False).output

    added = ready("webhooks", "add", receiver.url, "--allow-private")
    assert f"created webhook 1: answers of every poll go to {receiver.url}" in added.stdout
    receiver.secret = added.stdout.strip().splitlines()[-1]
    assert receiver.secret.startswith("whsec_")
    listing = ready("webhooks", "list").output
    assert f"1\t{receiver.url}\tevery poll\tactive\tpending 0, delivered 0, failed 0\tprivate addresses allowed" in listing
    assert receiver.secret not in listing

    app = bare_app(config)
    engine = app.extensions["db_engine"]
    answer(engine, make_poll(engine))
    assert ready("jobs", "run", "webhooks").output.strip() == "webhooks: ok: delivered 1, to retry 0, given up 0"
    assert [r["verified"] for r in receiver.received] == [True]

    rotated = ready("webhooks", "rotate-secret", "1").stdout.strip().splitlines()[-1]
    assert rotated.startswith("whsec_") and rotated != receiver.secret
    receiver.secret = rotated
    answer(engine, make_poll(engine), respondent="r2")
    receiver.plan = [500]
    assert "to retry 1" in ready("jobs", "run", "webhooks").output
    assert receiver.received[-1]["verified"]  # signed with the new secret

    assert "webhook 1 disabled; 1 waiting deliveries given up" in ready("webhooks", "disable", "1").output
    assert "\tdisabled\tpending 0, delivered 1, failed 1" in ready("webhooks", "list").output
    assert "webhook 1 is disabled" in ready("webhooks", "disable", "1", ok=False).output
    assert "no webhook 7" in ready("webhooks", "rotate-secret", "7", ok=False).output
    engine.dispose()


def test_an_alert_webhook_gets_every_new_alert(ready, config, receiver):
    from app.db import write_session
    from app.services.monitoring import raise_alert

    assert "takes no poll" in ready("webhooks", "add", receiver.url, "--topic", "alert", "--poll", "1", ok=False).output
    assert "Invalid value for '--topic'" in ready("webhooks", "add", receiver.url, "--topic", "alerts", ok=False).output
    added = ready("webhooks", "add", receiver.url, "--topic", "alert", "--allow-private")
    assert f"created webhook 1: alerts go to {receiver.url}" in added.stdout
    receiver.secret = added.stdout.strip().splitlines()[-1]
    assert f"1\t{receiver.url}\talerts\tactive\tpending 0" in ready("webhooks", "list").output

    app = bare_app(config)
    with write_session(app.extensions["db_engine"]) as s:
        raise_alert(s, "kpi", "model", "v1#1", "red", "auc is 0.600 for release v1#1")
    assert ready("jobs", "run", "webhooks").output.strip() == "webhooks: ok: delivered 1, to retry 0, given up 0"
    [got] = receiver.received
    assert got["verified"] and receiver.bodies()[0]["alert"]["message"] == "auc is 0.600 for release v1#1"
    app.extensions["db_engine"].dispose()
