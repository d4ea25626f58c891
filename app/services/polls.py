"""Polls in the database: creating them, deciding whom to ask (and recording each ask), storing answers and the
rewards they become, results and exports. The rules themselves are in feedback.polls.

An answer tied to a recommendation event becomes a reward for the item it names through
app.services.rewards.store_rewards, in the answer's own transaction and under the key "poll:<response id>": the
learner then learns it once, with the same aggregation rules as any client reward (under `earliest` a slot the
app rewarded first keeps that reward; the answer is stored and counted). When the event no longer takes rewards
(older than the reward window, or deferred and never activated), the answer is still kept, since it is a
person's answer, and says the reward was refused; an event that does not exist, or an item it did not show,
refuses the answer itself.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, exists, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.models import Event, Poll, PollAsk, PollResponse, utcnow
from app.services.catalogue import live_item
from app.services.rewards import RewardIn, store_rewards
from app.services.webhooks import enqueue_poll_response
from feedback.polls import (
    AskRules,
    BadAnswer,
    Contact,
    PollSpec,
    Window,
    confidence,
    count_answers,
    decide_ask,
    is_unsure,
    open_problem,
    reward_for,
    validate_answer,
    validate_poll,
)
from feedback.rewards import RewardRules

POLL_REWARD_PREFIX = "poll:"  # the reward keys of poll answers; the rewards API refuses them from apps
MAX_RESPONDENT_ID = 256
TOKEN_BYTES = 16  # 22 URL-safe characters, 128 random bits: an embed URL cannot be guessed


class PollError(Exception):
    """A request the poll refuses; `status` is the HTTP status that says why."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def create_poll(s: Session, spec: PollSpec, created_by: str) -> Poll:
    """Validate (feedback.polls.Invalid when the definition is wrong) and store a poll."""
    spec = validate_poll(spec)
    if spec.target == "item" and live_item(s, spec.target_item_id) is None:
        raise PollError(404, "unknown_item", f"no item with id {spec.target_item_id!r} in the catalogue")
    poll = Poll(
        public_token=secrets.token_urlsafe(TOKEN_BYTES),
        question=spec.question,
        kind=spec.kind,
        options=list(spec.options) if spec.options else None,
        target=spec.target,
        target_item_id=spec.target_item_id,
        starts_at=spec.starts_at,
        ends_at=spec.ends_at,
        sample_share=spec.sample_share,
        allowed_origins=list(spec.allowed_origins),
        allow_multiple=spec.allow_multiple,
        recontact_seconds=spec.recontact_seconds,
        reward_map=dict(spec.reward_map) if spec.reward_map is not None else None,
        uncertain_only=spec.uncertain_only,
        max_probability=spec.max_probability,
        max_margin=spec.max_margin,
        created_by=created_by,
    )
    s.add(poll)
    s.flush()
    return poll


def get_poll(s: Session, poll_id: int) -> Poll | None:
    return s.get(Poll, poll_id)


def poll_by_token(s: Session, token: str) -> Poll | None:
    return s.exec(select(Poll).where(Poll.public_token == token)).first()


@dataclass(frozen=True)
class PollSummary:
    poll: Poll
    responses: int


def list_polls(s: Session) -> list[PollSummary]:
    answered = select(PollResponse.poll_id, func.count().label("n")).group_by(PollResponse.poll_id).subquery()
    rows = s.exec(
        select(Poll, func.coalesce(answered.c.n, 0))
        .outerjoin(answered, answered.c.poll_id == Poll.id)
        .order_by(col(Poll.id).desc())
    ).all()
    return [PollSummary(poll, n) for poll, n in rows]


def response_count(s: Session, poll_id: int) -> int:
    return s.exec(select(func.count()).select_from(PollResponse).where(PollResponse.poll_id == poll_id)).one()


def close_poll(s: Session, poll_id: int, now: datetime | None = None) -> Poll | None:
    """Close a poll (it takes no more answers and is asked of nobody); closing it again changes nothing."""
    poll = s.get(Poll, poll_id)
    if poll is not None and poll.closed_at is None:
        poll.closed_at = now or utcnow()
        s.add(poll)
        s.flush()
    return poll


def window(poll: Poll) -> Window:
    return Window(poll.starts_at, poll.ends_at, poll.closed_at)


def is_open(poll: Poll, now: datetime | None = None) -> bool:
    return open_problem(window(poll), now or utcnow()) is None


# Asking


@dataclass(frozen=True)
class Asked:
    ask: bool
    reason: str | None = None  # why not: see feedback.polls.AskDecision, plus event_required and model_sure
    uncertain: bool = False
    item_id: str | None = None


def should_ask(
    s: Session,
    poll: Poll,
    respondent_id: str,
    *,
    quiet: timedelta,
    event_id: str | None = None,
    item_id: str | None = None,
    now: datetime | None = None,
) -> Asked:
    """Whether to show the poll to this respondent now, recording the ask when it is shown (the fatigue rules
    and the response rate count asks)."""
    now = now or utcnow()
    _check_respondent(respondent_id)
    item_id = _target_item(poll, item_id)
    uncertain = False
    if event_id is not None:
        item_id, uncertain = _event_item(s, poll, event_id, item_id)
    elif poll.target == "event":
        return Asked(False, "event_required")
    rules = AskRules(
        window(poll),
        poll.public_token,
        poll.sample_share,
        poll.allow_multiple,
        timedelta(seconds=poll.recontact_seconds),
        quiet,
    )
    decision = decide_ask(rules, respondent_id, _contact(s, poll.id, respondent_id), now)
    if not decision.ask:
        return Asked(False, decision.reason, uncertain, item_id)
    if poll.uncertain_only and not uncertain:
        return Asked(False, "model_sure", uncertain, item_id)
    s.add(PollAsk(poll_id=poll.id, respondent_id=respondent_id, event_id=event_id, uncertain=uncertain, asked_at=now))
    s.flush()
    return Asked(True, None, uncertain, item_id)


def _contact(s: Session, poll_id: int, respondent_id: str) -> Contact:
    asks = s.exec(
        select(PollAsk.poll_id, func.max(PollAsk.asked_at))
        .where(PollAsk.respondent_id == respondent_id)
        .group_by(PollAsk.poll_id)
    ).all()
    answers = s.exec(
        select(PollResponse.poll_id, func.max(PollResponse.created_at))
        .where(PollResponse.respondent_id == respondent_id)
        .group_by(PollResponse.poll_id)
    ).all()
    this = [t for poll, t in [*asks, *answers] if poll == poll_id]
    other = [t for poll, t in [*asks, *answers] if poll != poll_id]
    return Contact(max(other, default=None), max(this, default=None), any(poll == poll_id for poll, _ in answers))


def _check_respondent(respondent_id: str) -> None:
    if not isinstance(respondent_id, str) or not 1 <= len(respondent_id) <= MAX_RESPONDENT_ID:
        raise PollError(422, "invalid_respondent", f"respondent_id has 1 to {MAX_RESPONDENT_ID} characters")


def _target_item(poll: Poll, item_id: str | None) -> str | None:
    if poll.target != "item":
        return item_id
    if item_id is not None and item_id != poll.target_item_id:
        raise PollError(422, "wrong_item", f"this poll is about item {poll.target_item_id!r}")
    return poll.target_item_id


def _event_item(s: Session, poll: Poll, event_id: str, item_id: str | None) -> tuple[str, bool]:
    """The item the answer is about (the first shown when none is named) and whether the bandit was unsure of
    it; refuses an unknown event and an item the event did not show."""
    row = s.exec(select(Event.slots, Event.candidates).where(Event.id == event_id)).first()
    if row is None:
        raise PollError(404, "unknown_event", f"no recommendation event {event_id!r}")
    slots, candidates = row
    shown = [sl["item_id"] for sl in slots]
    if not shown:
        raise PollError(422, "item_not_shown", "the event showed no items")
    item_id = item_id if item_id is not None else shown[0]
    if item_id not in shown:
        raise PollError(422, "item_not_shown", f"item {item_id!r} was not recommended in event {event_id!r}")
    conf = confidence(slots, candidates, item_id)
    return item_id, is_unsure(conf, poll.max_probability, poll.max_margin)


# Answering


@dataclass(frozen=True)
class Answered:
    response_id: int
    answer: Any
    reward_value: float | None  # the reward (event) or relevance label (item) the answer became
    reward_refused: str | None = None  # why the event took no reward (the answer is kept)
    uncertain: bool = False


def answer(
    s: Session,
    poll: Poll,
    respondent_id: str,
    raw_answer: Any,
    *,
    rules: RewardRules,
    event_id: str | None = None,
    item_id: str | None = None,
    now: datetime | None = None,
) -> Answered:
    """Validate and store an answer (PollError when refused: nothing is stored then, since the caller's
    transaction rolls back). Fatigue does not apply: whoever was shown the poll may answer it."""
    now = now or utcnow()
    problem = open_problem(window(poll), now)
    if problem is not None:
        status, message = (409, "the poll has not started") if problem == "not_started" else (410, f"the poll is {problem}")
        raise PollError(status, f"poll_{problem}", message)
    _check_respondent(respondent_id)
    try:
        value = validate_answer(poll.kind, poll.options, raw_answer)
    except BadAnswer as exc:
        raise PollError(422, "invalid_answer", str(exc)) from None
    item_id = _target_item(poll, item_id)
    uncertain = False
    if event_id is not None:
        item_id, uncertain = _event_item(s, poll, event_id, item_id)
    elif poll.target == "event":
        raise PollError(422, "event_required", "this poll is about a recommendation: send its event_id")
    once_key = None if poll.allow_multiple else respondent_id
    if once_key is not None and _answered(s, poll.id, respondent_id):
        raise PollError(409, "already_answered", "this respondent has answered this poll already")
    reward = reward_for(poll.kind, value, poll.reward_map)
    labelled = reward if (event_id is not None or poll.target == "item") else None
    response = PollResponse(
        poll_id=poll.id,
        respondent_id=respondent_id,
        once_key=once_key,
        answer=value,
        event_id=event_id,
        item_id=item_id,
        uncertain=uncertain,
        reward_value=labelled,
        created_at=now,
    )
    s.add(response)
    try:
        s.flush()
    except IntegrityError:  # another worker stored this respondent's answer a moment ago
        raise PollError(409, "already_answered", "this respondent has answered this poll already") from None
    refused = None
    if event_id is not None and reward is not None:
        stored = store_rewards(s, rules, [RewardIn(event_id, reward, item_id, f"{POLL_REWARD_PREFIX}{response.id}")])
        if stored.refused:
            refused = stored.refused[0][1].code
            response.reward_value = None
            s.add(response)
            s.flush()
    _notify(s, poll, response)
    return Answered(response.id, value, response.reward_value, refused, uncertain)


def _answered(s: Session, poll_id: int, respondent_id: str) -> bool:
    return (
        s.exec(select(PollResponse.id).where(PollResponse.poll_id == poll_id, PollResponse.once_key == respondent_id)).first()
        is not None
    )


def _notify(s: Session, poll: Poll, response: PollResponse) -> None:
    """Webhooks on answers: outbox rows in this transaction, so an answer and its deliveries are stored together."""
    enqueue_poll_response(s, poll, response)


# Results


@dataclass(frozen=True)
class TextAnswer:
    respondent_id: str
    text: str
    created_at: datetime


@dataclass(frozen=True)
class Results:
    responses: int
    counts: dict[str, int]
    asks: int
    asked_respondents: int
    response_rate: float | None  # of the respondents asked, the share who answered; None before any ask
    unsure_responses: int  # answers about events where the bandit was unsure
    mean_reward: float | None
    latest_text: list[TextAnswer] = field(default_factory=list)


def results(s: Session, poll: Poll, latest: int = 50) -> Results:
    answers = s.execute(
        select(PollResponse.answer).where(PollResponse.poll_id == poll.id).execution_options(yield_per=1000)
    ).scalars()
    counts = count_answers(poll.kind, poll.options, answers)
    responses, unsure, mean = s.exec(
        select(func.count(), func.count().filter(col(PollResponse.uncertain)), func.avg(PollResponse.reward_value)).where(
            PollResponse.poll_id == poll.id
        )
    ).one()
    asks, asked = s.exec(
        select(func.count(), func.count(func.distinct(PollAsk.respondent_id))).where(PollAsk.poll_id == poll.id)
    ).one()
    answered_asked = s.exec(
        select(func.count(func.distinct(PollAsk.respondent_id))).where(
            PollAsk.poll_id == poll.id,
            exists().where(and_(PollResponse.poll_id == poll.id, PollResponse.respondent_id == PollAsk.respondent_id)),
        )
    ).one()
    text = []
    if poll.kind == "text":
        rows = s.exec(
            select(PollResponse.respondent_id, PollResponse.answer, PollResponse.created_at)
            .where(PollResponse.poll_id == poll.id)
            .order_by(col(PollResponse.id).desc())
            .limit(latest)
        ).all()
        text = [TextAnswer(*row) for row in rows]
    return Results(
        responses=responses,
        counts=counts,
        asks=asks,
        asked_respondents=asked,
        response_rate=answered_asked / asked if asked else None,
        unsure_responses=unsure,
        mean_reward=float(mean) if mean is not None else None,
        latest_text=text,
    )


EXPORT_FIELDS = (
    "response_id",
    "poll_id",
    "respondent_id",
    "answer",
    "event_id",
    "item_id",
    "uncertain",
    "reward_value",
    "created_at",
)


def export_rows(engine: Engine, poll_id: int, batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Every answer of a poll, oldest first, read in batches in a session of its own (a download is streamed
    after the request's view has returned)."""
    after = 0
    with Session(engine) as s:
        while True:
            rows = s.exec(
                select(PollResponse)
                .where(PollResponse.poll_id == poll_id, col(PollResponse.id) > after)
                .order_by(col(PollResponse.id))
                .limit(batch)
            ).all()
            for r in rows:
                yield {
                    "response_id": r.id,
                    "poll_id": r.poll_id,
                    "respondent_id": r.respondent_id,
                    "answer": r.answer,
                    "event_id": r.event_id,
                    "item_id": r.item_id,
                    "uncertain": r.uncertain,
                    "reward_value": r.reward_value,
                    "created_at": r.created_at.isoformat(),
                }
            if len(rows) < batch:
                return
            after = rows[-1].id
