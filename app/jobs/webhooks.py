import time

from flask import Flask
from sqlmodel import col, delete

from app.db import write_session
from app.models import JobRun
from app.services.webhooks import BATCH, Round, deliver_due

IDLE = "nothing was due"
MAX_ROUNDS = 20  # then the next run goes on: a run stays short however long the outbox is
BUDGET_SECONDS = 60.0  # no new round after this long (slow receivers), for the same reason


def webhooks(app: Flask) -> str:
    """Send due webhook deliveries (poll answers) with their retries. It runs every few seconds, so a run that
    found nothing to send replaces the previous such run in the job log instead of adding to it: the log keeps
    every run that did work and the latest idle one, which tells that the job is alive (every 5 s, idle runs
    would otherwise add 17,000 rows a day)."""
    settings, engine = app.config["FEEDLOOP"], app.extensions["db_engine"]
    total, started = Round(), time.monotonic()
    for _ in range(MAX_ROUNDS):
        done = deliver_due(engine, settings, limit=BATCH)
        total += done
        if done.attempted + done.taken < BATCH or time.monotonic() - started > BUDGET_SECONDS:
            break
    if total.attempted == 0:
        with write_session(engine) as s:
            s.exec(delete(JobRun).where(JobRun.job == "webhooks", JobRun.status == "ok", col(JobRun.detail) == IDLE))
        return IDLE
    return f"delivered {total.delivered}, to retry {total.retrying}, given up {total.failed}"
