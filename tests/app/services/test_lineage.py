"""An event's lineage: the release that served it, the poll answers and review decisions about it, the kept
versions that learned its rewards (themselves or through an ancestor) and the retrain runs that trained or
judged on it. Rows are written directly, as the learner, the retrain job, polls and reviewers write them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlmodel import Session, col, select

from app.models import (
    Event,
    ModelCard,
    ModelRelease,
    ModelVersion,
    Poll,
    PollResponse,
    ReviewDecision,
    ReviewTask,
    Reward,
)
from app.services.lineage import VersionRange, card_covers, card_holds_out, learned, lineage
from tests.helpers import log_decision, make_user


def test_a_version_holds_what_it_learned_and_what_its_ancestors_had_learned_when_it_started():
    ranges = {
        "v1": VersionRange("v1", None, 0, 10),
        "v2": VersionRange("v2", "v1", 20, 30),  # rolled back to v1 at reward 20: 11..20 went with the old line
        "r3": VersionRange("r3", None, 5, 25),
    }
    assert learned("v2", 7, ranges) == "v1" and learned("v2", 25, ranges) == "v2"
    assert learned("v2", 15, ranges) is None and learned("v2", 10, ranges) == "v1" and learned("v2", 20, ranges) is None
    assert learned("r3", 5, ranges) is None and learned("r3", 6, ranges) == "r3"
    assert learned("unknown", 7, ranges) is None


def test_a_card_covers_the_rewards_of_its_training_window_and_holds_out_its_recent_decisions():
    data = {
        "train": {"from_reward_id": 4, "to_reward_id": 9, "from": "2026-11-20T00:00:00+00:00", "to": "2026-11-26T00:00:00+00:00"},
        "holdout": {"from": "2026-11-26T00:00:00+00:00", "to": "2026-11-27T00:00:00+00:00"},
    }
    assert card_covers(data, [3, 4, 5, 9, 10]) == [5, 9]
    assert card_covers({"dataset": "old", "train": {"rows": 10}}, [5]) == [] and card_covers({}, [5]) == []
    from datetime import datetime

    assert card_holds_out(data, datetime.fromisoformat("2026-11-26T12:00:00+00:00"))
    assert not card_holds_out(data, datetime.fromisoformat("2026-11-27T00:00:00+00:00"))
    assert not card_holds_out({"holdout": {"from": "yesterday"}}, datetime.fromisoformat("2026-11-26T12:00:00+00:00"))


@dataclass
class World:
    event: Event
    rewards: dict[str, int]
    reviewers: dict[str, int]


def add(s: Session, *rows):
    for row in rows:
        s.add(row)
    s.flush()
    return rows


@pytest.fixture
def world(bare) -> World:
    return build_world(bare)


def build_world(bare) -> World:
    """alice's decision with rewards (two learnable), releases, kept versions, retrain cards, a poll answer and
    review tasks with decisions around it; bob's beside it. The reviewers rita and ravi exist."""
    reviewers = {"rita": make_user(bare, "rita@example.org", "reviewer"), "ravi": make_user(bare, "ravi@example.org", "reviewer")}
    logged = log_decision(bare, k=3, user_id="alice")
    other = log_decision(bare, k=1, user_id="bob")
    with Session(bare.extensions["db_engine"]) as s:
        event = s.get(Event, logged.event_id)
        at = event.created_at
        before = add(s, Reward(event_id=other.event_id, item_id="i0", user_id="bob", value=1.0, learn_value=1.0))[0]
        clicked, settled, late, fraud, failed = add(
            s,
            Reward(event_id=event.id, item_id="i0", user_id="alice", value=1.0, learn_value=1.0),
            Reward(event_id=event.id, item_id="i1", user_id="alice", source="settlement", value=0.0, learn_value=0.0),
            Reward(event_id=event.id, item_id="i0", user_id="alice", reward_key="again", value=0.3, late=True),
            Reward(event_id=event.id, item_id="i2", user_id="alice", value=1.0, learn_value=1.0, excluded=True),
            Reward(
                event_id=event.id, item_id="i2", user_id="alice", reward_key="x", value=1.0, learn_value=1.0, learn_error="NaN"
            ),
        )
        a, b = clicked.id, settled.id
        add(
            s,
            ModelRelease(version="v0", kind="initial", started_at=at - timedelta(hours=2)),
            ModelRelease(version="r9", kind="promotion", started_at=at + timedelta(hours=1)),
            ModelVersion(version="v1", archive=b"", source="learner", last_reward_id=before.id, created_at=at),
            ModelVersion(version="v2", archive=b"", source="learner", last_reward_id=b, created_at=at + timedelta(minutes=5)),
            ModelVersion(
                version="v3",
                archive=b"",
                source="learner",
                parent_version="v2",
                learned_from_reward_id=b + 50,
                last_reward_id=b + 60,
                created_at=at + timedelta(minutes=9),
            ),
            ModelVersion(
                version="v4",
                archive=b"",
                source="learner",
                parent_version="v1",
                learned_from_reward_id=b + 50,
                last_reward_id=b + 60,
                created_at=at + timedelta(minutes=9),
            ),
            ModelCard(
                trigger="schedule",
                status="rejected",
                candidate_version="r7",
                created_at=at + timedelta(minutes=1),
                data={
                    "train": {"from_reward_id": a - 1, "to_reward_id": a},
                    "holdout": {"from": (at - timedelta(hours=1)).isoformat(), "to": (at + timedelta(seconds=1)).isoformat()},
                },
            ),
            ModelCard(
                trigger="schedule",
                status="promoted",
                candidate_version="r8",
                created_at=at + timedelta(minutes=2),
                data={
                    "train": {"from_reward_id": b + 3, "to_reward_id": b + 9},
                    "holdout": {"from": at.isoformat(), "to": at.isoformat()},
                },
            ),
            ModelCard(
                trigger="manual",
                status="promoted",
                candidate_version="r0",
                created_at=at - timedelta(minutes=1),
                data={"train": {"from_reward_id": 0, "to_reward_id": b}},
            ),  # ran before the decision: cannot have
        )
        poll = add(s, Poll(public_token="t1", question="Was this useful?", kind="thumbs", target="event", created_by="key:1"))[0]
        add(
            s,
            PollResponse(poll_id=poll.id, respondent_id="alice", answer="up", event_id=event.id, item_id="i0", reward_value=1.0),
            PollResponse(poll_id=poll.id, respondent_id="bob", answer="down", event_id=other.event_id, item_id="i0"),
        )
        on_event, on_user, elsewhere = add(
            s,
            ReviewTask(
                queue="labeling",
                subject_type="event",
                subject_id=event.id,
                evidence_key="e",
                created_by="system",
                status="resolved",
                decision="relevant",
            ),
            ReviewTask(queue="anomalies", subject_type="user", subject_id="alice", evidence_key="u", created_by="system"),
            ReviewTask(queue="anomalies", subject_type="user", subject_id="bob", evidence_key="u", created_by="system"),
        )
        add(
            s,
            ReviewDecision(task_id=on_event.id, user_id=reviewers["rita"], decision="label", label="relevant"),
            ReviewDecision(task_id=on_event.id, user_id=reviewers["ravi"], decision="label", label="relevant", note="fine"),
            ReviewDecision(task_id=on_user.id, user_id=reviewers["rita"], decision="confirm"),
            ReviewDecision(task_id=elsewhere.id, user_id=reviewers["rita"], decision="dismiss"),
        )
        s.commit()
        ids = {"clicked": a, "settled": b, "late": late.id, "fraud": fraud.id, "failed": failed.id}
        s.refresh(event)
        return World(event, ids, reviewers)


def rewards_of(s: Session, event_id: str) -> list[Reward]:
    return list(s.exec(select(Reward).where(Reward.event_id == event_id).order_by(col(Reward.id))))


def test_an_events_lineage_from_the_serving_release_to_the_retraining(bare, world):
    with Session(bare.extensions["db_engine"]) as s:
        found = lineage(s, world.event, rewards_of(s, world.event.id))
    served = found.served_by
    assert (served.model_version, served.kept, served.release_version) == ("v0", False, "v0")
    assert served.release.startswith("v0#")
    assert [(a.question, a.answer, a.reward) for a in found.poll_answers] == [("Was this useful?", "up", 1.0)]
    assert [(t.subject_type, t.status, t.outcome, [d.decision for d in t.decisions]) for t in found.review_decisions] == [
        ("event", "resolved", "relevant", ["label", "label"]),
        ("user", "open", None, ["confirm"]),
    ]
    learnable = [world.rewards["clicked"], world.rewards["settled"]]  # not the late, excluded or failed ones
    assert [(v.version, v.reward_ids, v.inherited_from) for v in found.learned_by] == [
        ("v2", learnable, None),
        ("v3", learnable, "v2"),
    ]
    assert [(c.candidate_version, c.reward_ids) for c in found.retrained_in] == [("r7", [world.rewards["clicked"]])]
    assert [c.candidate_version for c in found.evaluated_in] == ["r7"]


def test_a_reviewer_sees_only_their_own_decisions_on_a_task_still_open(bare, world):
    with Session(bare.extensions["db_engine"]) as s:
        rewards = rewards_of(s, world.event.id)
        as_ravi = lineage(s, world.event, rewards, reviewer=world.reviewers["ravi"]).review_decisions
        as_rita = lineage(s, world.event, rewards, reviewer=world.reviewers["rita"]).review_decisions
    assert [len(t.decisions) for t in as_ravi] == [2, 0]  # the resolved task's decisions are final: both shown
    assert [[d.reviewer for d in t.decisions] for t in as_rita] == [
        ["rita@example.org", "ravi@example.org"],
        ["rita@example.org"],
    ]


def test_a_decision_nobody_rewarded_or_reviewed_has_a_short_lineage(bare):
    logged = log_decision(bare, k=1, user_id="zoe")
    with Session(bare.extensions["db_engine"]) as s:
        found = lineage(s, s.get(Event, logged.event_id), [])
    assert found.served_by.release is None and found.served_by.model_version == "v0"
    assert (found.poll_answers, found.review_decisions, found.learned_by, found.retrained_in) == ([], [], [], [])
