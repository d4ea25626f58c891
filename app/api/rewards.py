from flask import current_app
from pydantic import ValidationError

from app import db
from app.api import keyed
from app.api.openapi import endpoint
from app.api.schemas.rewards import RewardBatch, RewardError, RewardItem, RewardResult
from app.errors import ApiError, invalid
from app.services.rewards import RewardIn, reward_rules, store_rewards

bp = keyed("rewards", __name__)


@bp.post("/rewards")
@endpoint(
    summary="Post rewards",
    body=RewardBatch,
    validate_body=False,
    responses={202: RewardResult},
    errors=(404, 409, 410),
    tag="loop",
)
def post_rewards(body):
    """One reward (`{"event_id", "reward", "item_id"?, "reward_id"?}`) or up to 1,000 (`{"rewards": [...]}`). Answers
    202 once they are stored. The same (event_id, item_id, reward_id) with the same value counts once; with another
    value it is refused (409). A reward for an item whose reward is already final is kept and counted as `late`,
    and not learned. A single reward that is refused answers its own status; a batch lists refusals in `errors`
    and answers 422 only when nothing in it was accepted."""
    single = isinstance(body, dict) and "rewards" not in body
    try:
        rewards = [RewardItem.model_validate(body)] if single else RewardBatch.model_validate(body).rewards
    except ValidationError as exc:
        raise invalid(exc, "request body") from None
    with db.write_session() as s:
        stored = store_rewards(s, reward_rules(current_app.config["FEEDLOOP"]), [RewardIn(**r.model_dump()) for r in rewards])
        if single and stored.refused:
            refusal = stored.refused[0][1]
            raise ApiError(refusal.status, refusal.code, refusal.message)
    errors = [RewardError(index=i, error=e.code, message=e.message) for i, e in stored.refused]
    if not stored.accepted and not stored.duplicates and errors:
        raise ApiError(422, "no_reward_accepted", "no reward in the request was accepted", [e.model_dump() for e in errors])
    return RewardResult(accepted=stored.accepted, duplicates=stored.duplicates, late=stored.late, errors=errors).model_dump(), 202
