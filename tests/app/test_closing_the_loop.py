"""Issue 11's chains end to end, through the jobs as the scheduler runs them: a synthetic shift turns drift red
and the retrain it asks for runs with that reason on its model card."""

from __future__ import annotations

from sqlmodel import Session, select

from app.jobs.scheduler import run_requested
from app.models import JobRun, ModelCard
from app.services import monitoring
from tests.app.services.test_monitoring import NOW, drift_log, settings


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
