"""Respondents' routes, without a key: whether to show a poll, and its answers.

Browsers reach them from the app's pages, so they answer CORS for the poll's allowed origins only: the origin is
echoed back (never `*`, never with credentials: no cookie is read here), with `Vary: Origin` on every answer so
that a cache never hands one origin's answer to another. A request that carries an Origin the poll does not allow
is refused (403) before anything is recorded: CORS alone would only hide the answer from the page, after the write.
Requests without an Origin (an app's server) are taken. Limits apply per client address and per respondent,
counted in the database so that every worker shares them.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from flask import current_app, g, jsonify, request
from flask_limiter.util import get_remote_address

from app import db
from app.api import public
from app.api.openapi import endpoint
from app.api.schemas.polls import AskOut, AskQuery, PollToken, PublicPoll, ResponseCreated, ResponseIn
from app.errors import ApiError
from app.models import Poll
from app.services import polls
from app.services.rewards import reward_rules
from app.web import limiter

bp = public("poll_responses", __name__)
RESPONDENT_COOKIE = "feedloop_respondent"


def respondent_key() -> str:
    """The respondent a request speaks for (JSON body, query string, form, or the embed's cookie), else the
    client's address."""
    respondent = None
    if request.is_json:
        body = request.get_json(silent=True)
        respondent = body.get("respondent_id") if isinstance(body, dict) else None
    if not isinstance(respondent, str) or not respondent:
        respondent = (
            request.args.get("respondent_id") or request.form.get("respondent_id") or request.cookies.get(RESPONDENT_COOKIE)
        )
    if not respondent:
        return f"address:{get_remote_address()}"
    return "respondent:" + hashlib.sha256(respondent.encode()).hexdigest()[:32]  # bounded, and no ids kept there


per_address = limiter.shared_limit(lambda: current_app.config["FEEDLOOP"].public_rate_limit, scope="polls_public")
per_respondent = limiter.shared_limit(
    lambda: current_app.config["FEEDLOOP"].respondent_rate_limit, scope="polls_respondent", key_func=respondent_key
)


def request_poll() -> Poll | None:
    """The poll named by the URL's token (looked up once per request)."""
    if "request_poll" not in g:
        token = (request.view_args or {}).get("token")
        g.request_poll = polls.poll_by_token(db.session(), token) if isinstance(token, str) and len(token) <= 32 else None
    return g.request_poll


def own_origin() -> str:
    return (current_app.config["FEEDLOOP"].public_url or request.host_url).rstrip("/")


@bp.before_request
def _refuse_foreign_origins():
    origin, poll = request.headers.get("Origin"), request_poll()
    if request.method == "OPTIONS" or origin is None or poll is None:
        return None
    if origin not in poll.allowed_origins and origin != own_origin():
        raise ApiError(403, "origin_not_allowed", f"this poll is not embedded on {origin[:300]}")
    return None


@bp.after_request
def _cors(response):
    response.vary.add("Origin")
    origin, poll = request.headers.get("Origin"), request_poll()
    if origin and poll is not None and origin in poll.allowed_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = "GET, POST"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type"
            response.headers["Access-Control-Max-Age"] = "600"
    response.headers["Cache-Control"] = "no-store"
    return response


def found(token: str) -> Poll:
    poll = request_poll()
    if poll is None:
        raise ApiError(404, "not_found", "no poll with this token")
    return poll


@bp.get("/polls/<token>/ask")
@per_address
@per_respondent
@endpoint(
    summary="Whether to show a poll to a respondent",
    query=AskQuery,
    responses={200: AskOut},
    errors=(403, 404, 429, 503),
    path={"token": PollToken},
    tag="polls",
)
def ask(token: str, query: AskQuery):
    """Always 200 for a known poll: `{"ask": true, "poll": {...}}` when the respondent should be asked now (the
    ask is recorded, so show it), else `{"ask": false, "reason"}`: the poll is closed, not_started or ended, the
    respondent answered already, is outside the poll's sample (not_sampled), was shown this poll lately
    (recontact) or any poll lately (quiet_period), the poll needs an event_id (event_required), or it waits for
    events where the bandit was unsure (model_sure). An unknown event is 404; an item the event did not show, 422."""
    poll = found(token)
    try:
        with db.write_session() as s:
            quiet = current_app.config["FEEDLOOP"].poll_quiet_seconds
            asked = polls.should_ask(
                s, poll, query.respondent_id, quiet=timedelta(seconds=quiet), event_id=query.event_id, item_id=query.item_id
            )
    except polls.PollError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    shown = PublicPoll(question=poll.question, kind=poll.kind, options=poll.options) if asked.ask else None
    return jsonify(AskOut(ask=asked.ask, reason=asked.reason, poll=shown).model_dump())


@bp.post("/polls/<token>/responses")
@per_address
@per_respondent
@endpoint(
    summary="Answer a poll",
    body=ResponseIn,
    responses={201: ResponseCreated},
    errors=(403, 404, 409, 410, 429, 503),
    path={"token": PollToken},
    tag="polls",
)
def answer(token: str, body: ResponseIn):
    """201 once the answer is stored. One answer per respondent unless the poll allows more: a second is 409 and
    stores nothing. An answer tied to `event_id` (the item shown in it, the first by default) becomes that
    event's reward for the item, learned once with the usual aggregation rules; when the event no longer takes
    rewards, the answer is kept and `reward_refused` says why. 404 unknown poll or event; 409 poll not started;
    410 poll closed or ended; 422 an answer the poll does not take."""
    poll = found(token)
    try:
        with db.write_session() as s:
            done = polls.answer(
                s,
                poll,
                body.respondent_id,
                body.answer,
                rules=reward_rules(current_app.config["FEEDLOOP"]),
                event_id=body.event_id,
                item_id=body.item_id,
            )
    except polls.PollError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    out = ResponseCreated(
        id=done.response_id, reward_value=done.reward_value, reward_refused=done.reward_refused, uncertain=done.uncertain
    )
    return out.model_dump(), 201
