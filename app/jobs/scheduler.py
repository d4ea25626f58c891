"""The scheduler: APScheduler running the jobs of app.jobs, each at its configured interval.

APScheduler runs every job once per process that starts it, so exactly one scheduler runs per
deployment (the `feedloop scheduler` process, or the sidecar of `feedloop serve`, guarded by a lock),
and each run also takes a lock of its own, so that `feedloop jobs run` never overlaps a scheduled run.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.base import BaseScheduler
from flask import Flask
from sqlmodel import select

from app.db import AlreadyRunning, single_instance, write_session
from app.jobs import JOBS
from app.models import JobRun, utcnow

log = logging.getLogger(__name__)


def run_job(app: Flask, name: str) -> JobRun:
    """Run one job now and record the run: ok with its summary, failed with the error, or skipped
    when another run of the same job holds its lock."""
    job, _ = JOBS[name]
    settings, engine = app.config["FEEDLOOP"], app.extensions["db_engine"]
    try:
        with single_instance(f"job-{name}", settings.home, engine):
            _close_interrupted(engine, name)
            run = _record(engine, JobRun(job=name, status="running"))
            try:
                with app.app_context():
                    run.detail, run.status = job(app), "ok"
            except Exception as exc:  # a failed run is recorded and the next one is tried on schedule
                log.exception("job %s failed", name)
                run.detail, run.status = f"{type(exc).__name__}: {exc}", "failed"
    except AlreadyRunning as exc:
        run = JobRun(job=name, status="skipped", detail=str(exc))
    run.finished_at = utcnow()
    return _record(engine, run)


def _close_interrupted(engine, name: str) -> None:
    """Runs still marked running while we hold the job's lock died with their process."""
    with write_session(engine) as s:
        for run in s.exec(select(JobRun).where(JobRun.job == name, JobRun.status == "running")):
            run.status, run.detail = "interrupted", "the process stopped before the run finished"


def _record(engine, run: JobRun) -> JobRun:
    with write_session(engine) as s:
        run = s.merge(run)
    return run


def schedule(app: Flask, scheduler: BaseScheduler) -> BaseScheduler:
    """Add every job to the scheduler: first run at start-up, then at its interval; a run that is late
    because the previous one overran is merged into one (coalesce) rather than queued."""
    settings = app.config["FEEDLOOP"]
    for name, (_, interval) in JOBS.items():
        scheduler.add_job(
            run_job,
            "interval",
            args=(app, name),
            id=name,
            name=name,
            seconds=getattr(settings, interval),
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
    return scheduler
