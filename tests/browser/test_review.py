"""A reviewer in a real browser: signs in, lands on the queues, claims the next task, decides it with a keyboard
shortcut, and the audit log (an admin's page) shows the decision."""

from __future__ import annotations

import re

from app import db
from app.services.review import enqueue
from feedback.review import validate_task
from tests.browser.conftest import screenshot
from tests.helpers import PASSWORD, make_user


def sign_in(page, url: str, email: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_a_reviewer_claims_a_task_and_resolves_it_with_a_keyboard_shortcut(served, page):
    app, url = served
    make_user(app, "rita@example.org", "reviewer")
    make_user(app, "admin@example.org", "admin")
    series = {
        "x": [f"{h:02d}:00" for h in range(12)],
        "series": {"clicks per minute": [2, 3, 2, 2, 3, 2, 41, 55, 48, 60, 52, 58]},
    }
    with app.app_context(), db.write_session() as s:
        enqueue(
            s,
            validate_task("anomalies", "user", "u-1042", {"clicks_per_minute": 58.0, "distinct_items": 3, **series}, 10),
            "system",
        )
        enqueue(s, validate_task("anomalies", "user", "u-7", {"clicks_per_minute": 4.1}, 1), "system")

    sign_in(page, url, "rita@example.org")
    page.wait_for_url(re.compile(r".*/review/?$"))
    screenshot(page, "review-queues")
    page.get_by_role("link", name=re.compile("anomalies")).first.click()
    page.wait_for_url(re.compile(r".*/review/anomalies$"))
    screenshot(page, "review-queue")

    page.keyboard.press("n")  # claim next: the highest priority first
    page.get_by_role("heading", name=re.compile("u-1042")).wait_for()
    page.locator("canvas[data-chart]").wait_for()
    screenshot(page, "review-task")
    page.keyboard.press("c")  # confirm
    page.get_by_text(re.compile("u-7|nothing|no task|empty", re.I)).first.wait_for()
    assert page.console_errors == []

    page.goto(f"{url}/login")
    page.context.clear_cookies()
    sign_in(page, url, "admin@example.org")
    page.wait_for_url(f"{url}/")
    page.goto(f"{url}/review/audit")
    row = page.locator("tr").filter(has_text="rita@example.org").filter(has_text=re.compile(r"\bdecide\b"))
    row.first.wait_for()
    assert "task 1" in row.first.inner_text() and "confirm" in row.first.inner_text()
    screenshot(page, "review-audit")
    assert page.console_errors == []
