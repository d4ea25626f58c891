from flask import current_app
from pydantic import ValidationError
from sqlmodel import col, select

from app import db
from app.api import bp
from app.api.schemas import (ApprenticeReport, EventOut, LoggedItem, LoggedReward, LoopStatus, RecommendationRequest,
                             RecommendationResponse, RewardBatch, RewardItem, RewardResult)
from app.errors import ApiError, invalid
from app.models import Event, Reward, utcnow
from app.openapi import endpoint
from app.recommender import Request
from app.rewards import RewardIn, store_rewards
from bandit.features import Candidate, Shared

APPRENTICE_WINDOW = 1000  # recent decisions the apprentice report covers


@bp.post("/recommendations")
@endpoint(summary="Recommend items for a user", body=RecommendationRequest, responses={200: RecommendationResponse}, tag="loop")
def recommend(body: RecommendationRequest):
    """FAISS candidates around the user's profile (and query), reranked by the bandit. Each item carries the
    probability with which it was put in its slot; post rewards with the returned `event_id`."""
    if body.k > current_app.config["FEEDLOOP"].max_k:
        raise ApiError(422, "validation_error", f"k must be at most {current_app.config['FEEDLOOP'].max_k}")
    decision = current_app.extensions["recommender"].recommend(Request(**body.model_dump()))
    return RecommendationResponse.model_validate(decision, from_attributes=True).model_dump()


def own_event(event_id: str) -> Event:
    event = db.session().get(Event, event_id)
    if event is None:
        raise ApiError(404, "not_found", f"no recommendation event {event_id!r}")
    return event


@bp.get("/recommendations/<event_id>")
@endpoint(summary="The logged decision, with explanations and rewards", responses={200: EventOut, 404: None}, tag="loop")
def get_event(event_id: str):
    event = own_event(event_id)
    shared = Shared.from_dict(event.shared)
    candidates = {c["id"]: Candidate.from_dict(c) for c in event.candidates}
    with current_app.extensions["models"].deciding(event.model_version, db.session()) as model:
        items = [LoggedItem(id=sl["item_id"], probability=sl["probability"],
                            explanation=model.policy.explain(shared, candidates[sl["item_id"]])[1]) for sl in event.slots]
        explained_by = model.version
    rewards = db.session().exec(select(Reward).where(Reward.event_id == event_id).order_by(col(Reward.id))).all()
    return EventOut(
        event_id=event.id, user_id=event.user_id, context=event.context, items=items, model_version=event.model_version,
        explained_by=explained_by, fallback=event.fallback, deferred=event.deferred, activated=event.activated_at is not None,
        rewards=[LoggedReward(item_id=r.item_id, reward=r.value, received_at=r.received_at, default=r.is_default) for r in rewards],
    ).model_dump(mode="json")


@bp.post("/recommendations/<event_id>/activate")
@endpoint(summary="Activate a deferred event", responses={204: None, 404: None}, tag="loop")
def activate(event_id: str):
    """For events requested with `"defer": true`: the items were shown, so the event may now learn."""
    with db.write_session() as s:
        event = s.get(Event, event_id)
        if event is None:
            raise ApiError(404, "not_found", f"no recommendation event {event_id!r}")
        if event.activated_at is None:
            event.activated_at = utcnow()
            s.add(event)
    return "", 204


@bp.post("/rewards")
@endpoint(summary="Post rewards", body=RewardBatch, validate_body=False, responses={202: RewardResult, 404: None}, tag="loop")
def post_rewards(body):
    """One reward (`{"event_id", "reward", "item_id"?}`) or up to 1,000 (`{"rewards": [...]}`). Answers 202 once
    they are stored. The same (event_id, item_id, reward_id) posted twice counts once."""
    single = isinstance(body, dict) and "rewards" not in body
    try:
        rewards = [RewardItem.model_validate(body)] if single else RewardBatch.model_validate(body).rewards
    except ValidationError as exc:
        raise invalid(exc, "request body") from None
    with db.write_session() as s:
        accepted, duplicates, refused = store_rewards(s, current_app.config["FEEDLOOP"], [RewardIn(**r.model_dump()) for r in rewards])
        if single and refused:
            raise ApiError(refused[0][1].status, refused[0][1].code, refused[0][1].message)
    errors = [{"index": i, "error": e.code, "message": e.message} for i, e in refused]
    if not accepted and not duplicates and errors:
        raise ApiError(422, "no_reward_accepted", "no reward in the request was accepted", errors)
    return RewardResult(accepted=accepted, duplicates=duplicates, errors=errors).model_dump(), 202


@bp.get("/loop")
@endpoint(summary="Loop mode, serving model and apprentice agreement", responses={200: LoopStatus}, tag="loop")
def loop_status():
    """In apprentice mode the app's baseline is served first while the policy learns; `agreement` tells how often
    the policy would have chosen the same, so the app knows when to switch FEEDLOOP_LOOP_MODE to online."""
    recent = db.session().exec(
        select(Event.id, Event.baseline_item_id, Event.policy_item_id)
        .where(col(Event.baseline_item_id).is_not(None)).order_by(col(Event.created_at).desc()).limit(APPRENTICE_WINDOW)
    ).all()
    rewards = db.session().exec(
        select(Reward.value).where(col(Reward.event_id).in_([e.id for e in recent]),
                                   col(Reward.item_id).in_({e.baseline_item_id for e in recent}))
    ).all() if recent else []
    with current_app.extensions["models"].current() as model:
        version = model.version
    report = ApprenticeReport(
        events=len(recent),
        agreement=sum(e.baseline_item_id == e.policy_item_id for e in recent) / len(recent) if recent else None,
        baseline_reward=sum(rewards) / len(rewards) if rewards else None,
    )
    return LoopStatus(mode=current_app.config["FEEDLOOP"].loop_mode, model_version=version, apprentice=report).model_dump()
