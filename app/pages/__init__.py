"""Server-rendered pages (Flask templates with htmx), one blueprint per kind of page, each declaring who may
open it: `pages(..., roles=None)` anyone, otherwise a signed-in person with one of `roles`.

Anonymous visitors are sent to /login (401 for htmx and non-GET requests); a signed-in person without the role
gets 403. Objects are checked again in the views (a reviewer decides only tasks they hold)."""

from __future__ import annotations

import functools

from flask import Blueprint, Flask, abort, redirect, request, url_for
from flask_login import current_user

from app import db
from app.services import dashboard

REVIEWERS = ("admin", "reviewer")
ADMINS = ("admin",)


def pages(name: str, import_name: str, *, roles: tuple[str, ...] | None, url_prefix: str | None = None) -> Blueprint:
    bp = Blueprint(name, import_name, url_prefix=url_prefix)  # templates: app/pages/templates/<name>/
    bp.access = "public" if roles is None else roles[-1]
    if roles is not None:
        bp.before_request(lambda: _require(roles))
    return bp


def admins_only(view):
    """A view for admins inside a blueprint that reviewers may open (its `access` says so to the route tests)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    wrapper.access = "admin"
    return wrapper


def _require(roles: tuple[str, ...]):
    if not current_user.is_authenticated:
        if request.method != "GET" or request.headers.get("HX-Request"):
            abort(401)
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if current_user.role not in roles:
        abort(403)
    return None


# Admin pages in the navigation.
ADMIN_NAV = (
    ("home.index", "Home"),
    ("polls.index", "Polls"),
    ("webhooks.index", "Webhooks"),
    ("review.audit", "Audit log"),
    ("monitoring.index", "Monitoring"),
    ("models.index", "Models"),
    ("events.index", "Events"),
    ("monitoring.jobs", "Jobs"),
)


def register(app: Flask) -> None:
    from app.pages import auth, embed, events, home, models, monitoring, polls, review, webhooks

    for module in (auth, home, webhooks, embed, polls, review, monitoring, models, events):
        app.register_blueprint(module.bp)
    app.context_processor(_navigation)
    app.add_template_filter(duration)


def duration(seconds: float) -> str:
    """A span of time as people read it: 0.4 s, 12 s, 5 min, 3.5 h, 2 days."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def _navigation() -> dict:
    if not current_user.is_authenticated:
        return {}
    return {"nav_queues": dashboard.open_tasks(db.session()), "nav_admin": ADMIN_NAV}
