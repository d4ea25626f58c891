"""Review tasks for apps and jobs: enqueue what reviewers should look at, and read back their decisions."""

from app import db
from app.api import keyed
from app.api.openapi import endpoint
from app.api.schemas.review import ReviewTaskCreated, ReviewTaskIn, ReviewTaskList, ReviewTaskOut, ReviewTaskQuery
from app.errors import ApiError
from app.services.review import ReviewError, enqueue, list_tasks
from app.web import actor
from feedback.review import Invalid, validate_task

bp = keyed("review_tasks", __name__)


def _refused(exc: ReviewError | Invalid) -> ApiError:
    if isinstance(exc, ReviewError) and exc.code == "unknown_queue":
        return ApiError(422, "unknown_queue", exc.message, [{"field": "queue", "message": exc.message}])
    if isinstance(exc, Invalid):  # rules JSON Schema cannot state: evidence size, depth and series shape
        return ApiError(422, "invalid_task", exc.message, [{"field": f"body.{exc.field}", "message": exc.message}])
    return ApiError(422, "validation_error", exc.message, [{"field": exc.field or "query", "message": exc.message}])


@bp.post("/review-tasks")
@endpoint(
    summary="Enqueue a review task",
    body=ReviewTaskIn,
    responses={201: ReviewTaskCreated, 200: ReviewTaskCreated},
    tag="review",
)
def create(body: ReviewTaskIn):
    """201 with the new task's id; 200 with the existing id when the same queue, subject and evidence (compared as
    canonical JSON, so key order does not matter) was enqueued before, so jobs may re-send what they found.
    An unknown queue is 422 `unknown_queue`."""
    try:
        task = validate_task(body.queue, body.subject_type, body.subject_id, body.evidence, body.priority)
        with db.write_session() as s:
            task_id, created = enqueue(s, task, actor())
    except (Invalid, ReviewError) as exc:
        raise _refused(exc) from None
    return ReviewTaskCreated(id=task_id, created=created).model_dump(), 201 if created else 200


@bp.get("/review-tasks")
@endpoint(summary="List review tasks", query=ReviewTaskQuery, responses={200: ReviewTaskList}, tag="review")
def index(query: ReviewTaskQuery):
    """Tasks in the order they were enqueued, filtered by queue, status and subject type, `limit` at a time;
    `next` is the cursor of the following page."""
    try:
        tasks, cursor = list_tasks(
            db.session(),
            queue=query.queue,
            status=query.status,
            subject_type=query.subject_type,
            after=query.after,
            limit=query.limit,
        )
    except ReviewError as exc:
        raise _refused(exc) from None
    out = [ReviewTaskOut.model_validate(t, from_attributes=True) for t in tasks]
    return ReviewTaskList(tasks=out, next=cursor).model_dump(mode="json")
