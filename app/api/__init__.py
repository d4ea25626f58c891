"""The JSON API under /api/v1, one blueprint per resource, each declaring who may call it: `keyed` blueprints
answer only requests with a valid API key, `public` ones anyone (tests/app/api/test_access.py checks every
route against that)."""

from flask import Blueprint, Flask

from app.auth import require_api_key
from app.web import csrf

PREFIX = "/api/v1"


def keyed(name: str, import_name: str) -> Blueprint:
    bp = Blueprint(name, import_name, url_prefix=PREFIX)
    bp.before_request(require_api_key)
    bp.access = "key"
    return bp


def public(name: str, import_name: str, url_prefix: str = PREFIX, **options) -> Blueprint:
    bp = Blueprint(name, import_name, url_prefix=url_prefix, **options)
    bp.access = "public"
    return bp


def register(app: Flask) -> None:
    from app.api import (
        docs,
        health,
        interactions,
        items,
        loop,
        poll_responses,
        polls,
        recommendations,
        review_tasks,
        rewards,
        search,
    )

    for module in (
        items,
        search,
        recommendations,
        rewards,
        interactions,
        loop,
        polls,
        poll_responses,
        review_tasks,
        docs,
        health,
    ):
        csrf.exempt(module.bp)  # no cookies reach the API: keyed routes take a bearer key, public ones nothing
        app.register_blueprint(module.bp)
