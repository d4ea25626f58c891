"""The admin's home page: catalogue size, serving model and learner, the last day's activity, open tasks per
queue and the polls running now. Reviewers land on their queues."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from app.models import Event, Item, Poll, ReviewTask, Reward, utcnow
from tests.helpers import log_decision, make_user, sign_in


@pytest.fixture
def admin(bare):
    make_user(bare, "admin@example.org", "admin")
    client = bare.test_client()
    sign_in(client, "admin@example.org")
    return client


def add(app, *rows) -> None:
    with Session(app.extensions["db_engine"]) as s:
        s.add_all(rows)
        s.commit()


def test_home_shows_the_catalogue_the_queues_and_the_running_polls(bare, admin):
    now = utcnow()
    add(
        bare,
        *[Item(id=f"i{n}", title=f"item {n}") for n in range(3)],
        Item(id="gone", title="deleted", deleted_at=now),
        ReviewTask(queue="anomalies", subject_type="user", subject_id="u1", evidence_key="a", created_by="system"),
        ReviewTask(queue="anomalies", subject_type="user", subject_id="u2", evidence_key="b", created_by="system"),
        ReviewTask(queue="labeling", subject_type="item", subject_id="i1", evidence_key="c", status="resolved", created_by="x"),
        Poll(public_token="t1", question="Was this useful?", kind="thumbs", created_by="user:1"),
        Poll(public_token="t2", question="Ended poll", kind="thumbs", created_by="user:1", ends_at=now - timedelta(days=1)),
        Poll(public_token="t3", question="Closed poll", kind="thumbs", created_by="user:1", closed_at=now),
    )
    page = admin.get("/").get_data(as_text=True)
    assert '<span class="figure">3</span><span class="label">items in the catalogue' in page
    assert '<span class="figure">2</span><span class="label">open review tasks' in page
    assert "Was this useful?" in page and "Ended poll" not in page and "Closed poll" not in page
    assert "learner lag" in page and "not started" in page


def test_the_activity_fragment_counts_the_last_day_per_hour(bare, admin):
    logged = [log_decision(bare, k=1) for _ in range(3)]
    add(bare, Reward(event_id=logged[0].event_id, item_id="i0", user_id="alice", value=1.0))
    fragment = admin.get("/activity", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "3 recommendations and 1 rewards in the last 24 hours" in fragment
    assert "data-chart=" in fragment


def test_a_reviewer_lands_on_the_queues(bare):
    make_user(bare, "rita@example.org", "reviewer")
    client = bare.test_client()
    sign_in(client, "rita@example.org")
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/review")
    assert client.get("/activity").status_code == 403


def test_a_learner_that_does_not_settle_shows_how_far_behind_it_is(bare, admin):
    log_decision(bare, k=1)
    with Session(bare.extensions["db_engine"]) as s:
        for event in s.exec(select(Event)).all():
            event.created_at = utcnow() - timedelta(hours=3)
            s.add(event)
        s.commit()
    page = admin.get("/").get_data(as_text=True)
    # The reward wait is 10 minutes: the oldest settlement is 2 h 50 min overdue and no learner runs.
    assert "2.8 h</span>" in page and "learner lag · stuck" in page and "status-bad" in page
