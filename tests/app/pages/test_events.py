"""/events: a decision's page, from the request and what the policy saw to the models that learned from it; and
the look-up form."""

from __future__ import annotations

import pytest

from tests.app.services.test_lineage import build_world
from tests.helpers import make_user, sign_in


@pytest.fixture
def world(bare):
    found = build_world(bare)
    make_user(bare, "admin@example.org", "admin")
    return found


def page_of(bare, email: str, event_id: str):
    client = bare.test_client()
    sign_in(client, email)
    return client.get(f"/events/{event_id}")


def test_an_admin_follows_a_decision_from_the_request_to_the_retraining(bare, world):
    response = page_of(bare, "admin@example.org", world.event.id)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert world.event.id in page and "alice" in page and "device" in page and "mobile" in page
    assert "release v0#" in page  # served by
    assert "Was this useful?" in page and "<strong>up</strong>" in page  # the poll answer
    assert page.count('href="/review/tasks/') == 2 and "ravi@example.org: relevant" in page
    assert '<a href="/models/v2">v2</a>' in page and "carries them from v2" in page  # learned by, then inherited
    assert '<a href="/models/cards/' in page and "trained r7 on rewards" in page and "judged r7 on it" in page
    assert "no: user confirmed as fraud" in page and "no: set aside (NaN)" in page  # rewards never learned


def test_a_reviewer_sees_the_page_without_other_reviewers_open_decisions_or_admin_links(bare, world):
    page = page_of(bare, "ravi@example.org", world.event.id).get_data(as_text=True)
    assert "ravi@example.org: relevant" in page and "rita@example.org: relevant" in page  # a resolved task
    assert "rita@example.org: confirm" not in page  # rita's decision on the open task about alice
    assert 'href="/models/' not in page  # the models pages are for admins


def test_the_activity_the_policy_saw_is_shown(bare, world):
    from sqlmodel import Session

    from app.models import Event

    with Session(bare.extensions["db_engine"]) as s:
        event = s.get(Event, world.event.id)
        event.shared = {**event.shared, "activity": {"user_click_1h": 0.6931, "user_cat_books": 1.0, "user_search_5m": 0.0}}
        s.add(event)
        s.commit()
    page = page_of(bare, "admin@example.org", world.event.id).get_data(as_text=True)
    assert "user_click_1h" in page and "0.6931" in page and "user_cat_books" in page and "1 more at 0." in page


def test_the_look_up_form_finds_an_event_and_refuses_what_is_not_an_event_id(bare, world):
    client = bare.test_client()
    make_user(bare, "admin2@example.org", "admin")
    sign_in(client, "admin2@example.org")
    assert 'name="event_id"' in client.get("/events/").get_data(as_text=True)
    found = client.get("/events/", query_string={"event_id": f" {world.event.id} "})
    assert found.status_code == 303 and found.headers["Location"].endswith(f"/events/{world.event.id}")
    refused = client.get("/events/", query_string={"event_id": "not an id"})
    assert refused.status_code == 422 and "32 letters and digits" in refused.get_data(as_text=True)
    missing = client.get("/events/0123456789abcdef0123456789abcdef")
    assert missing.status_code == 404 and "no recommendation event" in missing.get_data(as_text=True)
