"""Every route says who may call it: it belongs to a blueprint made by `keyed(...)` or `public(...)` (Flask's own
`static` aside), the public ones are exactly those listed here, and every keyed one answers 401 JSON to a request
without a key or with a wrong one. Adding a route on a plain Blueprint, or a public route, fails here."""

from __future__ import annotations

import re

import pytest

PUBLIC_ENDPOINTS = {
    "health.healthz",
    "docs.openapi",
    "docs.docs",
    "auth.login",
    "auth.logout",
    "poll_responses.ask",
    "poll_responses.answer",
    "embed.show",
    "embed.submit",
}
FLASK_OWN = {"static"}
WRONG_KEYS = [None, "Bearer fl_not-a-real-key", "Bearer", "Basic dXNlcjpwYXNz"]


def blueprint_access(app, endpoint: str) -> str | None:
    name, dot, _ = endpoint.rpartition(".")
    blueprint = app.blueprints.get(name) if dot else None
    return getattr(blueprint, "access", None)


def routes(app, access: str) -> list[tuple[str, str]]:
    """(method, url) for each route of that access, path parameters filled with a dummy value."""
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in FLASK_OWN or blueprint_access(app, rule.endpoint) != access:
            continue
        url = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", "dummy1", rule.rule)
        out += [(method, url) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return out


def test_every_route_belongs_to_a_blueprint_that_declares_its_access(app):
    undeclared = {
        rule.endpoint: rule.rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in FLASK_OWN and blueprint_access(app, rule.endpoint) not in ("key", "public", "reviewer", "admin")
    }
    assert not undeclared, f"routes on a blueprint made by none of keyed(...), public(...), pages(...): {undeclared}"


def test_only_the_expected_routes_are_public(app):
    public = {rule.endpoint for rule in app.url_map.iter_rules() if blueprint_access(app, rule.endpoint) == "public"}
    assert public == PUBLIC_ENDPOINTS


def test_keyed_blueprints_check_the_key_before_anything_else(app):
    from app.auth import require_api_key

    for name, blueprint in app.blueprints.items():
        if getattr(blueprint, "access", None) == "key":
            assert require_api_key in app.before_request_funcs.get(name, []), name


@pytest.mark.parametrize("header", WRONG_KEYS)
def test_every_keyed_route_answers_401_json_without_a_valid_key(app, client, header):
    keyed = routes(app, "key")
    assert len(keyed) >= 10
    headers = {"Authorization": header} if header else {}
    for method, url in keyed:
        response = client.open(url, method=method, headers=headers, json={})
        assert response.status_code == 401, (method, url, response.status_code)
        assert response.is_json and response.json["error"] == "unauthorized", (method, url, response.data)
        assert set(response.json) == {"error", "message"}


def test_public_api_routes_answer_without_a_key(app, client):
    for method, url in routes(app, "public"):
        if url.startswith(("/api/", "/healthz")):
            response = client.open(url, method=method)  # a made-up poll token: refused for itself, never for a key
            assert response.status_code == 200 or ("dummy1" in url and response.status_code not in (401, 403)), (method, url)
