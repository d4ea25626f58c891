"""`/p/<token>`: the poll as an embeddable page, sized for an iframe, for apps that show polls without writing
any front end of their own. The form works as a plain form post (a thank-you page follows) and, with JavaScript,
through htmx (the thank-you fragment is swapped in).

CSRF: Flask-WTF's token lives in the session cookie, and a page framed by another site gets no SameSite=Lax
cookie on its POST (nor, with third-party cookies blocked, any cookie at all), so its check would refuse every
answer. These two views are exempt from it; the form instead carries its own token, signed with the app's
secret (itsdangerous) and valid for a day, that binds the poll, the respondent, the event and the item. A POST
without a valid token is refused (400) and stores nothing, and a forged page cannot make a token for another
respondent or poll. Answers are then checked like those of the JSON API (once per respondent, valid values).

The respondent is `?respondent_id=` when the app passes it (do: it is what ties answers to the app's users);
otherwise the page's own first-party cookie identifies the browser when the page is opened directly. Inside a
cross-site iframe that cookie is not sent back (SameSite=Lax), so each load would count as a new respondent.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

from flask import Response, current_app, render_template, request, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer

from app import db
from app.api.poll_responses import RESPONDENT_COOKIE, per_address, per_respondent
from app.api.schemas.common import EVENT_ID_PATTERN
from app.models import Poll
from app.pages import pages
from app.services import polls
from app.services.rewards import reward_rules
from app.web import csp, csrf
from feedback.polls import answer_from_form

bp = pages("embed", __name__, roles=None)

FORM_MAX_AGE = 24 * 3600
COOKIE_MAX_AGE = 365 * 86400
_EVENT_ID = re.compile(EVENT_ID_PATTERN)
_ITEM_ID = re.compile(r"^[A-Za-z0-9_:@.\-]{1,256}$")


def embed_url(token: str) -> str:
    """The absolute URL of a poll's embed (FEEDLOOP_PUBLIC_URL, else the address of the request)."""
    base = current_app.config["FEEDLOOP"].public_url or request.host_url.rstrip("/")
    return base + url_for("embed.show", token=token)


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="feedloop.poll-form")


def _page(poll: Poll | None, template: str, status: int = 200, **context) -> Response:
    fragment = request.headers.get("HX-Request") == "true" and request.method == "POST"
    name = f"embed/_{template}.html" if fragment else f"embed/{template}.html"
    response = Response(render_template(name, poll=poll, **context), status=status)
    response.headers["Content-Security-Policy"] = csp(frame_ancestors=poll.allowed_origins if poll else None)
    return response


def _poll(token: str) -> Poll | None:
    return polls.poll_by_token(db.session(), token) if len(token) <= 32 else None


@bp.get("/p/<token>")
@csrf.exempt
@per_address
@per_respondent
def show(token: str):
    poll = _poll(token)
    if poll is None:
        return _page(None, "message", 404, title="No such poll", message="This poll does not exist.")
    respondent = request.args.get("respondent_id") or request.cookies.get(RESPONDENT_COOKIE)
    new_cookie = respondent is None
    respondent = respondent or secrets.token_urlsafe(16)
    event_id, item_id = request.args.get("event_id") or None, request.args.get("item_id") or None
    if (
        len(respondent) > polls.MAX_RESPONDENT_ID
        or (event_id is not None and not _EVENT_ID.match(event_id))
        or (item_id is not None and not _ITEM_ID.match(item_id))
    ):
        return _page(poll, "message", 400, title="Cannot show this poll", message="The link to this poll is not valid.")
    try:
        with db.write_session() as s:
            quiet = timedelta(seconds=current_app.config["FEEDLOOP"].poll_quiet_seconds)
            asked = polls.should_ask(s, poll, respondent, quiet=quiet, event_id=event_id, item_id=item_id)
    except polls.PollError as exc:
        return _page(poll, "message", exc.status, title="Cannot show this poll", message=exc.message)
    if not asked.ask:
        response = Response(status=204)
    else:
        claims = {"p": poll.id, "r": respondent, "e": event_id, "i": asked.item_id}
        response = _page(poll, "poll", form_token=_signer().dumps(claims), respondent=respondent, error=None, chosen=[])
    if new_cookie:
        secure = request.is_secure or current_app.config["FEEDLOOP"].public_url.startswith("https://")
        response.set_cookie(RESPONDENT_COOKIE, respondent, max_age=COOKIE_MAX_AGE, httponly=True, samesite="Lax", secure=secure)
    response.headers["Content-Security-Policy"] = csp(frame_ancestors=poll.allowed_origins)
    return response


@bp.post("/p/<token>")
@csrf.exempt
@per_address
@per_respondent
def submit(token: str):
    poll = _poll(token)
    if poll is None:
        return _page(None, "message", 404, title="No such poll", message="This poll does not exist.")
    form_token = request.form.get("form_token", "")
    try:
        claims = _signer().loads(form_token, max_age=FORM_MAX_AGE)
    except BadSignature:
        claims = None
    if not isinstance(claims, dict) or claims.get("p") != poll.id or claims.get("r") != request.form.get("respondent_id"):
        return _page(poll, "message", 400, title="This form has expired", message="Reload the page to answer the poll.")
    values = request.form.getlist("answer")
    try:
        with db.write_session() as s:
            polls.answer(
                s,
                poll,
                claims["r"],
                answer_from_form(poll.kind, values),
                rules=reward_rules(current_app.config["FEEDLOOP"]),
                event_id=claims.get("e"),
                item_id=claims.get("i"),
            )
    except polls.PollError as exc:
        if exc.code == "invalid_answer":
            context = {"form_token": form_token, "respondent": claims["r"], "error": exc.message, "chosen": values}
            return _page(poll, "poll", 422, **context)
        if exc.code == "already_answered":
            return _page(poll, "thanks", 409, message="You have answered this poll already. Thank you!")
        return _page(poll, "message", exc.status, title="Cannot take this answer", message=exc.message)
    return _page(poll, "thanks", 200, message="Thank you for your answer!")
