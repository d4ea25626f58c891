from flask import current_app
from pydantic import ValidationError

from app import db
from app.api import keyed
from app.api.openapi import endpoint
from app.api.schemas.common import ItemId, RowError
from app.api.schemas.interactions import (
    ActivityOut,
    ActivityQuery,
    InteractionBatch,
    InteractionResult,
    InteractionRow,
    PathUserId,
)
from app.errors import ApiError, validation_details
from app.models import utcnow
from app.services.interactions import InteractionIn, activity_at, event_rules, store_interactions
from app.services.rewards import reward_rules
from feedback.windows import features

bp = keyed("interactions", __name__)


def validate_rows(rows: list, limit: int) -> tuple[list[tuple[int, InteractionIn]], list[RowError]]:
    """Each row on its own, so that one bad row does not sink the batch."""
    if len(rows) > limit:
        raise ApiError(413, "too_many_events", f"send at most {limit} events per request (got {len(rows)})")
    valid, errors = [], []
    for index, row in enumerate(rows):
        try:
            valid.append((index, InteractionIn(**InteractionRow.model_validate(row).model_dump())))
        except ValidationError as exc:
            errors += [RowError(index=index, **d) for d in validation_details(exc)]
    return valid, errors


@bp.post("/events")
@endpoint(
    summary="Post interaction events",
    body=InteractionBatch,
    validate_body=False,
    responses={202: InteractionResult},
    tag="events",
)
def post_events(body):
    """What users did: impressions, clicks, purchases, searches. Answers 202 once the valid events are stored, with
    the others listed in `errors` (invalid, older than FEEDLOOP_EVENT_LATENESS_SECONDS, or too far in the future).
    An event with the `event_id` of a recommendation and a type mapped by FEEDLOOP_EVENT_REWARDS (purchase=1.0,
    click=0.3) also rewards that recommendation's item, once."""
    if not isinstance(body, dict) or set(body) != {"events"} or not isinstance(body["events"], list) or not body["events"]:
        raise ApiError(422, "validation_error", 'the body must be {"events": [...]} with at least one event')
    settings = current_app.config["FEEDLOOP"]
    rows, errors = validate_rows(body["events"], settings.max_items_per_request)
    accepted = 0
    if rows:
        with db.write_session() as s:
            stored = store_interactions(s, event_rules(settings), reward_rules(settings), [r for _, r in rows])
        accepted = stored.accepted
        errors += [RowError(index=rows[e.index][0], field=e.field, message=e.message) for e in stored.errors]
    errors.sort(key=lambda e: e.index)
    return InteractionResult(accepted=accepted, errors=errors).model_dump(), 202


def activity_of(subject_type: str, subject_id: str, query: ActivityQuery) -> dict:
    at = query.at or utcnow()
    act = activity_at(db.session(), subject_type, subject_id, at)
    return ActivityOut(
        at=at,
        counts=act.counts,
        click_rate={window: act.click_rate(window) for window in act.counts},
        categories=act.categories,
        features=features(subject_type, act),
    ).model_dump(mode="json")


@bp.get("/users/<user_id>/activity")
@endpoint(
    summary="A user's recent activity",
    query=ActivityQuery,
    responses={200: ActivityOut},
    path={"user_id": PathUserId},
    tag="events",
)
def user_activity(user_id: str, query: ActivityQuery):
    """Counts of the user's events in the last 5 minutes, hour and day, click rates, the categories the user clicked
    or bought lately, and the bandit features made from them (the same computation a retraining uses)."""
    return activity_of("user", user_id, query)


@bp.get("/items/<item_id>/activity")
@endpoint(
    summary="An item's recent activity", query=ActivityQuery, responses={200: ActivityOut}, path={"item_id": ItemId}, tag="events"
)
def item_activity(item_id: str, query: ActivityQuery):
    """Counts of the item's events in the last 5 minutes, hour and day, click rates and the bandit features."""
    return activity_of("item", item_id, query)
