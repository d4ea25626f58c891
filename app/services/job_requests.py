"""Runs of a job asked for by another check (a drift going red asks for a retrain): stored as a `requested` job
run, which the scheduler takes up within seconds. One request per job waits at a time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from app.db import write_session
from app.models import JobRun, utcnow


def request_run(s: Session, job: str, trigger: str, not_before: datetime | None = None) -> int:
    """Ask for a run of `job`, now or from `not_before` on (the id of the waiting request; an existing one is
    reused, its reason and time kept). A requested run's started_at is when it may start."""
    waiting = s.exec(select(JobRun).where(JobRun.job == job, JobRun.status == "requested")).first()
    if waiting is not None:
        return waiting.id
    run = JobRun(
        job=job, status="requested", trigger=trigger[:128], detail=f"requested: {trigger}", started_at=not_before or utcnow()
    )
    s.add(run)
    s.flush()
    return run.id


def requested(s: Session) -> list[JobRun]:
    """The requests due now (a request may name a later start: a yellow KPI asks for a check in a few minutes)."""
    due = (JobRun.status == "requested", col(JobRun.started_at) <= utcnow())
    return list(s.exec(select(JobRun).where(*due).order_by(col(JobRun.id))))


def claim(engine: Engine, run_id: int) -> bool:
    """Take up the request (False when another process took it first): one conditional update."""
    with write_session(engine) as s:
        taken = s.execute(update(JobRun).where(col(JobRun.id) == run_id, JobRun.status == "requested").values(status="running"))
        return taken.rowcount == 1
