"""Two scheduler processes never run the same job together: real processes calling run_job for a job that holds
on until the test lets it finish. On SQLite both share FEEDLOOP_HOME (one host: the file lock decides); on
PostgreSQL each has its own home, as two hosts would, so only the database's advisory lock can keep them apart."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sqlmodel import Session, col, select

from app.jobs import JOBS
from app.jobs.scheduler import run_job
from app.models import JobRun

JOB = "exclusive-probe"
ROOT = Path(__file__).resolve().parents[3]
WAIT = 120  # seconds any one step may take before the test gives up (process start-up included)

# A scheduler process: the app on the shared database, with a job registered that runs until `gate` exists.
CHILD = f"""
import sys, time
from pathlib import Path
from app import create_app
from app.jobs import JOBS
from app.jobs.scheduler import run_job

home, url, gate = sys.argv[1:]

def hold(app):
    deadline = time.monotonic() + {WAIT}
    while not Path(gate).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return "held until released"

JOBS[{JOB!r}] = (hold, "kpi_seconds")
run = run_job(create_app({{"home": home, "database_url": url, "env": "test"}}), {JOB!r})
print(run.status)
"""


def scheduler(home: Path, url: str, gate: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(home), url, str(gate)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=WAIT)
    assert process.returncode == 0, err
    return out.strip().splitlines()[-1]


def runs(engine) -> list[JobRun]:
    with Session(engine) as s:
        return list(s.exec(select(JobRun).where(JobRun.job == JOB).order_by(col(JobRun.id))))


def wait_until_running(engine, first: subprocess.Popen) -> None:
    deadline = time.monotonic() + WAIT
    while not any(r.status == "running" for r in runs(engine)):
        assert first.poll() is None, first.communicate()[1]
        assert time.monotonic() < deadline, "the first scheduler never started its run"
        time.sleep(0.1)


def test_two_schedulers_never_run_the_same_job_together(bare, config, database_url, tmp_path, monkeypatch):
    engine = bare.extensions["db_engine"]
    gate = tmp_path / "release"
    two_hosts = database_url.startswith("postgresql")
    homes = [tmp_path / "host-a", tmp_path / "host-b"] if two_hosts else [Path(config["home"])] * 2

    first = scheduler(homes[0], database_url, gate)
    try:
        wait_until_running(engine, first)
        assert finished(scheduler(homes[1], database_url, gate)) == "skipped"  # while the first one holds the job
    finally:
        gate.touch()
    assert finished(first) == "ok"
    monkeypatch.setitem(JOBS, JOB, (lambda app: "ran", "kpi_seconds"))
    assert run_job(bare, JOB).status == "ok"  # the lock went with the first run's process

    held, skipped, after = runs(engine)
    assert (held.status, skipped.status, after.status) == ("ok", "skipped", "ok")
    assert held.started_at <= skipped.started_at <= held.finished_at  # it really came while the first one ran
    assert "another job-exclusive-probe is running" in skipped.detail
    if two_hosts:
        assert "against this database" in skipped.detail  # the advisory lock, not a file lock, kept them apart
    ran = [(r.started_at, r.finished_at) for r in (held, after)]
    assert ran[0][1] <= ran[1][0]  # the runs that ran never overlap
