"""/events: a logged decision and its lineage, for reviewers and admins: what was asked and shown (context, the
activity features the policy saw, the shown items with their probabilities and explanations), its rewards, the
poll answers and review decisions about it, the model and release that served it, and the versions and retrain
runs that learned from it. A reviewer sees only their own decisions on a task that is still open, as in the
queues."""

from __future__ import annotations

import re

from flask import abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user

from app import db
from app.api.schemas.common import EVENT_ID_PATTERN
from app.pages import REVIEWERS, pages
from app.services import decisions, lineage

bp = pages("events", __name__, roles=REVIEWERS, url_prefix="/events")
EVENT_ID = re.compile(EVENT_ID_PATTERN)


@bp.get("/")
def index():
    """The look-up form; with `?event_id=`, the event's page."""
    event_id = request.args.get("event_id", "").strip()
    if not event_id:
        return render_template("events/index.html", event_id="", error=None)
    if not EVENT_ID.match(event_id):
        error = "An event id is the 32 letters and digits a recommendation answered as event_id."
        return render_template("events/index.html", event_id=event_id, error=error), 422
    return redirect(url_for("events.event", event_id=event_id), 303)


@bp.get("/<event_id>")
def event(event_id: str):
    s = db.session()
    explained = decisions.explain(s, current_app.extensions["models"], event_id) if EVENT_ID.match(event_id) else None
    if explained is None:
        abort(404, f"no recommendation event {event_id!r}")
    reviewer = None if current_user.is_admin else current_user.id
    candidates = {c["id"]: c for c in explained.event.candidates}
    return render_template(
        "events/event.html",
        explained=explained,
        event=explained.event,
        activity=sorted(explained.shared.activity.items()),
        candidates=candidates,
        found=lineage.lineage(s, explained.event, explained.rewards, reviewer=reviewer),
    )
