"""Polls for apps (API key): create, list, read, results, close. Respondents use app.api.poll_responses."""

from __future__ import annotations

from app import db
from app.api import keyed
from app.api.openapi import endpoint
from app.api.schemas.polls import PollCreated, PollId, PollIn, PollList, PollOut, PollResults, TextAnswerOut
from app.errors import ApiError
from app.models import Poll, utcnow
from app.pages.embed import embed_url
from app.services import polls
from app.web import actor
from feedback.polls import Invalid, PollSpec, open_problem

bp = keyed("polls_api", __name__)  # "polls" names the admin pages (polls.index, ...)


def spec_of(body: PollIn) -> PollSpec:
    data = body.model_dump()
    data["options"] = tuple(data["options"]) if data["options"] is not None else None
    data["allowed_origins"] = tuple(data["allowed_origins"])
    return PollSpec(**data)


def invalid_poll(exc: Invalid) -> ApiError:
    return ApiError(422, "invalid_poll", "the poll is not valid", [{"field": f, "message": m} for f, m in exc.problems])


@bp.post("/polls")
@endpoint(summary="Create a poll", body=PollIn, responses={201: PollCreated}, errors=(404,), tag="polls")
def create(body: PollIn):
    """Answers 201 with the poll's id, its public token and the URL to embed (`/p/<token>`). An item-targeted
    poll names an item of the catalogue (404 otherwise)."""
    try:
        with db.write_session() as s:
            poll = polls.create_poll(s, spec_of(body), actor())
    except Invalid as exc:
        raise invalid_poll(exc) from None
    except polls.PollError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    return PollCreated(id=poll.id, public_token=poll.public_token, embed_url=embed_url(poll.public_token)).model_dump(), 201


@bp.get("/polls")
@endpoint(summary="List polls", responses={200: PollList}, tag="polls")
def index():
    return PollList(polls=[poll_out(p.poll, p.responses) for p in polls.list_polls(db.session())]).model_dump(mode="json")


def found(poll_id: str) -> Poll:
    poll = polls.get_poll(db.session(), int(poll_id)) if poll_id.isdigit() and len(poll_id) <= 9 else None
    if poll is None:
        raise ApiError(404, "not_found", f"no poll with id {poll_id!r}")
    return poll


@bp.get("/polls/<poll_id>")
@endpoint(summary="Get a poll", responses={200: PollOut}, errors=(404,), path={"poll_id": PollId}, tag="polls")
def get(poll_id: str):
    poll = found(poll_id)
    return poll_out(poll, polls.response_count(db.session(), poll.id)).model_dump(mode="json")


@bp.get("/polls/<poll_id>/results")
@endpoint(summary="A poll's results", responses={200: PollResults}, errors=(404,), path={"poll_id": PollId}, tag="polls")
def results(poll_id: str):
    """Answers per value (ratings per value 1-5; text polls list their newest answers instead), how often the
    poll was shown and to whom, the response rate, and how many answers came from events where the bandit was
    unsure."""
    poll = found(poll_id)
    r = polls.results(db.session(), poll)
    return PollResults(
        poll_id=poll.id,
        responses=r.responses,
        counts=r.counts,
        asks=r.asks,
        asked_respondents=r.asked_respondents,
        response_rate=r.response_rate,
        unsure_responses=r.unsure_responses,
        mean_reward=r.mean_reward,
        latest_text=[TextAnswerOut(**vars(t)) for t in r.latest_text],
    ).model_dump(mode="json")


@bp.post("/polls/<poll_id>/close")
@endpoint(summary="Close a poll", responses={200: PollOut}, errors=(404,), path={"poll_id": PollId}, tag="polls")
def close(poll_id: str):
    """The poll takes no more answers and is shown to nobody; closing a closed poll changes nothing."""
    found(poll_id)
    with db.write_session() as s:
        poll = polls.close_poll(s, int(poll_id))
        responses = polls.response_count(s, poll.id)
    return poll_out(poll, responses).model_dump(mode="json")


def status(poll: Poll) -> str:
    problem = open_problem(polls.window(poll), utcnow())
    return {None: "open", "not_started": "scheduled"}.get(problem, problem)


def poll_out(poll: Poll, responses: int) -> PollOut:
    fields = {name: getattr(poll, name) for name in PollOut.model_fields if hasattr(poll, name)}
    return PollOut(**fields, embed_url=embed_url(poll.public_token), status=status(poll), responses=responses)
