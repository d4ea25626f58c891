"""A reviewer looks a decision up by its id and reads its page (with no script or style blocked by the CSP)."""

from __future__ import annotations

from sqlmodel import Session

from app.models import Event
from tests.app.services.test_lineage import build_world
from tests.browser.conftest import screenshot
from tests.helpers import PASSWORD, make_user


def test_an_admin_looks_up_a_decision_and_follows_its_lineage(served, page):
    app, url = served
    world = build_world(app)
    make_user(app, "admin@example.org", "admin")
    with Session(app.extensions["db_engine"]) as s:  # what a decision logged with activity features holds
        event = s.get(Event, world.event.id)
        event.shared = {**event.shared, "activity": {"user_click_1h": 0.6931, "user_ctr_1h": 0.5, "user_cat_books": 1.0}}
        event.candidates = [
            {**c, "activity": {"item_impression_1h": 2.3979, "item_ctr_1h": 0.2}} if c["id"] == "i0" else c
            for c in event.candidates
        ]
        s.add(event)
        s.commit()
    page.goto(f"{url}/events/")
    page.get_by_label("Email").fill("admin@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Event id").fill(world.event.id)
    page.get_by_role("button", name="Find").click()
    page.wait_for_url(f"{url}/events/{world.event.id}")
    assert page.get_by_role("link", name="v2", exact=True).is_visible()
    assert page.get_by_text("user_cat_books").is_visible()
    screenshot(page, "event")
    assert page.console_errors == []
