"""Runs of a job asked for by another check (a drift going red asks for a retrain): stored as a `requested` job
run, which the scheduler takes up within seconds. One request per job waits at a time."""

from __future__ import annotations

from sqlmodel import Session, col, select

from app.models import JobRun


def request_run(s: Session, job: str, trigger: str) -> int:
    """Ask for a run of `job` (the id of the waiting request; an existing one is reused, its reason kept)."""
    waiting = s.exec(select(JobRun).where(JobRun.job == job, JobRun.status == "requested")).first()
    if waiting is not None:
        return waiting.id
    run = JobRun(job=job, status="requested", trigger=trigger[:128], detail=f"requested: {trigger}")
    s.add(run)
    s.flush()
    return run.id


def requested(s: Session) -> list[JobRun]:
    return list(s.exec(select(JobRun).where(JobRun.status == "requested").order_by(col(JobRun.id))))
