"""The webhooks job: sends what is due, and keeps only the latest idle run in the job log."""

import sys

from sqlmodel import Session, select

from app.jobs.scheduler import run_job
from app.models import JobRun
from tests.app.services.test_webhooks import Receiver, answer, deliveries, hook, make_poll


def runs(app) -> list[JobRun]:
    with Session(app.extensions["db_engine"]) as s:
        return list(s.exec(select(JobRun).where(JobRun.job == "webhooks").order_by(JobRun.id)))


def test_the_job_sends_due_deliveries_and_logs_idle_runs_once(bare):
    engine = bare.extensions["db_engine"]
    receiver = Receiver()
    try:
        for _ in range(3):
            assert run_job(bare, "webhooks").detail == "nothing was due"
        assert [(r.status, r.detail) for r in runs(bare)] == [("ok", "nothing was due")]  # one, not three

        poll = make_poll(engine)
        _, receiver.secret = hook(engine, receiver.url, poll)
        answer(engine, poll, respondent="r1")
        answer(engine, poll, respondent="r2")
        receiver.plan = [500]
        worked = run_job(bare, "webhooks")
        assert (worked.status, worked.detail) == ("ok", "delivered 1, to retry 1, given up 0")
        assert len(receiver.received) == 2 and all(r["verified"] for r in receiver.received)

        latest_idle = run_job(bare, "webhooks")  # the retry is not due yet
        run_job(bare, "webhooks")
        assert [r.detail for r in runs(bare)] == ["delivered 1, to retry 1, given up 0", "nothing was due"]
        assert runs(bare)[-1].id > latest_idle.id  # the newest idle run is the one kept
        assert sorted(d.attempts for d in deliveries(engine)) == [1, 1]
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def test_a_run_goes_on_while_full_batches_come_back(bare, monkeypatch):
    monkeypatch.setattr(sys.modules["app.jobs.webhooks"], "BATCH", 2)  # app.jobs.webhooks names the job function too
    engine = bare.extensions["db_engine"]
    receiver = Receiver()
    try:
        poll = make_poll(engine)
        hook(engine, receiver.url, poll)
        for n in range(5):
            answer(engine, poll, respondent=f"r{n}")
        assert run_job(bare, "webhooks").detail == "delivered 5, to retry 0, given up 0"
        assert len(receiver.received) == 5
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
