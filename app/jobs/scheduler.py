"""The scheduler: APScheduler running the jobs of app.jobs, each at its configured interval.

APScheduler runs every job once per process that starts it, so exactly one scheduler runs per
deployment (the `feedloop scheduler` process, or the sidecar of `feedloop serve`, guarded by a lock),
and each run also takes a lock of its own, so that `feedloop jobs run` never overlaps a scheduled run.
Runs another check asked for (app.services.job_requests) are taken up every REQUESTS_SECONDS.
"""

from __future__ import annotations

import inspect
import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.base import BaseScheduler
from flask import Flask
from sqlmodel import Session, col, func, select

from app.db import AlreadyRunning, single_instance, write_session
from app.jobs import AFTER_AN_INTERVAL, JOBS
from app.models import JobRun, utcnow
from app.services.job_requests import claim, requested

log = logging.getLogger(__name__)
REQUESTS_SECONDS = 5
FINISHED = ("ok", "failed")


def run_job(app: Flask, name: str, trigger: str = "manual", request: JobRun | None = None) -> JobRun:
    """Run one job now and record the run: ok with its summary, failed with the error, or skipped
    when another run of the same job holds its lock. A job that takes a `trigger` is told why it runs."""
    job, _ = JOBS[name]
    settings, engine = app.config["FEEDLOOP"], app.extensions["db_engine"]
    if request is not None:
        trigger = request.trigger
    try:
        with single_instance(f"job-{name}", settings.home, engine):
            _close_interrupted(engine, name)
            if request is not None and not claim(engine, request.id):
                return request  # another scheduler took it up meanwhile
            started = request or JobRun(job=name)
            started.status, started.trigger, started.started_at = "running", trigger, utcnow()
            run = _record(engine, started)
            try:
                with app.app_context():
                    summary = job(app, trigger=trigger) if "trigger" in inspect.signature(job).parameters else job(app)
                    run.detail, run.status = summary, "ok"
            except Exception as exc:  # a failed run is recorded and the next one is tried on schedule
                log.exception("job %s failed", name)
                run.detail, run.status = f"{type(exc).__name__}: {exc}", "failed"
    except AlreadyRunning as exc:
        if request is not None:
            return request  # stays requested: the next look takes it up once the running one has finished
        run = JobRun(job=name, status="skipped", trigger=trigger, detail=str(exc))
    run.finished_at = utcnow()
    return _record(engine, run)


def run_requested(app: Flask) -> int:
    """Run the jobs other checks asked for (a red drift asks for a retrain), oldest request first."""
    with Session(app.extensions["db_engine"]) as s:
        waiting = requested(s)
    for request in waiting:
        if request.job in JOBS:
            run_job(app, request.job, request=request)
        else:
            request.status, request.detail, request.finished_at = "failed", f"no job named {request.job!r}", utcnow()
            _record(app.extensions["db_engine"], request)
    return len(waiting)


def _first_run(app: Flask, name: str, seconds: int, now: datetime) -> datetime:
    """One interval after the job's last run (now, when that is overdue; one interval from now if it never ran), so
    that restarts neither repeat nor postpone it."""
    with Session(app.extensions["db_engine"]) as s:
        last = s.exec(select(func.max(JobRun.started_at)).where(JobRun.job == name, col(JobRun.status).in_(FINISHED))).one()
    return max(now, (last or now) + timedelta(seconds=seconds))


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
    """Add every job to the scheduler: first run at start-up (or after one interval), then at its interval; a run that is late
    because the previous one overran is merged into one (coalesce) rather than queued."""
    settings = app.config["FEEDLOOP"]
    now = datetime.now(UTC)
    for name, (_, interval) in JOBS.items():
        seconds = getattr(settings, interval)
        scheduler.add_job(
            run_job,
            "interval",
            args=(app, name, "schedule"),
            id=name,
            name=name,
            seconds=seconds,
            next_run_time=_first_run(app, name, seconds, now) if name in AFTER_AN_INTERVAL else now,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
    scheduler.add_job(
        run_requested,
        "interval",
        args=(app,),
        id="requested",
        name="requested runs",
        seconds=REQUESTS_SECONDS,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
    )
    return scheduler
