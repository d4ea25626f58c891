"""The models page: what serves, the retrain runs with their cards, the kept versions and their lineage; rollback,
promotion and shadow are one button each, carried out by the learner and audited."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from app.models import AuditEntry, ModelRelease, ModelRequest, utcnow
from app.services.learner import Learner
from app.services.retraining import retrain
from tests.app.services.test_retraining import NEW, OLD, greedy, log_decisions
from tests.helpers import SteppedClock, csrf_token, make_user, sign_in


def admin(app):
    make_user(app, "admin@example.org", "admin")
    client = app.test_client()
    sign_in(client, "admin@example.org")
    return client


def test_a_retrain_run_shows_its_card_and_its_candidate_can_be_promoted_from_the_page(bare):
    settings = bare.config["FEEDLOOP"]
    settings.retrain_resamples = 100
    engine = bare.extensions["db_engine"]
    learner = Learner(settings, engine, clock=SteppedClock())
    now = utcnow()
    log_decisions(bare, 1000, now - timedelta(days=2), 86400, OLD)
    log_decisions(bare, 400, now - timedelta(hours=6), 6 * 3600 - 60, NEW, policy=greedy(NEW), seed=1)
    settings.retrain_holdout_share = 0.25
    learner.step()
    learner.publish(keep=True)
    card = retrain(engine, settings, "manual", now=now)
    assert card.status == "rejected"
    client = admin(bare)

    page = client.get("/models/").get_data(as_text=True)
    assert "Retrain runs" in page and f"#{card.id}" in page and "rejected" in page
    assert "/models/v2" in page and "initial" in page  # the learner's first release and a kept version
    card_page = client.get(f"/models/cards/{card.id}").get_data(as_text=True)
    assert "the live model keeps serving" in card_page and "Settings tried" in card_page and "Known limits" in card_page
    assert "data-chart" in card_page and "DR" in card_page
    version_page = client.get(f"/models/{card.candidate_version}").get_data(as_text=True)
    assert "from scratch" in version_page and f"retrain run #{card.id}" in version_page

    answer = client.post(f"/models/{card.candidate_version}/promote", data={"csrf_token": csrf_token(client, "/models/")})
    assert answer.status_code == 302
    learner.step()
    with Session(engine) as s:
        assert s.exec(select(ModelRequest.status)).all() == ["done"]
        release = s.exec(select(ModelRelease).order_by(ModelRelease.id.desc())).first()
        assert (release.version, release.kind) == (card.candidate_version, "promotion")
        assert "admin@example.org" in release.reason or "user:" in release.reason
        assert s.exec(select(AuditEntry.action, AuditEntry.subject_id)).all()[-1] == ("promote", card.candidate_version)
    assert learner.model.version == card.candidate_version
    assert f'<span class="figure">{card.candidate_version}</span>' in client.get("/models/").get_data(as_text=True)


def test_rollback_and_shadow_buttons(bare):
    settings = bare.config["FEEDLOOP"]
    engine = bare.extensions["db_engine"]
    learner = Learner(settings, engine, clock=SteppedClock())
    log_decisions(bare, 50, utcnow() - timedelta(hours=2), 3600, OLD)
    learner.step()
    learner.publish(keep=True)
    client = admin(bare)
    token = csrf_token(client, "/models/")

    assert client.post("/models/v2/rollback", data={"csrf_token": token}).status_code == 302
    assert client.post("/models/nope/rollback", data={"csrf_token": token}).status_code == 404
    assert client.post("/models/v2/promote", data={"csrf_token": token}).status_code == 400  # not a candidate
    assert client.post("/models/v2/rollback").status_code == 400  # no CSRF token
    learner.step()
    with Session(engine) as s:
        assert s.exec(select(ModelRelease.kind).order_by(ModelRelease.id)).all() == ["initial", "rollback"]

    assert client.post("/models/v2/shadow", data={"csrf_token": token}).status_code == 302
    assert settings.shadow_path.exists()
    assert "Shadow: v2" in client.get("/models/").get_data(as_text=True)
    assert client.post("/models/shadow/stop", data={"csrf_token": token}).status_code == 302
    assert not settings.shadow_path.exists()
