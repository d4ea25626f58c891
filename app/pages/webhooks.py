"""`/webhooks`: admins add webhooks for poll answers or for alerts, see how deliveries went, rotate secrets and
disable them.

A secret is shown once, in the answer to the POST that made it (never through a redirect, which would carry it
in the session cookie); the page is served with Cache-Control: no-store, like every page."""

from __future__ import annotations

import inspect

from flask import abort, flash, redirect, render_template, request, url_for

from app import db
from app.pages import ADMINS, pages
from app.services import webhooks
from app.web import actor
from feedback.webhooks import MAX_URL_LENGTH, SIGNATURE_HEADER, InvalidSignature, verify

bp = pages("webhooks", __name__, roles=ADMINS, url_prefix="/webhooks")

# The receiver's check, as the page shows it: the very code the tests run.
VERIFY_SOURCE = "\n\n\n".join(
    ["import hashlib\nimport hmac\nimport time", inspect.getsource(InvalidSignature).strip(), inspect.getsource(verify).strip()]
)


def _page(status: int = 200, *, revealed: dict | None = None, error: str | None = None, form: dict | None = None):
    s = db.session()
    return render_template(
        "webhooks/index.html",
        hooks=webhooks.list_webhooks(s),
        deliveries=webhooks.recent_deliveries(s),
        polls=webhooks.poll_choices(s),
        revealed=revealed,
        error=error,
        form=form or {},
        header=SIGNATURE_HEADER,
        verify_source=VERIFY_SOURCE,
        max_url=MAX_URL_LENGTH,
    ), status


@bp.get("/")
def index():
    return _page()


@bp.post("/")
def create():
    form = {
        "url": request.form.get("url", "").strip(),
        "topic": request.form.get("topic", webhooks.EVENT),
        "poll_id": request.form.get("poll_id", ""),
        "allow_private": "allow_private" in request.form,
    }
    poll_id = form["poll_id"]
    if poll_id and not poll_id.isdigit():
        return _page(422, error="Choose a poll from the list.", form=form)
    if form["topic"] not in webhooks.TOPICS:
        return _page(422, error="Choose what the webhook receives: poll answers or alerts.", form=form)
    try:
        with db.write_session() as s:
            created = webhooks.create_webhook(
                s,
                form["url"],
                created_by=actor(),
                topic=form["topic"],
                poll_id=int(poll_id) if poll_id else None,
                allow_private=form["allow_private"],
            )
    except webhooks.WebhookError as exc:
        return _page(422, error=f"{exc}.", form=form)
    return _page(201, revealed={"id": created.id, "secret": created.secret, "what": "created"})


@bp.post("/<int:webhook_id>/rotate")
def rotate(webhook_id: int):
    try:
        with db.write_session() as s:
            secret = webhooks.rotate_secret(s, webhook_id)
    except webhooks.WebhookError as exc:
        return _refused(webhook_id, exc)
    return _page(revealed={"id": webhook_id, "secret": secret, "what": "given a new secret"})


@bp.post("/<int:webhook_id>/disable")
def disable(webhook_id: int):
    try:
        with db.write_session() as s:
            given_up = webhooks.disable_webhook(s, webhook_id)
    except webhooks.WebhookError as exc:
        return _refused(webhook_id, exc)
    flash(f"Webhook {webhook_id} disabled; {given_up} waiting deliveries given up.", "ok")
    return redirect(url_for("webhooks.index"), 303)


def _refused(webhook_id: int, exc: webhooks.WebhookError):
    if isinstance(exc, webhooks.UnknownWebhook):
        abort(404)
    return _page(409, error=f"{exc}.")
