"""Issue 11's chains end to end: a synthetic shift turns drift red and the retrain it asks for runs, through the
scheduler's requested runs, with that reason on its model card; a red model KPI takes the model out of serving
(the fallback ranking answers) until a promotion."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlmodel import Session, select

from app import db
from app.jobs.scheduler import run_requested
from app.models import JobRun, ModelCard, ModelVersion, utcnow
from app.services import monitoring, releases
from app.services.learner import Learner
from app.services.model_store import CHECK_SECONDS
from tests.app.services.test_monitoring import NOW, drift_log, settings, store
from tests.app.services.test_monitoring_actions import misjudged
from tests.helpers import SteppedClock, recommend


def test_drift_turning_red_runs_a_retrain_that_says_why(bare):
    drift_log(bare, shift=2.0)
    with Session(bare.extensions["db_engine"]) as s:
        monitoring.scan_drift(s, settings(bare, drift_current_seconds=3600, drift_reference_seconds=3600), now=NOW)
        s.commit()

    assert run_requested(bare) == 1

    with Session(bare.extensions["db_engine"]) as s:
        run = s.exec(select(JobRun).where(JobRun.job == "retrain")).one()
        card = s.exec(select(ModelCard)).one()
    assert (run.status, run.trigger) == ("ok", "drift red: context.age")
    assert card.trigger == "drift red: context.age" and f"model card {card.id}" in run.detail
    assert run_requested(bare) == 0  # taken up once


def test_a_red_model_kpi_takes_the_model_out_of_serving_until_a_promotion(app, client, auth, catalogue):
    settings, engine = app.config["FEEDLOOP"], app.extensions["db_engine"]
    learner = Learner(settings, engine, clock=SteppedClock())  # the first start: release v0#1
    assert not recommend(client, auth, k=2)["fallback"]
    started = utcnow()
    store(app, *misjudged("v0", started + timedelta(seconds=1)))  # its Q-values rank the outcomes backwards
    with Session(engine) as s:
        run = monitoring.snapshot_kpis(s, settings.model_copy(update={"kpi_min_labels": 1}), now=started + timedelta(minutes=5))
        s.commit()
    assert run.actions[0] == "release v0#1: withdraw"

    learner.step()
    time.sleep(CHECK_SECONDS * 2)  # the workers' next look at the snapshot

    withdrawn = recommend(client, auth, k=2)
    assert withdrawn["fallback"] and withdrawn["model_version"] == "fallback"
    assert all(item["probability"] == 1.0 for item in withdrawn["items"])
    with db.write_session(engine) as s:
        candidate = learner.model.to_snapshot("r7", {}).to_bytes()
        s.add(ModelVersion(version="r7", archive=candidate, source="retrain", last_reward_id=learner.last_reward_id))
        releases.request(s, "promote", "r7", "a retrained candidate")
    learner.step()
    time.sleep(CHECK_SECONDS * 2)
    served = recommend(client, auth, k=2)
    assert not served["fallback"] and served["model_version"] == "r7"
