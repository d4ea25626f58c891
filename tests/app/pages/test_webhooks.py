"""The webhooks admin page: admins only, CSRF on every form, the secret shown once, everything escaped."""

from __future__ import annotations

import re

import pytest
from sqlmodel import Session, select

from app.models import Webhook
from app.pages.webhooks import VERIFY_SOURCE
from feedback.webhooks import sign
from tests.app.services.test_webhooks import answer, make_poll
from tests.helpers import csrf_token, make_user, sign_in


@pytest.fixture
def people(bare):
    make_user(bare, "admin@example.org", "admin")
    make_user(bare, "rita@example.org", "reviewer")
    return bare


@pytest.fixture
def admin(people):
    client = people.test_client()
    sign_in(client, "admin@example.org")
    return client


def add(client, url: str = "http://127.0.0.1:9/hook", **fields):
    data = {"url": url, "csrf_token": csrf_token(client, "/webhooks/"), **fields}
    return client.post("/webhooks/", data=data)


def secret_on(page: str) -> str | None:
    match = re.search(r'id="secret-value"[^>]*value="([^"]+)"', page)
    return match.group(1) if match else None


def hooks(app) -> list[Webhook]:
    with Session(app.extensions["db_engine"]) as s:
        return list(s.exec(select(Webhook).order_by(Webhook.id)))


def test_anonymous_visitors_are_sent_to_sign_in_and_their_posts_refused(people):
    client = people.test_client()
    response = client.get("/webhooks/")
    assert response.status_code == 302 and response.headers["Location"] == "/login?next=/webhooks/"
    token = csrf_token(client)
    assert (
        client.post("/webhooks/", data={"url": "http://127.0.0.1/", "allow_private": "on", "csrf_token": token}).status_code
        == 401
    )
    assert hooks(people) == []


def test_reviewers_get_403_on_every_route(people):
    client = people.test_client()
    sign_in(client, "rita@example.org")
    token = csrf_token(client, "/login")
    assert client.get("/webhooks/").status_code == 403
    data = {"url": "http://127.0.0.1/", "allow_private": "on", "csrf_token": token}
    assert client.post("/webhooks/", data=data).status_code == 403
    assert client.post("/webhooks/1/disable", data={"csrf_token": token}).status_code == 403
    assert client.post("/webhooks/1/rotate", data={"csrf_token": token}).status_code == 403
    assert hooks(people) == []


def test_forms_without_the_csrf_token_are_refused(people, admin):
    assert admin.post("/webhooks/", data={"url": "http://127.0.0.1:9/", "allow_private": "on"}).status_code == 400
    assert hooks(people) == []
    add(admin, allow_private="on")
    for action in ("disable", "rotate"):
        assert admin.post(f"/webhooks/1/{action}").status_code == 400
    [hook] = hooks(people)
    assert hook.disabled_at is None


def test_an_admin_adds_a_webhook_and_sees_its_secret_once(people, admin):
    page = admin.get("/webhooks/").get_data(as_text=True)
    assert "No webhook yet" in page and "Allow loopback and private addresses" in page
    created = add(admin, allow_private="on")
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    body = created.get_data(as_text=True)
    [hook] = hooks(people)
    assert secret_on(body) == hook.secret and "it is not shown again" in body
    assert hook.allow_private and hook.poll_id is None and hook.created_by.startswith("user:")
    later = admin.get("/webhooks/").get_data(as_text=True)
    assert hook.secret not in later and "http://127.0.0.1:9/hook" in later and "every poll" in later


def test_a_private_address_needs_the_checkbox(people, admin):
    refused = add(admin)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "127.0.0.1 is a loopback address" in page
    assert 'value="http://127.0.0.1:9/hook"' in page  # the form keeps what was typed
    assert secret_on(page) is None and hooks(people) == []
    for url, why in [("ftp://example.org/", "only http"), ("http://a:b@127.0.0.1/", "credentials")]:
        response = add(admin, url, allow_private="on")
        assert response.status_code == 422 and why in response.get_data(as_text=True)
    assert add(admin, "http://169.254.169.254/", allow_private="on").status_code == 422
    assert add(admin, poll_id="abc", allow_private="on").status_code == 422
    assert add(admin, poll_id="12345", allow_private="on").status_code == 422
    assert hooks(people) == []


def test_an_admin_adds_an_alert_webhook(people, admin):
    page = admin.get("/webhooks/").get_data(as_text=True)
    assert '<option value="alert"' in page
    poll = make_poll(people.extensions["db_engine"])
    refused = add(admin, topic="alert", poll_id=str(poll.id), allow_private="on")
    assert refused.status_code == 422 and "takes no poll" in refused.get_data(as_text=True)
    assert add(admin, topic="everything", allow_private="on").status_code == 422
    created = add(admin, topic="alert", allow_private="on")
    assert created.status_code == 201
    [hook] = hooks(people)
    assert (hook.topic, hook.poll_id) == ("alert", None) and secret_on(created.get_data(as_text=True)) == hook.secret
    listed = admin.get("/webhooks/").get_data(as_text=True)
    assert "<td>alerts</td>" in listed


def test_a_webhook_for_one_poll_lists_its_question_escaped(people, admin):
    poll = make_poll(people.extensions["db_engine"], "<script>alert(1)</script> useful?")
    page = admin.get("/webhooks/").get_data(as_text=True)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; useful?" in page  # in the select
    assert add(admin, "http://127.0.0.1:9/?q=<b>x</b>", poll_id=str(poll.id), allow_private="on").status_code == 201
    page = admin.get("/webhooks/").get_data(as_text=True)
    assert "<b>x</b>" not in page and "?q=&lt;b&gt;x&lt;/b&gt;" in page
    assert hooks(people)[0].poll_id == poll.id


def test_rotate_shows_a_new_secret_and_disable_gives_up_waiting_deliveries(people, admin):
    add(admin, allow_private="on")
    old = hooks(people)[0].secret
    token = csrf_token(admin, "/webhooks/")
    rotated = admin.post("/webhooks/1/rotate", data={"csrf_token": token})
    new = hooks(people)[0].secret
    assert rotated.status_code == 200 and new != old and secret_on(rotated.get_data(as_text=True)) == new

    engine = people.extensions["db_engine"]
    answer(engine, make_poll(engine))
    page = admin.get("/webhooks/").get_data(as_text=True)
    assert "whd_1" in page and ">pending<" in page
    disabled = admin.post("/webhooks/1/disable", data={"csrf_token": token}, follow_redirects=True)
    page = disabled.get_data(as_text=True)
    assert disabled.status_code == 200 and "Webhook 1 disabled; 1 waiting deliveries given up." in page
    assert ">failed<" in page and "disabled before this was delivered" in page
    assert hooks(people)[0].disabled_at is not None
    assert admin.post("/webhooks/1/disable", data={"csrf_token": token}).status_code == 409
    assert admin.post("/webhooks/1/rotate", data={"csrf_token": token}).status_code == 409
    assert admin.post("/webhooks/99/disable", data={"csrf_token": token}).status_code == 404
    assert admin.post("/webhooks/99/rotate", data={"csrf_token": token}).status_code == 404


def test_the_verification_code_shown_to_receivers_works_as_copied():
    namespace: dict = {}
    exec(VERIFY_SOURCE, namespace)  # what the page shows, run as a receiver would
    body = b'{"id":"whd_1"}'
    header = sign("whsec_abc", 1767268800, body)["Feedloop-Signature"]
    assert namespace["verify"](header, body, "whsec_abc", now=1767268800) == 1767268800
    with pytest.raises(namespace["InvalidSignature"]):
        namespace["verify"](header, body + b"x", "whsec_abc", now=1767268800)
