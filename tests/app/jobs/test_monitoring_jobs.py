"""The monitoring jobs through the scheduler's run_job: registered, recorded, and doing their work."""

from datetime import timedelta

import numpy as np
from sqlmodel import select

from app.jobs import JOBS
from app.jobs.scheduler import run_job
from app.models import Alert, DriftReport, JobRun, KpiSnapshot, ReviewTask, utcnow
from app.services import monitoring
from tests.app.services.test_monitoring import decision, population, release, reward, session, store


def test_the_monitoring_jobs_are_scheduled_by_their_settings(bare):
    settings = bare.config["FEEDLOOP"]
    for name, interval in (("kpi-snapshot", 900), ("anomaly-scan", 3600), ("drift-scan", 3600)):
        assert getattr(settings, JOBS[name][1]) == interval


def test_kpi_snapshot_stores_the_kpis_per_release_and_alerts_on_red(bare):
    now = utcnow()
    label = release(bare, "v0", now - timedelta(hours=2), "initial")
    events = [decision(f"u{n}", ["i1", "i2"], now - timedelta(minutes=n + 1)) for n in range(10)]
    store(bare, *events, reward(events[0], "i1", 0.3))  # a click, no purchase: conversion 0 is red
    run = run_job(bare, "kpi-snapshot")
    stored = 2 * len(monitoring.KPI_NAMES) - 1  # missed_items overall only
    assert (run.status, run.detail) == ("ok", f"stored {stored} KPI values, raised 2 alerts")
    with session(bare) as s:
        ctr = s.exec(select(KpiSnapshot).where(KpiSnapshot.name == "ctr", KpiSnapshot.model_version == "*")).one()
        assert ctr.value == 0.05 and ctr.n == 20
        assert {a.key for a in s.exec(select(Alert))} == {"kpi:model:*:conversion", f"kpi:model:{label}:conversion"}


def test_kpi_snapshot_says_what_a_red_model_kpi_and_a_yellow_one_set_off(bare):
    now = utcnow()
    label = release(bare, "v0", now - timedelta(hours=2), "initial")
    rows = []
    for n, (q, value) in enumerate(((0.9, 0), (0.8, 0), (0.2, 1), (0.1, 1), (0.3, 0), (0.4, 0), (0.35, 0), (0.45, 0))):
        event = decision(f"u{n}", ["i1", "i2"], now - timedelta(minutes=n + 1), qs={"i1": q})
        rows += [event, reward(event, "i1", value)]
    store(bare, *rows)  # conversion 2 of 16 (yellow); AUC and F1 0 (red)
    bare.config["FEEDLOOP"] = bare.config["FEEDLOOP"].model_copy(update={"kpi_min_labels": 8})  # judged on 8 labels
    run = run_job(bare, "kpi-snapshot")
    with session(bare) as s:
        retrain = s.exec(select(JobRun).where(JobRun.job == "retrain")).one()
        closer = s.exec(select(JobRun).where(JobRun.job == "kpi-snapshot", JobRun.status == "requested")).one()
    assert run.detail.startswith(
        f"stored 17 KPI values, raised 4 alerts; release {label}: withdraw; retrain requested (red auc, f1 on {label}); "
        "next KPI check at "
    )
    assert retrain.status == "requested" and closer.trigger == f"yellow: conversion on *, conversion on {label}"


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
    with session(bare) as s:
        assert {r.feature: r.colour for r in s.exec(select(DriftReport))}["context.age"] == "red"
        retrain = s.exec(select(JobRun).where(JobRun.job == "retrain")).one()
    assert (retrain.status, retrain.trigger) == ("requested", "drift red: context.age")
    assert (run.status, run.detail) == (
        "ok",
        f"compared 5 features, 1 red, raised 1 alerts; retrain requested (job run {retrain.id})",
    )
