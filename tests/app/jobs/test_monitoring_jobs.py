"""The monitoring jobs through the scheduler's run_job: registered, recorded, and doing their work."""

from datetime import timedelta

import numpy as np
from sqlmodel import select

from app.jobs import JOBS
from app.jobs.scheduler import run_job
from app.models import Alert, DriftReport, KpiSnapshot, ReviewTask, utcnow
from app.services import monitoring
from tests.app.services.test_monitoring import decision, population, reward, session, store


def test_the_monitoring_jobs_are_scheduled_by_their_settings(bare):
    settings = bare.config["FEEDLOOP"]
    for name, interval in (("kpi-snapshot", 900), ("anomaly-scan", 3600), ("drift-scan", 3600)):
        assert getattr(settings, JOBS[name][1]) == interval


def test_kpi_snapshot_stores_the_kpis_and_alerts_on_red(bare):
    now = utcnow()
    events = [decision(f"u{n}", ["i1", "i2"], now - timedelta(minutes=n + 1)) for n in range(10)]
    store(bare, *events, reward(events[0], "i1", 0.3))  # a click, no purchase: conversion 0 is red
    run = run_job(bare, "kpi-snapshot")
    assert (run.status, run.detail) == ("ok", f"stored {2 * len(monitoring.KPI_NAMES)} KPI values, raised 2 alerts")
    with session(bare) as s:
        ctr = s.exec(select(KpiSnapshot).where(KpiSnapshot.name == "ctr", KpiSnapshot.model_version == "*")).one()
        assert ctr.value == 0.05 and ctr.n == 20
        assert {a.key for a in s.exec(select(Alert))} == {"kpi:model:*:conversion", "kpi:model:v1:conversion"}


def test_anomaly_scan_sends_a_fraud_like_user_to_the_queue(bare):
    store(bare, *population(seed=5, end=utcnow()))
    run = run_job(bare, "anomaly-scan")
    assert (run.status, run.detail) == ("ok", "0 engagement drops, 1 of 61 users flagged, raised 1 alerts")
    with session(bare) as s:
        assert [t.subject_id for t in s.exec(select(ReviewTask))] == ["bot"]


def test_drift_scan_reports_every_feature(bare):
    rng, now = np.random.default_rng(1), utcnow()
    rows = [
        decision(f"u{n}", ["i1"], now - timedelta(days=2, seconds=n), context={"age": float(rng.normal(30, 5))})
        for n in range(300)
    ] + [decision(f"u{n}", ["i1"], now - timedelta(seconds=n + 1), context={"age": float(rng.normal(50, 5))}) for n in range(300)]
    store(bare, *rows)
    run = run_job(bare, "drift-scan")
    assert (run.status, run.detail) == ("ok", "compared 5 features, 1 red, raised 1 alerts")
    with session(bare) as s:
        assert {r.feature: r.colour for r in s.exec(select(DriftReport))}["context.age"] == "red"
