"""An admin reads a retrain run's model card, chart included, and promotes its candidate from the models page."""

from __future__ import annotations

from datetime import timedelta

from app.models import utcnow
from app.services.learner import Learner
from app.services.retraining import retrain
from tests.app.services.test_retraining import NEW, OLD, greedy, log_decisions
from tests.browser.conftest import screenshot
from tests.helpers import PASSWORD, make_user


def test_an_admin_reads_a_model_card_and_promotes_its_candidate(served, page):
    app, url = served
    settings, engine = app.config["FEEDLOOP"], app.extensions["db_engine"]
    settings.retrain_resamples, settings.retrain_holdout_share = 100, 0.25
    make_user(app, "admin@example.org", "admin")
    learner = Learner(settings, engine)
    now = utcnow()
    log_decisions(app, 1000, now - timedelta(days=2), 86400, OLD)
    log_decisions(app, 400, now - timedelta(hours=6), 6 * 3600 - 60, NEW, policy=greedy(NEW), seed=1)
    learner.step()
    learner.publish(keep=True)
    card = retrain(engine, settings, "schedule", now=now)

    page.goto(f"{url}/login?next=/models/")
    page.get_by_label("Email").fill("admin@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/models/")
    screenshot(page, "models")
    page.get_by_role("link", name=f"#{card.id}").click()
    page.wait_for_url(f"{url}/models/cards/{card.id}")
    page.locator("canvas[data-chart]").wait_for()
    assert page.locator("canvas[data-chart]").evaluate("c => c.feedloopChart !== undefined")
    assert page.get_by_text("the live model keeps serving").is_visible()
    screenshot(page, "model-card")
    page.get_by_role("button", name="Promote anyway").click()
    page.wait_for_url(f"{url}/models/")
    assert page.get_by_text(f"Waiting for the learner: promote {card.candidate_version}").is_visible()
    learner.step()
    page.reload()
    assert page.locator(".stats .figure").first.inner_text() == card.candidate_version
    page.get_by_role("link", name=card.candidate_version).first.click()
    screenshot(page, "model-version")
    assert page.console_errors == []
