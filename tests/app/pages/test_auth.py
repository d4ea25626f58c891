"""Signing in and out: the cookie's flags, CSRF on both forms, a rate limit on attempts, no open redirect."""

from __future__ import annotations

import pytest

from app import db
from app.services.users import disable_user
from tests.helpers import PASSWORD, bare_app, csrf_token, make_user, sign_in


@pytest.fixture
def people(bare):
    make_user(bare, "admin@example.org", "admin")
    make_user(bare, "rita@example.org", "reviewer")
    return bare


def test_anonymous_visitors_are_sent_to_sign_in(people):
    response = people.test_client().get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/"


def test_sign_in_sets_an_http_only_same_site_session_cookie(people):
    client = people.test_client()
    response = sign_in(client, "admin@example.org")
    assert response.headers["Location"] == "/"
    (cookie,) = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("feedloop_session=")]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert client.get("/").status_code == 200


def test_the_session_cookie_is_secure_when_served_over_https(config):
    app = bare_app({**config, "public_url": "https://feedloop.example.com"})
    make_user(app, "admin@example.org", "admin")
    client = app.test_client()
    page = client.get("/login", base_url="https://localhost").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    response = client.post(
        "/login", data={"email": "admin@example.org", "password": PASSWORD, "csrf_token": token}, base_url="https://localhost"
    )
    (session_cookie,) = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("feedloop_session=")]
    assert "; Secure" in session_cookie and "HttpOnly" in session_cookie
    app.extensions["db_engine"].dispose()


def test_sign_in_without_the_csrf_token_is_refused(people):
    response = people.test_client().post("/login", data={"email": "admin@example.org", "password": PASSWORD})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("email", "password"),
    [("admin@example.org", "wrong password here"), ("nobody@example.org", PASSWORD), ("", ""), ("admin@example.org", "x" * 2000)],
)
def test_wrong_credentials_are_refused_with_one_message(people, email, password):
    client = people.test_client()
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": csrf_token(client)})
    assert response.status_code in (400, 401)
    assert client.get("/").status_code == 302


def test_a_disabled_account_can_neither_sign_in_nor_stay_signed_in(people):
    client = people.test_client()
    sign_in(client, "rita@example.org")
    with people.app_context(), db.write_session() as s:
        disable_user(s, "rita@example.org")
    assert client.get("/").status_code == 302  # the next request no longer has a user
    response = client.post("/login", data={"email": "rita@example.org", "password": PASSWORD, "csrf_token": csrf_token(client)})
    assert response.status_code == 401


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"])
def test_next_never_leaves_the_site(people, target):
    client = people.test_client()
    response = client.post(
        "/login",
        query_string={"next": target},
        data={"email": "admin@example.org", "password": PASSWORD, "csrf_token": csrf_token(client)},
    )
    assert response.headers["Location"] == "/"


def test_next_returns_to_the_page_asked_for(people):
    client = people.test_client()
    response = client.post(
        "/login?next=/activity",
        data={"email": "admin@example.org", "password": PASSWORD, "csrf_token": csrf_token(client)},
    )
    assert response.headers["Location"] == "/activity"


def test_sign_out_needs_the_csrf_token_and_ends_the_session(people):
    client = people.test_client()
    sign_in(client, "admin@example.org")
    assert client.post("/logout").status_code == 400  # a forged sign-out from another site
    assert client.get("/").status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf_token(client, "/")}).status_code == 302
    assert client.get("/").status_code == 302


def test_sign_in_attempts_are_rate_limited_per_address(config):
    app = bare_app({**config, "login_rate_limit": "3/minute"})
    client = app.test_client()
    token = csrf_token(client)
    codes = [
        client.post("/login", data={"email": "a@example.org", "password": "wrong password!", "csrf_token": token}).status_code
        for _ in range(4)
    ]
    assert codes == [401, 401, 401, 429]
    other = client.post(
        "/login", data={"email": "a@example.org", "password": "x", "csrf_token": token}, environ_base={"REMOTE_ADDR": "10.1.1.1"}
    )
    assert other.status_code == 401
    app.extensions["db_engine"].dispose()


def test_pages_send_a_strict_content_security_policy(people):
    response = people.test_client().get("/login")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "<script>" not in response.get_data(as_text=True)
    assert ' style="' not in response.get_data(as_text=True)
