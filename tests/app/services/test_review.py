"""Reviewer queues on both databases: idempotent enqueue, atomic claims under threads, leases on a controllable
clock, who may decide, redundancy with agreement, the audit trail and the exclusion of a confirmed user."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from app import db
from app.models import AuditEntry, ExcludedUser, ReviewDecision, ReviewQueue, ReviewTask, Reward, utcnow
from app.services import audit
from app.services.review import (
    ReviewError,
    claim_next,
    decide,
    decisions,
    enqueue,
    get_task,
    list_tasks,
    queue_stats,
    release,
)
from feedback.review import validate_task
from tests.helpers import log_decision, make_user

NOW = utcnow().replace(microsecond=0)


@pytest.fixture
def engine(bare):
    return bare.extensions["db_engine"]


@pytest.fixture
def people(bare) -> dict[str, int]:
    return {
        name: make_user(bare, f"{name}@example.org", role)
        for name, role in [("rita", "reviewer"), ("ravi", "reviewer"), ("ada", "admin")]
    }


def add(engine, queue="anomalies", subject="u1", evidence=None, priority=0, subject_type="user") -> int:
    with db.write_session(engine) as s:
        return enqueue(s, validate_task(queue, subject_type, subject, evidence, priority), "key:1", NOW)[0]


def claim(engine, user, queue="anomalies", now=NOW):
    with db.write_session(engine) as s:
        return claim_next(s, queue, user, now)


def vote(engine, task_id, user, decision="confirm", label=None, note=None, now=NOW):
    with db.write_session(engine) as s:
        return decide(s, task_id, user, decision, label, note, now)


def read(engine, fn, *args, **kwargs):
    """A read in its own session, closed at once (an open one would hold PostgreSQL locks past the test)."""
    with Session(engine) as s:
        return fn(s, *args, **kwargs)


def set_required(engine, queue: str, k: int) -> None:
    with db.write_session(engine) as s:
        s.execute(update(ReviewQueue).where(ReviewQueue.name == queue).values(decisions_required=k))


def test_the_same_subject_and_evidence_twice_is_one_task(engine):
    with db.write_session(engine) as s:
        first = enqueue(s, validate_task("anomalies", "user", "u1", {"z": 6.1, "n": 3}), "key:1", NOW)
        again = enqueue(s, validate_task("anomalies", "user", "u1", {"n": 3, "z": 6.1}, priority=9), "key:2", NOW)
        other = enqueue(s, validate_task("anomalies", "user", "u1", {"z": 7.0}), "key:1", NOW)
    assert first == (first[0], True) and again == (first[0], False) and other[1] and other[0] != first[0]
    with Session(engine) as s:
        assert len(s.exec(select(ReviewTask)).all()) == 2
        assert [e.action for e in s.exec(select(AuditEntry)).all()] == ["enqueue", "enqueue"]


def test_an_unknown_queue_is_refused(engine):
    with pytest.raises(ReviewError) as exc, db.write_session(engine) as s:
        enqueue(s, validate_task("fraud", "user", "u1"), "key:1", NOW)
    assert exc.value.code == "unknown_queue" and "anomalies, labeling" in exc.value.message


def test_racing_enqueues_of_one_task_make_one_task(engine):
    results, barrier = [], threading.Barrier(6)

    def go():
        barrier.wait()
        with db.write_session(engine) as s:
            results.append(enqueue(s, validate_task("anomalies", "user", "u9", {"z": 1}), "key:1", NOW))

    threads = [threading.Thread(target=go) for _ in range(6)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    assert len({task_id for task_id, _ in results}) == 1 and len(results) == 6
    assert sum(created for _, created in results) == 1


def test_listing_filters_by_queue_status_and_subject_with_a_cursor(engine, people):
    ids = [add(engine, subject=f"u{n}") for n in range(5)]
    item = add(engine, "labeling", "i1", subject_type="item")
    claimed = claim(engine, people["rita"])
    assert claimed.id == ids[0]
    tasks, cursor = read(engine, list_tasks, queue="anomalies", limit=2, now=NOW)
    assert [t.id for t in tasks] == ids[:2] and cursor == ids[1]
    tasks, cursor = read(engine, list_tasks, queue="anomalies", limit=2, after=cursor, now=NOW)
    assert [t.id for t in tasks] == ids[2:4]
    assert [t.id for t in read(engine, list_tasks, status="claimed", now=NOW)[0]] == [ids[0]]
    assert [t.id for t in read(engine, list_tasks, subject_type="item", now=NOW)[0]] == [item]
    assert len(read(engine, list_tasks, queue="anomalies", status="open", now=NOW)[0]) == 4
    later = NOW + timedelta(minutes=16)  # the claim expired: open again
    assert len(read(engine, list_tasks, queue="anomalies", status="open", now=later)[0]) == 5
    for bad in [{"status": "done"}, {"subject_type": "account"}, {"queue": "nope"}]:
        with pytest.raises(ReviewError):
            read(engine, list_tasks, **bad)


def test_claim_next_takes_the_highest_priority_then_the_oldest(engine, people):
    low, high, high2 = (
        add(engine, subject="a", priority=1),
        add(engine, subject="b", priority=5),
        add(engine, subject="c", priority=5),
    )
    assert claim(engine, people["rita"]).id == high
    assert claim(engine, people["rita"]).id == high  # the task held is given back, not a second one
    assert claim(engine, people["ravi"]).id == high2
    assert claim(engine, people["ada"]).id == low
    assert claim(engine, people["ada"], "labeling") is None


def test_reviewers_racing_for_claims_never_get_the_same_task(engine, bare):
    tasks = [add(engine, subject=f"u{n}") for n in range(3)]
    reviewers = [make_user(bare, f"r{n}@example.org", "reviewer") for n in range(8)]
    got, barrier = {}, threading.Barrier(len(reviewers))

    def go(user):
        barrier.wait()
        task = claim(engine, user)
        got[user] = task.id if task else None

    threads = [threading.Thread(target=go, args=(u,)) for u in reviewers]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    claimed = [t for t in got.values() if t is not None]
    assert len(got) == 8 and sorted(claimed) == sorted(tasks)  # each task once, the other five got none
    with Session(engine) as s:
        holders = {t.id: t.claimed_by for t in s.exec(select(ReviewTask)).all()}
    assert {got[u]: u for u in reviewers if got[u]} == holders


def test_an_expired_claim_returns_the_task_to_the_queue(engine, people):
    task = add(engine)
    held = claim(engine, people["rita"])
    assert held.lease_expires_at == NOW + timedelta(seconds=900)
    assert claim(engine, people["ravi"], now=NOW + timedelta(minutes=14)) is None
    later = NOW + timedelta(minutes=15, seconds=1)
    assert read(engine, get_task, task, later).status == "open"
    assert claim(engine, people["ravi"], now=later).id == task
    with pytest.raises(ReviewError) as exc:
        vote(engine, task, people["rita"], now=later)  # her lease is gone
    assert exc.value.code == "not_holder"
    assert vote(engine, task, people["ravi"], "dismiss", now=later).resolved


def test_only_the_holder_of_a_live_claim_decides(engine, people):
    task = add(engine)
    claim(engine, people["rita"])
    for other in (people["ravi"], people["ada"]):  # another reviewer, and an admin who did not claim it
        with pytest.raises(ReviewError) as exc:
            vote(engine, task, other)
        assert exc.value.code == "not_holder"
    with pytest.raises(ReviewError) as exc:
        vote(engine, 999_999, people["rita"])
    assert exc.value.code == "not_found"
    with pytest.raises(ReviewError) as exc:
        vote(engine, task, people["rita"], "label", "relevant")
    assert (exc.value.code, exc.value.field) == ("invalid", "decision")
    with Session(engine) as s:
        assert s.exec(select(ReviewDecision)).all() == []
        assert s.get(ReviewTask, task).status == "claimed"


def test_an_admin_decides_a_task_they_claimed(engine, people):
    task = add(engine)
    claim(engine, people["ada"])
    assert vote(engine, task, people["ada"], "dismiss", note="false alarm").task.decision == "dismiss"


def test_release_gives_the_task_back(engine, people):
    task = add(engine)
    claim(engine, people["rita"])
    with pytest.raises(ReviewError), db.write_session(engine) as s:
        release(s, task, people["ravi"], NOW)
    with db.write_session(engine) as s:
        release(s, task, people["rita"], NOW)
    assert claim(engine, people["ravi"]).id == task


def test_two_required_decisions_resolve_after_two_distinct_reviewers(engine, people):
    set_required(engine, "labeling", 2)
    task = add(engine, "labeling", "i1", subject_type="item")
    claim(engine, people["rita"], "labeling")
    first = vote(engine, task, people["rita"], "label", "relevant", "clear match")
    assert not first.resolved and first.task.status == "open" and first.task.decision is None
    assert claim(engine, people["rita"], "labeling") is None  # she decided it already
    claim(engine, people["ravi"], "labeling")
    second = vote(engine, task, people["ravi"], "label", "somewhat")
    assert second.resolved and second.task.status == "resolved" and second.task.decision == "relevant"  # tie: first reached
    assert [d.outcome for d in read(engine, decisions, task)] == ["relevant", "somewhat"]
    assert [d.note for d in read(engine, decisions, task, people["rita"])] == ["clear match"]
    assert claim(engine, people["ada"], "labeling") is None


def test_agreement_per_queue_is_cohen_kappa_for_two_decisions(engine, bare, people):
    set_required(engine, "anomalies", 2)
    # 4 tasks: (confirm, confirm), (dismiss, dismiss), (confirm, dismiss), (dismiss, dismiss): p_o 0.75,
    # first rater 2/4 confirm, second 1/4 confirm: p_e = 0.5*0.25 + 0.5*0.75 = 0.5, kappa 0.5
    votes = [("confirm", "confirm"), ("dismiss", "dismiss"), ("confirm", "dismiss"), ("dismiss", "dismiss")]
    for n, (a, b) in enumerate(votes):
        task = add(engine, subject=f"u{n}")
        claim(engine, people["rita"])
        vote(engine, task, people["rita"], a)
        claim(engine, people["ravi"])
        vote(engine, task, people["ravi"], b)
    stats = {q.name: q for q in read(engine, queue_stats, NOW)}
    anomalies = stats["anomalies"]
    assert (anomalies.open, anomalies.claimed, anomalies.resolved) == (0, 0, 4)
    assert anomalies.agreement.method == "cohen" and anomalies.agreement.tasks == 4
    assert anomalies.agreement.kappa == pytest.approx(0.5) and anomalies.agreement.observed == pytest.approx(0.75)
    assert stats["labeling"].agreement.method is None


def test_queue_stats_count_expired_claims_as_open(engine, people):
    add(engine, subject="a")
    add(engine, subject="b")
    claim(engine, people["rita"])
    now_stats = {q.name: q for q in read(engine, queue_stats, NOW)}["anomalies"]
    assert (now_stats.open, now_stats.claimed) == (1, 1)
    later = {q.name: q for q in read(engine, queue_stats, NOW + timedelta(hours=1))}["anomalies"]
    assert (later.open, later.claimed) == (2, 0)


def test_every_decision_is_audited_with_before_and_after(engine, people):
    task = add(engine)
    claim(engine, people["rita"])
    vote(engine, task, people["rita"], "dismiss", note="seasonal peak")
    page = read(engine, audit.entries, subject_type="task", subject_id=str(task))
    assert [e.action for e in page.entries] == ["decide", "claim", "enqueue"]
    decided = page.entries[0]
    assert decided.actor == f"user:{people['rita']}" and decided.actor_name == "rita@example.org"
    assert decided.before["status"] == "claimed" and decided.before["claimed_by"] == people["rita"]
    assert decided.after == {
        "status": "resolved",
        "claimed_by": None,
        "lease_expires_at": None,
        "decision": "dismiss",
        "decisions": 1,
        "vote": "dismiss",
        "note": "seasonal peak",
    }
    assert read(engine, audit.entries, actor=f"user:{people['ravi']}").entries == []


def test_audit_pages_go_back_in_time(engine):
    with db.write_session(engine) as s:
        for n in range(7):
            audit.record(s, "system", "note", "task", n, now=NOW)
    first = read(engine, audit.entries, limit=3)
    second = read(engine, audit.entries, limit=3, before_id=first.older)
    third = read(engine, audit.entries, limit=3, before_id=second.older)
    assert [e.subject_id for e in first.entries + second.entries + third.entries] == [str(n) for n in reversed(range(7))]
    assert third.older is None
    assert read(engine, audit.actor_of, "x@example.org") == "x@example.org"


@pytest.mark.parametrize("statement", ["update", "delete"])
def test_the_audit_log_cannot_be_updated_or_deleted(engine, statement):
    with db.write_session(engine) as s:
        entry_id = audit.record(s, "system", "note", "task", 1, now=NOW).id
    change = (
        update(AuditEntry).where(AuditEntry.id == entry_id).values(actor="someone else")
        if statement == "update"
        else delete(AuditEntry).where(AuditEntry.id == entry_id)
    )
    with pytest.raises(DBAPIError, match="append-only"), db.write_session(engine) as s:
        s.execute(change)
    with Session(engine) as s:
        assert s.get(AuditEntry, entry_id).actor == "system"


def _rewards_of(bare, user: str, n: int = 2) -> None:
    logged = log_decision(bare, user_id=user)
    with Session(bare.extensions["db_engine"]) as s:
        for item in logged.item_ids[:n]:
            s.add(Reward(event_id=logged.event_id, item_id=item, user_id=user, value=1.0, learn_value=1.0))
        s.commit()


def test_confirming_a_user_in_anomalies_excludes_them_and_marks_their_rewards(engine, bare, people):
    _rewards_of(bare, "mallory")
    _rewards_of(bare, "alice")
    task = add(engine, subject="mallory", evidence={"z_score": 6.1})
    claim(engine, people["rita"])
    result = vote(engine, task, people["rita"], "confirm")
    assert result.excluded_user == "mallory"
    with Session(engine) as s:
        assert s.get(ExcludedUser, "mallory").task_id == task
        marked = {(r.user_id, r.excluded) for r in s.exec(select(Reward)).all()}
    assert marked == {("mallory", True), ("alice", False)}
    assert [e.after["rewards_marked"] for e in read(engine, audit.entries, action="exclude_user").entries] == [2]


def test_dismissing_or_confirming_elsewhere_leaves_the_user_learning(engine, bare, people):
    _rewards_of(bare, "bob")
    dismissed = add(engine, subject="bob")
    claim(engine, people["rita"])
    assert vote(engine, dismissed, people["rita"], "dismiss").excluded_user is None
    item = add(engine, subject="bob", subject_type="item")
    claim(engine, people["rita"])
    assert vote(engine, item, people["rita"], "confirm").excluded_user is None  # an item, not a user
    with Session(engine) as s:
        assert s.exec(select(ExcludedUser)).all() == []
        assert not any(r.excluded for r in s.exec(select(Reward)).all())
