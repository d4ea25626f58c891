from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from app.api.schemas.common import Query, Strict, integer
from feedback.review import MAX_EVIDENCE_BYTES, MAX_SUBJECT_ID, PRIORITY_MAX, PRIORITY_MIN

QueueName = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_-]*$")]
SubjectType = Literal["user", "item", "event"]
Status = Literal["open", "claimed", "resolved"]
MAX_ID = 2**31 - 1


class ReviewTaskIn(Strict):
    """A task for reviewers. Enqueued again with the same queue, subject and evidence, it is the same task."""

    queue: QueueName = Field(description="anomalies, labeling, or another configured queue")
    subject_type: SubjectType
    subject_id: Annotated[str, StringConstraints(min_length=1, max_length=MAX_SUBJECT_ID)]
    evidence: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            f"What the reviewer sees (at most {MAX_EVIDENCE_BYTES:,} bytes as JSON, 6 levels deep): top-level values "
            'are shown as facts; {"series": {"name": [numbers]}, "x"?: [labels]} is drawn as a line chart'
        ),
    )
    priority: integer(PRIORITY_MIN, PRIORITY_MAX, description="higher is reviewed first") = 0


class ReviewTaskCreated(BaseModel):
    id: int
    created: bool = Field(description="false when the same task was enqueued before (answered 200 with its id)")


class ReviewTaskQuery(Query):
    queue: Optional[QueueName] = None
    status: Optional[Status] = Field(default=None, description="an expired claim counts as open")
    subject_type: Optional[SubjectType] = None
    limit: int = Field(default=50, ge=1, le=500)
    after: Optional[int] = Field(default=None, ge=0, le=MAX_ID, description="the `next` of the previous page")


class ReviewTaskOut(BaseModel):
    id: int
    queue: str
    subject_type: str
    subject_id: str
    status: Status
    priority: int
    evidence: dict[str, Any]
    decision: Optional[str] = Field(description="confirm, dismiss or the label value, once resolved")
    created_at: AwareDatetime
    resolved_at: Optional[AwareDatetime]


class ReviewTaskList(BaseModel):
    tasks: list[ReviewTaskOut]
    next: Optional[int] = Field(description="pass as `after` for the next page; null on the last page")
