"""Polls in a real browser: an admin creates one on its page, copies the embed snippet into a plain HTML page
served from another origin, and an end user answers it inside that page's iframe; the result shows up."""

from __future__ import annotations

import re

from sqlmodel import Session, select

from app.models import PollResponse
from tests.browser.conftest import screenshot
from tests.helpers import PASSWORD, make_user


def sign_in(page, url: str, email: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/(review.*)?$"))


def test_an_admin_creates_a_poll_and_a_user_answers_it_embedded_in_another_site(served, other_origin, page):
    app, url = served
    site, site_url = other_origin
    make_user(app, "admin@example.org", "admin")
    sign_in(page, url, "admin@example.org")

    page.goto(f"{url}/polls/new")
    page.get_by_label("Question").fill("Was this recommendation useful?")
    page.locator("select[name=kind]").select_option("thumbs")
    page.get_by_label("Sites that may embed it").fill(site_url)
    screenshot(page, "poll-create")
    page.get_by_role("button", name="Create poll").click()
    page.get_by_text("Was this recommendation useful?").first.wait_for()
    snippet = page.get_by_label("Embed snippet").input_value()
    assert f'src="{url}/p/' in snippet and "respondent_id=USER_ID" in snippet
    screenshot(page, "poll-detail")
    assert page.console_errors == []

    # The app's page, on another origin, pastes the snippet with its user's id.
    iframe = snippet.replace("USER_ID", "shopper-42")
    (site / "shop.html").write_text(
        "<!doctype html><meta charset='utf-8'><title>A shop</title>"
        "<body style='font-family: sans-serif; max-width: 40rem; margin: 2rem auto'>"
        "<h2>Two-person camping tent</h2><p>Recommended for you · 129 €</p>"
        f"{iframe}</body>"
    )
    page.set_viewport_size({"width": 900, "height": 420})
    page.goto(f"{site_url}/shop.html")
    frame = page.frame_locator("iframe")
    frame.get_by_role("button", name=re.compile("thumbs up", re.I)).wait_for()
    screenshot(page, "poll-embed")
    frame.get_by_role("button", name=re.compile("thumbs up", re.I)).click()
    frame.get_by_role("status").wait_for()
    screenshot(page, "poll-embed-answered")

    with Session(app.extensions["db_engine"]) as s:
        (answer,) = s.exec(select(PollResponse)).all()
    assert (answer.respondent_id, answer.answer) == ("shopper-42", "up")

    page.set_viewport_size({"width": 1200, "height": 820})
    page.goto(f"{url}/polls/{answer.poll_id}/results")
    page.locator("canvas[data-chart]").wait_for()
    screenshot(page, "poll-results")
    assert page.console_errors == []


def test_a_site_not_allowed_cannot_frame_the_poll(served, other_origin, page):
    app, url = served
    site, site_url = other_origin
    from app import db
    from app.services.polls import create_poll
    from feedback.polls import PollSpec

    with app.app_context(), db.write_session() as s:
        token = create_poll(
            s, PollSpec(question="Framed?", kind="thumbs", allowed_origins=("https://elsewhere.example",)), "test"
        ).public_token
    (site / "evil.html").write_text(f'<!doctype html><iframe src="{url}/p/{token}?respondent_id=x"></iframe>')
    page.goto(f"{site_url}/evil.html")
    page.wait_for_timeout(500)
    assert page.frame_locator("iframe").get_by_role("button").count() == 0  # the browser refused to render it
