"""Webhooks on poll answers, sent to a real HTTP receiver on 127.0.0.1 that checks every signature."""

from __future__ import annotations

import functools
import json
import shutil
import ssl
import subprocess
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlmodel import Session, select

from app.db import write_session
from app.models import Poll, PollResponse, Webhook, WebhookDelivery, utcnow
from app.services.webhooks import (
    Round,
    WebhookError,
    create_webhook,
    deliver_due,
    disable_webhook,
    enqueue_poll_response,
    list_webhooks,
    recent_deliveries,
    rotate_secret,
    send_pinned,
)
from feedback.webhooks import SIGNATURE_HEADER, InvalidSignature, verify
from tests.helpers import bare_app


class Receiver:
    """An HTTP server in a thread: answers each POST with the next planned status (200 once the plan is used up),
    and keeps what it received and whether the signature verified with `secret`."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.plan: list[int] = []
        self.server_names: list[str | None] = []  # what TLS clients asked for (SNI)
        self.delay = 0.0
        self.secret = ""
        self.received: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    verify(self.headers.get(SIGNATURE_HEADER, ""), body, receiver.secret)
                    verified = True
                except InvalidSignature:
                    verified = False
                with receiver.lock:
                    receiver.received.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body, "verified": verified}
                    )
                    status = receiver.plan.pop(0) if receiver.plan else 200
                time.sleep(receiver.delay)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "7")
                self.end_headers()
                self.wfile.write(b"thanks!" if status < 300 else b"nope!!!")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            tls.sni_callback = lambda sock, name, context: self.server_names.append(name)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/hooks/feedloop"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def bodies(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.received]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def make_poll(engine, question: str = "Was this useful?") -> Poll:
    with write_session(engine) as s:
        poll = Poll(public_token=uuid.uuid4().hex[:16], question=question, kind="thumbs", created_by="user:1")
        s.add(poll)
    return poll


def answer(engine, poll: Poll, respondent: str = "r1", value="up") -> PollResponse:
    """An answer stored as the polls service stores one: the response and its deliveries in one transaction."""
    with write_session(engine) as s:
        response = PollResponse(
            poll_id=poll.id, respondent_id=respondent, answer=value, event_id="e1", item_id="pasta", reward_value=1.0
        )
        s.add(response)
        enqueue_poll_response(s, poll, response)
    return response


def hook(engine, url: str, poll: Poll | None = None, allow_private: bool = True, **kw) -> tuple[int, str]:
    with write_session(engine) as s:
        created = create_webhook(
            s, url, created_by="user:1", poll_id=poll.id if poll else None, allow_private=allow_private, **kw
        )
    return created.id, created.secret


def deliveries(engine) -> list[WebhookDelivery]:
    with Session(engine) as s:
        return list(s.exec(select(WebhookDelivery).order_by(WebhookDelivery.id)))


@pytest.fixture
def tuned(config):
    """An app with some settings changed: tuned(webhook_attempts=3)."""
    apps = []

    def make(**settings):
        apps.append(bare_app({**config, **settings}))
        return apps[-1].extensions["db_engine"], apps[-1].config["FEEDLOOP"]

    yield make
    for app in apps:
        app.extensions["db_engine"].dispose()


@pytest.fixture
def engine(bare):
    return bare.extensions["db_engine"]


@pytest.fixture
def settings(bare):
    return bare.config["FEEDLOOP"]


def test_an_answer_reaches_the_receiver_signed_with_the_webhook_secret(engine, settings, receiver):
    poll = make_poll(engine)
    webhook_id, receiver.secret = hook(engine, receiver.url, poll)
    response = answer(engine, poll)
    assert deliver_due(engine, settings).delivered == 1

    [got] = receiver.received
    assert got["verified"] and got["path"] == "/hooks/feedloop"
    assert got["headers"]["Content-Type"] == "application/json" and got["headers"]["Feedloop-Event"] == "poll.response"
    body = json.loads(got["body"])
    assert got["headers"]["Feedloop-Delivery"] == body["id"] == f"whd_{deliveries(engine)[0].id}"
    assert body["type"] == "poll.response" and body["created_at"]
    assert body["poll"] == {"id": poll.id, "public_token": poll.public_token, "question": "Was this useful?", "kind": "thumbs"}
    assert body["response"] | {"created_at": None} == {
        "id": response.id,
        "respondent_id": "r1",
        "answer": "up",
        "event_id": "e1",
        "item_id": "pasta",
        "reward_value": 1.0,
        "created_at": None,
    }
    [delivery] = deliveries(engine)
    assert delivery.delivered_at is not None and delivery.attempts == 1 and delivery.last_status == 200
    assert got["body"] == delivery.body.encode()  # the stored bytes are the bytes sent
    assert deliver_due(engine, settings).attempted == 0  # delivered once, not again


def test_only_active_webhooks_for_the_poll_or_for_every_poll_get_a_delivery(engine, settings, receiver):
    poll, other = make_poll(engine), make_poll(engine, "Another?")
    mine, _ = hook(engine, receiver.url + "/mine", poll)
    every, _ = hook(engine, receiver.url + "/every")
    hook(engine, receiver.url + "/other", other)
    gone, _ = hook(engine, receiver.url + "/gone", poll)
    with write_session(engine) as s:
        disable_webhook(s, gone)
    answer(engine, poll)
    assert sorted(d.webhook_id for d in deliveries(engine)) == sorted([mine, every])


def test_deliveries_belong_to_the_answers_transaction(engine, receiver):
    poll = make_poll(engine)
    hook(engine, receiver.url, poll)
    with pytest.raises(RuntimeError), write_session(engine) as s:
        response = PollResponse(poll_id=poll.id, respondent_id="r1", answer="up")
        s.add(response)
        enqueue_poll_response(s, poll, response)
        raise RuntimeError("the answer failed to store")
    assert deliveries(engine) == []


def test_a_failed_attempt_is_retried_after_the_back_off_with_the_same_body(engine, settings, receiver):
    poll = make_poll(engine)
    _, receiver.secret = hook(engine, receiver.url, poll)
    answer(engine, poll)
    receiver.plan = [500]
    t0 = utcnow()
    assert deliver_due(engine, settings, t0, rand=lambda: 1.0).retrying == 1
    [delivery] = deliveries(engine)
    assert (delivery.attempts, delivery.last_status, delivery.delivered_at) == (1, 500, None)
    assert delivery.last_error == "HTTP 500: nope!!!" and delivery.next_attempt_at == t0 + timedelta(seconds=10)

    assert deliver_due(engine, settings, t0 + timedelta(seconds=9.9)).attempted == 0  # not yet
    assert len(receiver.received) == 1
    assert deliver_due(engine, settings, t0 + timedelta(seconds=10), rand=lambda: 1.0).delivered == 1
    [delivery] = deliveries(engine)
    assert (delivery.attempts, delivery.last_status, delivery.last_error) == (2, 200, None)
    first, second = receiver.received
    assert first["body"] == second["body"] and first["verified"] and second["verified"]


def test_a_delivery_is_given_up_after_the_last_attempt(tuned, receiver):
    engine, settings = tuned(webhook_attempts=3)
    poll = make_poll(engine)
    hook(engine, receiver.url, poll)
    answer(engine, poll)
    receiver.plan = [503] * 10
    now = utcnow()
    rounds = []
    for _ in range(5):
        rounds.append(deliver_due(engine, settings, now, rand=lambda: 1.0))
        now += timedelta(hours=1)
    assert [(r.retrying, r.failed) for r in rounds] == [(1, 0), (1, 0), (0, 1), (0, 0), (0, 0)]
    [delivery] = deliveries(engine)
    assert delivery.attempts == 3 and delivery.failed_at is not None and delivery.last_status == 503
    assert len(receiver.received) == 3
    with Session(engine) as s:  # closed, or PostgreSQL keeps its locks and the next test's reset waits on them
        [view] = recent_deliveries(s)
    assert view.status == "failed" and view.next_attempt_at is None


def test_a_redirect_is_not_followed(engine, settings, receiver):
    poll = make_poll(engine)
    hook(engine, receiver.url, poll)
    answer(engine, poll)
    receiver.plan = [302]
    assert deliver_due(engine, settings).retrying == 1
    assert [r["path"] for r in receiver.received] == ["/hooks/feedloop"]  # /elsewhere never asked
    [delivery] = deliveries(engine)
    assert (
        delivery.last_status == 302
        and "redirects are not followed" in delivery.last_error
        and "/elsewhere" in delivery.last_error
    )


def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt(tuned, receiver):
    engine, settings = tuned(webhook_timeout_seconds=0.3)
    poll = make_poll(engine)
    hook(engine, receiver.url, poll)
    answer(engine, poll)
    receiver.delay = 1.0
    started = time.monotonic()
    assert deliver_due(engine, settings).retrying == 1
    assert time.monotonic() - started < 1.0
    [delivery] = deliveries(engine)
    assert delivery.last_status is None and "timed out" in delivery.last_error.lower()


def test_an_unreachable_receiver_is_a_failed_attempt(engine, settings, receiver):
    poll = make_poll(engine)
    url = receiver.url
    receiver.server.shutdown()
    receiver.server.server_close()
    hook(engine, url, poll)
    answer(engine, poll)
    assert deliver_due(engine, settings).retrying == 1
    assert "refused" in deliveries(engine)[0].last_error.lower()


def test_private_addresses_are_refused_at_creation_unless_allowed(engine, receiver):
    for url in (receiver.url, "http://[::1]/", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.8/"):
        with pytest.raises(WebhookError, match="address"):
            hook(engine, url, allow_private=False)
    with pytest.raises(WebhookError, match="metadata"):
        hook(engine, "http://169.254.169.254/", allow_private=True)
    with pytest.raises(WebhookError, match="only http"):
        hook(engine, "ftp://127.0.0.1/")
    with pytest.raises(WebhookError, match="credentials"):
        hook(engine, f"http://user:pw@127.0.0.1:{receiver.port}/")
    with pytest.raises(WebhookError, match="does not resolve"):
        hook(engine, "https://no-such-host.invalid/hook", allow_private=False)
    with Session(engine) as s:
        assert list_webhooks(s) == []


def test_a_name_that_resolves_privately_at_send_time_is_not_sent_to(engine, settings, receiver):
    """DNS rebinding: public when the webhook was created, loopback when it is sent."""
    poll = make_poll(engine)
    url = f"http://hooks.example:{receiver.port}/in"
    hook(engine, url, poll, allow_private=False, resolve=lambda host, port: ["93.184.215.14"])
    answer(engine, poll)
    assert deliver_due(engine, settings, resolve=lambda host, port: ["127.0.0.1"]).retrying == 1
    assert receiver.received == []
    assert deliveries(engine)[0].last_error.startswith("not sent: 127.0.0.1 is a loopback address")


def test_the_sender_connects_to_the_checked_address_with_the_name_in_the_host_header(engine, settings, receiver):
    poll = make_poll(engine)
    resolved = []

    def once(host, port):
        resolved.append(host)
        return ["127.0.0.1"]

    hook(engine, f"http://hooks.example:{receiver.port}/in?k=v", poll, resolve=once)
    answer(engine, poll)
    assert deliver_due(engine, settings, resolve=once).delivered == 1
    assert resolved == ["hooks.example", "hooks.example"]  # once at creation, once at send: no second lookup
    [got] = receiver.received
    assert got["headers"]["Host"] == f"hooks.example:{receiver.port}" and got["path"] == "/in?k=v"


def test_a_restart_loses_no_delivery(tuned, receiver):
    engine, _ = tuned()
    poll = make_poll(engine)
    _, receiver.secret = hook(engine, receiver.url, poll)
    for n in range(3):
        answer(engine, poll, respondent=f"r{n}")
    engine.dispose()  # the process stops before anything is sent

    again, settings = tuned()  # a new process: a new app and engine on the same database
    assert deliver_due(again, settings).delivered == 3
    assert sorted(b["response"]["respondent_id"] for b in receiver.bodies()) == ["r0", "r1", "r2"]
    assert all(r["verified"] for r in receiver.received)


def test_two_senders_at_once_send_each_delivery_once(engine, settings, receiver):
    poll = make_poll(engine)
    hook(engine, receiver.url, poll)
    for n in range(24):
        answer(engine, poll, respondent=f"r{n}")
    receiver.delay = 0.02  # so that the two rounds overlap
    now, results = utcnow(), []
    start = threading.Barrier(2)

    def sender():
        start.wait()
        results.append(deliver_due(engine, settings, now))

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 2 and sum(r.delivered for r in results) == 24
    assert Counter(b["id"] for b in receiver.bodies()) == {f"whd_{d.id}": 1 for d in deliveries(engine)}
    assert all(d.attempts == 1 and d.delivered_at for d in deliveries(engine))


def test_disabling_gives_up_waiting_deliveries_and_stops_new_ones(engine, settings, receiver):
    poll = make_poll(engine)
    webhook_id, _ = hook(engine, receiver.url, poll)
    answer(engine, poll)
    with write_session(engine) as s:
        assert disable_webhook(s, webhook_id) == 1
    answer(engine, poll, respondent="r2")
    assert deliver_due(engine, settings).attempted == 0 and receiver.received == []
    [delivery] = deliveries(engine)
    assert delivery.failed_at is not None and "disabled" in delivery.last_error
    with pytest.raises(WebhookError, match="disabled"), write_session(engine) as s:
        disable_webhook(s, webhook_id)


def test_a_rotated_secret_signs_the_next_attempts(engine, settings, receiver):
    poll = make_poll(engine)
    webhook_id, old = hook(engine, receiver.url, poll)
    answer(engine, poll)
    with write_session(engine) as s:
        new = rotate_secret(s, webhook_id)
    assert new != old and new.startswith("whsec_") and len(new) > 40
    receiver.secret = new
    deliver_due(engine, settings)
    assert receiver.received[0]["verified"]


def test_creation_refuses_unknown_polls_and_duplicates(engine, receiver):
    poll = make_poll(engine)
    with pytest.raises(WebhookError, match="no poll 999"):
        hook(engine, receiver.url, poll=Poll(id=999, public_token="x", question="?", kind="text", created_by="x"))
    hook(engine, receiver.url, poll)
    with pytest.raises(WebhookError, match="already"):
        hook(engine, receiver.url, poll)
    hook(engine, receiver.url)  # the same URL for every poll is another webhook


def test_the_list_counts_deliveries_by_state(engine, settings, receiver):
    poll = make_poll(engine)
    webhook_id, _ = hook(engine, receiver.url, poll)
    for n in range(3):
        answer(engine, poll, respondent=f"r{n}")
    receiver.plan = [500]
    deliver_due(engine, settings, limit=2)  # the first fails, the second is delivered, the third waits
    with Session(engine) as s:
        [view] = list_webhooks(s)
        states = sorted(d.status for d in recent_deliveries(s, webhook_id=webhook_id))
    assert (view.id, view.poll_question, view.pending, view.delivered, view.failed) == (webhook_id, "Was this useful?", 2, 1, 0)
    assert states == ["delivered", "pending", "retrying"]


def test_a_webhook_row_without_allow_private_is_never_sent_to_a_private_address(engine, settings, receiver):
    """Even a row written around create_webhook (an import, a manual edit) is checked when sent."""
    poll = make_poll(engine)
    with write_session(engine) as s:
        s.add(Webhook(url=receiver.url, secret="whsec_x", poll_id=poll.id, allow_private=False, created_by="sql"))
    answer(engine, poll)
    assert deliver_due(engine, settings).retrying == 1 and receiver.received == []
    assert "loopback" in deliveries(engine)[0].last_error


@pytest.fixture
def tls_receiver(tmp_path):
    """An HTTPS receiver on 127.0.0.1 whose certificate (self-signed, our own authority) names hooks.example."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
         "-subj", "/CN=hooks.example", "-addext", "subjectAltName=DNS:hooks.example", "-keyout", key, "-out", cert],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    r = Receiver(tls=context)
    r.ca = str(cert)
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_https_connects_to_the_checked_address_and_checks_the_certificate_against_the_name(engine, settings, tls_receiver):
    poll = make_poll(engine)
    to_loopback = lambda host, port: ["127.0.0.1"]  # noqa: E731
    _, tls_receiver.secret = hook(engine, f"https://hooks.example:{tls_receiver.port}/in", poll, resolve=to_loopback)
    hook(engine, f"https://other.example:{tls_receiver.port}/in", poll, resolve=to_loopback)
    answer(engine, poll)
    send = functools.partial(send_pinned, ca_certs=tls_receiver.ca)
    assert deliver_due(engine, settings, send=send, resolve=to_loopback) == Round(delivered=1, retrying=1)
    assert tls_receiver.server_names.count("hooks.example") == 1 and "other.example" in tls_receiver.server_names
    [got] = tls_receiver.received  # other.example's certificate check failed before anything was sent
    assert got["verified"] and got["headers"]["Host"] == f"hooks.example:{tls_receiver.port}"
    failed = next(d for d in deliveries(engine) if d.last_error)
    assert "hostname 'other.example' doesn't match 'hooks.example'" in failed.last_error


def test_https_refuses_a_certificate_from_an_unknown_authority(engine, settings, tls_receiver):
    poll = make_poll(engine)
    to_loopback = lambda host, port: ["127.0.0.1"]  # noqa: E731
    hook(engine, f"https://hooks.example:{tls_receiver.port}/in", poll, resolve=to_loopback)
    answer(engine, poll)
    assert deliver_due(engine, settings, resolve=to_loopback).retrying == 1  # the system authorities only
    assert tls_receiver.received == [] and "certificate verify failed" in deliveries(engine)[0].last_error
