"""Every page route × {anonymous, app key, reviewer, admin}: pages answer only the roles their blueprint
declares. Anonymous visitors (and API keys, which do not open pages) are sent to sign in, or get 401 where a
redirect makes no sense; a signed-in person without the role gets 403. Object checks (another reviewer's task)
are tested beside each page."""

from __future__ import annotations

import re

import pytest

from tests.app.api.test_access import routes
from tests.helpers import csrf_token, make_user, new_key, sign_in

ROLES = {"reviewer": {"reviewer", "admin"}, "admin": {"admin"}}


def page_routes(app) -> list[tuple[str, str, str]]:
    """(access, method, url) of every page route for signed-in people, path parameters filled with 1."""
    out = []
    for rule in app.url_map.iter_rules():
        blueprint = app.blueprints.get(rule.endpoint.rpartition(".")[0])
        access = getattr(app.view_functions[rule.endpoint], "access", getattr(blueprint, "access", None))
        if access in ("key", "public", None) or rule.rule.startswith(("/api/", "/healthz")):
            continue  # the API has its own access tests; public pages (sign-in, poll embeds) theirs
        url = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", "1", rule.rule)
        out += [(access, method, url) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return out


@pytest.fixture
def people(bare):
    make_user(bare, "admin@example.org", "admin")
    make_user(bare, "rita@example.org", "reviewer")
    return bare


def as_role(app, role: str):
    client = app.test_client()
    headers = {}
    if role == "key":
        headers["Authorization"] = f"Bearer {new_key(app)}"
    elif role in ("reviewer", "admin"):
        sign_in(client, {"reviewer": "rita@example.org", "admin": "admin@example.org"}[role])
    return client, headers


@pytest.mark.parametrize("role", ["anonymous", "key", "reviewer", "admin"])
def test_every_page_answers_only_the_roles_it_declares(people, role):
    client, headers = as_role(people, role)
    token = csrf_token(client)
    routes = page_routes(people)
    assert any(access == "admin" for access, _, _ in routes) and any(access == "reviewer" for access, _, _ in routes)
    for access, method, url in routes:
        response = client.open(url, method=method, headers=headers, data={"csrf_token": token})
        allowed = role in ROLES[access]
        where = (role, access, method, url, response.status_code)
        if allowed:
            assert response.status_code not in (401, 403), where
        elif role in ("anonymous", "key"):
            if method == "GET":
                assert response.status_code == 302 and "/login?next=" in response.headers["Location"], where
            else:
                assert response.status_code == 401, where
        else:
            assert response.status_code == 403, where


def test_page_posts_without_the_csrf_token_are_refused(people):
    client, _ = as_role(people, "admin")
    for _, method, url in page_routes(people):
        if method == "POST":
            response = client.post(url, data={})
            assert response.status_code == 400, (url, response.status_code)


@pytest.mark.parametrize("role", ["reviewer", "admin"])
def test_a_signed_in_session_does_not_open_the_keyed_api(people, role):
    """Apps use keys; a browser session (which another site could ride on) never reaches the keyed API."""
    client, _ = as_role(people, role)
    for method, url in routes(people, "key"):
        response = client.open(url, method=method, json={})
        assert response.status_code == 401 and response.is_json, (method, url, response.status_code)
