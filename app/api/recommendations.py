from flask import current_app

from app import db
from app.api import keyed
from app.api.openapi import endpoint
from app.api.schemas.common import EventId
from app.api.schemas.recommendations import (
    EventOut,
    Lineage,
    LoggedItem,
    LoggedReward,
    RecommendationRequest,
    RecommendationResponse,
    RecommendedItem,
)
from app.errors import ApiError
from app.services import decisions, lineage
from app.services.recommender import Request
from app.services.rewards import reward_rules

bp = keyed("recommendations", __name__)


@bp.post("/recommendations")
@endpoint(summary="Recommend items for a user", body=RecommendationRequest, responses={200: RecommendationResponse}, tag="loop")
def recommend(body: RecommendationRequest):
    """FAISS candidates around the user's profile (and query), reranked by the bandit. Each item carries the
    probability with which it was put in its slot; post rewards with the returned `event_id`."""
    max_k = current_app.config["FEEDLOOP"].max_k
    if body.k > max_k:
        raise ApiError(
            422,
            "validation_error",
            f"k must be at most {max_k} (FEEDLOOP_MAX_K)",
            [{"field": "k", "message": f"at most {max_k}"}],
        )
    d = current_app.extensions["recommender"].recommend(Request(**body.model_dump()))
    items = [RecommendedItem(id=s.id, title=s.title, score=s.score, probability=s.probability) for s in d.items]
    return RecommendationResponse(
        event_id=d.event_id, model_version=d.model_version, items=items, fallback=d.fallback, latency_ms=d.latency_ms
    ).model_dump()


@bp.get("/recommendations/<event_id>")
@endpoint(
    summary="The logged decision, with explanations, rewards and lineage",
    responses={200: EventOut},
    errors=(404,),
    path={"event_id": EventId},
    tag="loop",
)
def get_event(event_id: str):
    """What was decided and how it was learned: the model and release that served it, its rewards, the poll
    answers and review decisions about it, the kept versions that learned its rewards and the retrain runs that
    trained or judged on it."""
    explained = decisions.explain(db.session(), current_app.extensions["models"], event_id)
    if explained is None:
        raise ApiError(404, "not_found", f"no recommendation event {event_id!r}")
    event = explained.event
    found = lineage.lineage(db.session(), event, explained.rewards)
    return EventOut(
        event_id=event.id,
        user_id=event.user_id,
        created_at=event.created_at,
        context=event.context,
        activity=explained.shared.activity,
        model_version=event.model_version,
        items=[LoggedItem(id=i.id, probability=i.probability, explanation=i.explanation) for i in explained.items],
        explained_by=explained.explained_by,
        fallback=event.fallback,
        deferred=event.deferred,
        activated=event.activated_at is not None,
        rewards=[
            LoggedReward(
                item_id=r.item_id,
                reward=r.value,
                received_at=r.received_at,
                default=r.is_default,
                settlement=r.source == "settlement",
                learned=r.learn_value is not None,
                late=r.late,
            )
            for r in explained.rewards
        ],
        lineage=Lineage.model_validate(found, from_attributes=True),
    ).model_dump(mode="json")


@bp.post("/recommendations/<event_id>/activate")
@endpoint(summary="Activate a deferred event", responses={204: None}, errors=(404, 410), path={"event_id": EventId}, tag="loop")
def activate(event_id: str):
    """For events requested with `"defer": true`: the items were shown, so the event may now learn."""
    try:
        with db.write_session() as s:
            known = decisions.activate(s, reward_rules(current_app.config["FEEDLOOP"]), event_id)
    except decisions.ActivationRefused as exc:
        raise ApiError(410, "event_expired", str(exc)) from None
    if not known:
        raise ApiError(404, "not_found", f"no recommendation event {event_id!r}")
    return "", 204
