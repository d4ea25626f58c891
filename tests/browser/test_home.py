"""An admin signs in and sees the home page, chart included, with no script blocked by the CSP."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from app.models import Event, Item, Poll, ReviewTask, Reward, utcnow
from app.services.learner import Learner
from tests.browser.conftest import screenshot
from tests.helpers import PASSWORD, log_decision, make_user


def a_day_of_traffic(app) -> None:
    """Items, a day of recommendations (busier in the evening) with some rewarded, a poll and open tasks."""
    now = utcnow()
    with Session(app.extensions["db_engine"]) as s:
        s.add_all(Item(id=f"item-{n}", title=f"Item {n}") for n in range(120))
        s.add(Poll(public_token="demo", question="Was this recommendation useful?", kind="thumbs", created_by="user:1"))
        s.add_all(
            ReviewTask(queue=q, subject_type="user", subject_id=f"u{n}", evidence_key=str(n), created_by="system")
            for n, q in enumerate(["anomalies"] * 3 + ["labeling"] * 5)
        )
        s.commit()
    for hour in range(24):
        for n in range(4 + (hour * 7) % 11):
            logged = log_decision(app, k=1, user_id=f"u{n}")
            with Session(app.extensions["db_engine"]) as s:
                event = s.get(Event, logged.event_id)
                event.created_at = now - timedelta(hours=hour, minutes=n)
                s.add(event)
                if n % 3 == 0:
                    s.add(Reward(event_id=event.id, item_id="i0", user_id=event.user_id, value=1.0, received_at=event.created_at))
                s.commit()
    learner = Learner(app.config["FEEDLOOP"], app.extensions["db_engine"])
    while learner.step():
        pass
    learner.publish()
    learner.heartbeat()


def test_an_admin_signs_in_and_sees_the_home_page(served, page):
    app, url = served
    make_user(app, "admin@example.org", "admin")
    a_day_of_traffic(app)
    page.goto(f"{url}/")
    assert page.url.endswith("/login?next=/")
    page.get_by_label("Email").fill("admin@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/")
    page.get_by_text("items in the catalogue").wait_for()
    assert page.get_by_text("learner lag · ok").is_visible()
    page.locator("canvas[data-chart]").wait_for()  # loaded by htmx after the page
    assert page.locator("canvas[data-chart]").evaluate("c => c.feedloopChart !== undefined")
    screenshot(page, "home")
    assert page.console_errors == []
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{url}/login")
