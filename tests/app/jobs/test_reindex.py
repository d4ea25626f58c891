"""Scheduled jobs: the reindex job, the run log, locking, the scheduler and the `feedloop jobs` commands."""

import time

from apscheduler.schedulers.background import BackgroundScheduler
from sqlmodel import Session, delete, select

from app import create_app
from app.db import single_instance
from app.jobs.scheduler import run_job, schedule
from app.models import ItemVector, JobRun
from embeddings.index import VectorIndex
from tests.helpers import make_app


def runs(app, job: str = "reindex") -> list[JobRun]:
    with Session(app.extensions["db_engine"]) as s:
        return list(s.exec(select(JobRun).where(JobRun.job == job).order_by(JobRun.id)))


def test_reindex_saves_the_index_with_every_change_applied(app, catalogue):
    path = app.config["FEEDLOOP"].index_path
    assert len(VectorIndex.load(path)[0]) == 0  # saved empty at start-up; uploads do not rewrite it
    run = run_job(app, "reindex")
    assert run.status == "ok" and f"index holds {len(catalogue)} items" in run.detail
    index, meta = VectorIndex.load(path)
    assert len(index) == len(catalogue) and meta["applied"] == app.extensions["catalogue"].applied


def test_reindex_leaves_an_unchanged_index_file_alone(app, catalogue):
    path = app.config["FEEDLOOP"].index_path
    assert run_job(app, "reindex").detail.endswith("saved")
    written = path.stat().st_mtime_ns
    run = run_job(app, "reindex")
    assert run.status == "ok" and run.detail.endswith("unchanged since it was saved")
    assert path.stat().st_mtime_ns == written


def test_reindex_encodes_items_that_lost_their_vector(app, catalogue):
    engine = app.extensions["db_engine"]
    with Session(engine) as s:
        s.exec(delete(ItemVector).where(ItemVector.item_id == "drone"))
        s.commit()
    assert run_job(app, "reindex").detail.startswith("encoded 1 items")
    with Session(engine) as s:
        assert s.get(ItemVector, "drone").model_id == app.extensions["catalogue"].encoder.model_id


def test_a_scheduler_with_nothing_to_encode_never_loads_the_model(config, app, catalogue):
    """The scheduler's process indexes stored vectors: the encoder's few hundred megabytes stay unloaded."""
    scheduler_app = create_app(config)
    try:
        catalogue_of_scheduler = scheduler_app.extensions["catalogue"]
        run = run_job(scheduler_app, "reindex")
        assert run.status == "ok" and f"index holds {len(catalogue)} items" in run.detail
        assert not catalogue_of_scheduler.model_ready
        drone = app.extensions["catalogue"].vectors(["drone"])["drone"]
        assert catalogue_of_scheduler.search(drone, 1)[0][0] == "drone"
    finally:
        scheduler_app.extensions["db_engine"].dispose()


def test_a_failed_run_is_recorded_and_the_next_run_recovers(app, catalogue):
    app.extensions["catalogue"].save_index()
    index_dir = app.config["FEEDLOOP"].index_path.parent
    saved = index_dir.with_name("index-moved")
    index_dir.rename(saved)
    index_dir.write_text("not a directory")  # the index can no longer be saved
    failed = run_job(app, "reindex")
    assert failed.status == "failed" and failed.finished_at is not None and "Error" in failed.detail
    index_dir.unlink()
    saved.rename(index_dir)
    assert run_job(app, "reindex").status == "ok"
    assert [r.status for r in runs(app)] == ["failed", "ok"]


def test_a_run_that_overlaps_another_is_skipped(app):
    with single_instance("job-reindex", app.config["FEEDLOOP"].home, app.extensions["db_engine"]):
        run = run_job(app, "reindex")
    assert run.status == "skipped" and "another job-reindex is running" in run.detail


def test_a_run_left_running_by_a_dead_process_is_marked_interrupted(app):
    with Session(app.extensions["db_engine"]) as s:
        s.add(JobRun(job="reindex", status="running"))
        s.commit()
    run_job(app, "reindex")
    assert [r.status for r in runs(app)] == ["interrupted", "ok"]


def test_the_scheduler_runs_each_job_at_start_and_then_at_its_interval(config):
    app = make_app({**config, "reindex_seconds": 1})
    scheduler = schedule(app, BackgroundScheduler(timezone="UTC"))
    job = scheduler.get_job("reindex")
    assert job.max_instances == 1 and job.coalesce
    scheduler.start()
    try:
        deadline = time.monotonic() + 30
        while len(runs(app)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        scheduler.shutdown(wait=True)
        app.extensions["db_engine"].dispose()
    assert [r.status for r in runs(app)][:2] == ["ok", "ok"]


def test_jobs_commands(ready):
    assert ready("jobs", "run", "reindex").output.startswith("reindex: ok: encoded 0 items")
    listing = ready("jobs", "list").output
    assert "reindex\tevery 3600 s" in listing and "\tok\t" in listing
    assert "the jobs are: reindex" in ready("jobs", "run", "nope", ok=False).output
