"""`feedloop labels export FILE`: resolved review tasks and poll answers that became labels, as JSON Lines."""

from __future__ import annotations

import json

from sqlmodel import Session

from app import db
from app.models import ExcludedUser, Poll, PollResponse
from app.services.review import claim_next, decide, enqueue
from feedback.review import validate_task
from tests.helpers import log_decision, make_user


def resolved_task(app, reviewer: int, subject: str, outcome: str) -> int:
    engine = app.extensions["db_engine"]
    with db.write_session(engine) as s:
        task, _ = enqueue(s, validate_task("labeling", "item", subject, {"probability": 0.31}), "key:1")
    with db.write_session(engine) as s:
        claim_next(s, "labeling", reviewer)
    with db.write_session(engine) as s:
        decide(s, task, reviewer, "label", outcome)
    return task


def test_labels_export_writes_review_and_poll_labels(bare, cli, tmp_path):
    rita = make_user(bare, "rita@example.org", "reviewer")
    task = resolved_task(bare, rita, "i1", "relevant")
    with db.write_session(bare.extensions["db_engine"]) as s:  # an open task is not a label yet
        enqueue(s, validate_task("labeling", "item", "i2"), "key:1")
    shown = log_decision(bare, user_id="alice")
    fraud = log_decision(bare, user_id="mallory")
    with Session(bare.extensions["db_engine"]) as s:
        poll = Poll(public_token="t" * 24, question="Useful?", kind="thumbs", target="event", created_by="user:1")
        s.add(poll)
        s.add(ExcludedUser(user_id="mallory", reason="test"))
        s.flush()
        s.add(
            PollResponse(
                poll_id=poll.id, respondent_id="alice", answer="up", event_id=shown.event_id, item_id="i0", reward_value=1.0
            )
        )
        s.add(
            PollResponse(poll_id=poll.id, respondent_id="m", answer="up", event_id=fraud.event_id, item_id="i0", reward_value=1.0)
        )
        s.add(PollResponse(poll_id=poll.id, respondent_id="bob", answer="down"))  # no target: not a label
        s.commit()
        poll_id = poll.id
    out = tmp_path / "labels.jsonl"
    result = cli("labels", "export", out)
    assert "3 labels written" in result.output and "1 from review, 2 from polls" in result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    review, answer, excluded = lines
    assert review["source"] == "review" and review["task_id"] == task and review["label"] == "relevant"
    assert review["subject_id"] == "i1" and review["evidence"] == {"probability": 0.31}
    assert [d["outcome"] for d in review["decisions"]] == ["relevant"] and review["decisions"][0]["reviewer"] == f"user:{rita}"
    assert {k: answer[k] for k in ("source", "poll_id", "kind", "label_type", "value", "answer", "event_id", "item_id")} == {
        "source": "poll",
        "poll_id": poll_id,
        "kind": "thumbs",
        "label_type": "reward",
        "value": 1.0,
        "answer": "up",
        "event_id": shown.event_id,
        "item_id": "i0",
    }
    assert answer["user_id"] == "alice" and not answer["excluded"]
    assert excluded["user_id"] == "mallory" and excluded["excluded"]
    assert not list(tmp_path.glob(".*partial"))


def test_an_empty_export_is_an_empty_file(bare, cli, tmp_path):
    out = tmp_path / "labels.jsonl"
    assert "0 labels written" in cli("labels", "export", out).output
    assert out.read_text() == ""
