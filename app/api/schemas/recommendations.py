from __future__ import annotations

from typing import Annotated, Any, Optional

from pydantic import AwareDatetime, BaseModel, Field, StrictBool, StringConstraints

from app.api.schemas.common import ItemId, Name, Scalar, Strict, integer

UserId = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class RecommendationRequest(Strict):
    user_id: UserId
    context: Annotated[dict[Name, Scalar], Field(max_length=50)] = {}
    query: Optional[Annotated[str, StringConstraints(min_length=1, max_length=1000)]] = None
    k: integer(1, 1000, description="at most FEEDLOOP_MAX_K (100 unless configured)") = 10
    exclude: Annotated[list[ItemId], Field(max_length=1000)] = []
    defer: StrictBool = Field(False, description="learn only after POST /recommendations/{event_id}/activate")
    baseline_item_id: Optional[ItemId] = Field(None, description="the app's own choice, served first in apprentice mode")


class RecommendedItem(BaseModel):
    id: str
    title: str
    score: float = Field(description="the model's expected reward for the item")
    probability: float = Field(description="probability with which the policy put this item in this slot")


class RecommendationResponse(BaseModel):
    event_id: str
    model_version: str
    items: list[RecommendedItem]
    fallback: bool
    latency_ms: float


class LoggedItem(BaseModel):
    id: str
    probability: float
    explanation: list[dict[str, Any]]


class LoggedReward(BaseModel):
    item_id: str
    reward: float
    received_at: AwareDatetime
    default: bool = Field(description="the default reward, given when nobody rewarded the item within the wait")
    settlement: bool = Field(description="written by the learner when the wait ended (the default or the aggregate)")
    learned: bool = Field(description="the one reward per shown item that the model learned")
    late: bool = Field(description="arrived after the item's reward was final: kept, not learned")


class ServedBy(BaseModel):
    model_version: str = Field(description="the version that ranked the candidates (`fallback`: no model did)")
    kept: bool = Field(description="a kept model version (the models page shows it)")
    release: Optional[str] = Field(description="the release serving then, as KPIs name it (version#number)")
    release_version: Optional[str] = Field(description="the version the release started with")
    release_started_at: Optional[AwareDatetime]


class PollAnswer(BaseModel):
    id: int
    poll_id: int
    question: str
    respondent_id: str
    item_id: Optional[str]
    answer: Any
    reward: Optional[float] = Field(description="the reward or label the answer became")
    created_at: AwareDatetime


class ReviewDecisionOut(BaseModel):
    reviewer_id: int
    decision: str
    label: Optional[str]
    note: Optional[str]
    created_at: AwareDatetime


class ReviewedTask(BaseModel):
    task_id: int
    queue: str
    subject_type: str = Field(description="`event`: this decision; `user`: its user (a confirmed fraud excludes their rewards)")
    subject_id: str
    status: str
    outcome: Optional[str] = Field(description="confirm, dismiss or the label value, once resolved")
    created_at: AwareDatetime
    resolved_at: Optional[AwareDatetime]
    decisions: list[ReviewDecisionOut]


class LearnedBy(BaseModel):
    version: str
    source: str = Field(description="learner, retrain or import")
    created_at: AwareDatetime
    reward_ids: list[int] = Field(description="this decision's rewards the version holds")
    inherited_from: Optional[str] = Field(description="null: the version learned them itself; else the ancestor that did")


class RetrainRun(BaseModel):
    card_id: int
    candidate_version: Optional[str]
    status: str
    created_at: AwareDatetime
    reward_ids: list[int] = Field(description="this decision's rewards in the run's training window")


class Lineage(BaseModel):
    served_by: ServedBy
    poll_answers: list[PollAnswer]
    review_decisions: list[ReviewedTask] = Field(description="review tasks about the decision or its user, with decisions")
    learned_by: list[LearnedBy] = Field(description="kept versions that learned the decision's rewards, oldest first")
    retrained_in: list[RetrainRun] = Field(description="retrain runs whose training window held its rewards")
    evaluated_in: list[RetrainRun] = Field(description="retrain runs that judged candidates on it (held-out window)")


class EventOut(BaseModel):
    event_id: str
    user_id: str
    created_at: AwareDatetime
    context: dict[str, Any]
    activity: dict[str, float] = Field(description="the user's windowed activity features the policy saw (logged)")
    items: list[LoggedItem]
    model_version: str
    explained_by: str = Field(
        description="the model version whose weights explain the ranking: the deciding model when "
        "it is still serving or was kept, otherwise the one serving now"
    )
    fallback: bool
    deferred: bool
    activated: bool
    rewards: list[LoggedReward]
    lineage: Lineage
