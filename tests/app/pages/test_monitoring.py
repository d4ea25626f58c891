"""The monitoring and jobs pages: KPIs with their bands, drift, alerts resolved with an audit entry, and jobs
run now by asking the scheduler."""

from __future__ import annotations

import html as html_lib
import json
import re
from datetime import timedelta

from sqlmodel import select

from app.jobs.scheduler import run_requested
from app.models import Alert, AuditEntry, JobRun, utcnow
from app.services import job_requests, monitoring
from tests.app.services.test_monitoring import decision, release, reward, session, store
from tests.helpers import csrf_token, make_user, sign_in


def admin(app):
    make_user(app, "admin@example.org", "admin")
    client = app.test_client()
    sign_in(client, "admin@example.org")
    return client


def test_the_page_shows_kpis_per_release_with_bands_drift_and_open_alerts(bare):
    now = utcnow()
    old = release(bare, "v0", now - timedelta(days=2), "initial")
    serving = release(bare, "v3", now - timedelta(minutes=30))
    events = [decision(f"u{n}", ["i1", "i2"], now - timedelta(minutes=n + 1)) for n in range(10)]
    events.append(decision("u0", ["i1"], now - timedelta(hours=1, minutes=30)))  # served by the older release
    store(bare, *events, reward(events[0], "i1", 0.3))
    with session(bare) as s:
        monitoring.snapshot_kpis(s, bare.config["FEEDLOOP"], now=now - timedelta(hours=1))
        monitoring.snapshot_kpis(s, bare.config["FEEDLOOP"], now=now)
        monitoring.scan_drift(s, bare.config["FEEDLOOP"].model_copy(update={"drift_min_samples": 5}), now=now)
        monitoring.raise_alert(s, "drift", "feature", "<b>score</b>", "red", "score drifted <script>", now=now)
        s.commit()
    client = admin(bare)
    page = client.get("/monitoring/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "&lt;b&gt;score&lt;/b&gt;" in html and "<script>" not in html.replace("<script src=", "")  # escaped
    specs = [json.loads(html_lib.unescape(c)) for c in re.findall(r"data-chart='([^']*)'", html)]
    charts = {spec["datasets"][0]["label"]: spec for spec in specs}
    conversion = charts["conversion"]
    assert conversion["datasets"][0]["data"] == [0.0, 0.0]
    assert [d["label"] for d in conversion["datasets"][1:]] == ["green limit", "red limit"]
    assert conversion["datasets"][2]["data"] == [0.1, 0.1]
    assert len(charts["ctr"]["datasets"]) == 1  # no band: reported, not judged
    ctr = html.split("<strong>ctr</strong>")[1].split("</header>")[0]
    assert "0.048 · unknown" in ctr and "(n 21)" in ctr  # 1 click in 21 shown slots
    assert "context.device" in html and "Monitoring" in html and 'href="/monitoring/jobs"' in html
    assert "KPIs, all releases" in html
    releases_nav = html.split('aria-label="releases"')[1].split("</nav>")[0]
    links = re.findall(r'href="/monitoring/\?days=7&amp;version=([^"]+)"', releases_nav)
    assert links == ["*", serving.replace("#", "%23"), old.replace("#", "%23")]  # all, then the newest release
    assert f"{serving} ●</a>" in html and f"{old} ●" not in html  # the one serving now is marked
    now_serving = client.get(f"/monitoring/?version={serving.replace('#', '%23')}&days=1").get_data(as_text=True)
    assert f'KPIs, release {serving} <span class="badge">serving</span>' in now_serving and "data-chart" in now_serving
    older = client.get(f"/monitoring/?version={old.replace('#', '%23')}").get_data(as_text=True)
    assert f"KPIs, release {old}</h2>" in older
    assert "KPIs, all releases" in client.get("/monitoring/?version=nope").get_data(as_text=True)


def test_resolving_an_alert_needs_csrf_and_is_audited(bare):
    with session(bare) as s:
        alert_id = monitoring.raise_alert(s, "kpi", "model", "v1", "red", "conversion is red").id
        s.commit()
    client = admin(bare)
    assert client.post(f"/monitoring/alerts/{alert_id}/resolve").status_code == 400  # no CSRF token
    token = csrf_token(client, "/monitoring/")
    response = client.post(f"/monitoring/alerts/{alert_id}/resolve", data={"csrf_token": token})
    assert response.status_code == 302
    assert client.post(f"/monitoring/alerts/{alert_id}/resolve", data={"csrf_token": token}).status_code == 404
    with session(bare) as s:
        assert s.get(Alert, alert_id).resolved_by.startswith("user:")
        assert s.exec(select(AuditEntry).where(AuditEntry.action == "resolve_alert")).one().subject_id == str(alert_id)
    assert "No open alerts." in client.get("/monitoring/").get_data(as_text=True)


def test_the_jobs_page_lists_every_job_and_asks_the_scheduler_to_run_one_now(bare):
    client = admin(bare)
    html = client.get("/monitoring/jobs").get_data(as_text=True)
    for name in ("reindex", "webhooks", "kpi-snapshot", "anomaly-scan", "drift-scan", "retrain"):
        assert f"<strong>{name}</strong>" in html
    assert "every 15 min (kpi_seconds)" in html and "Not run yet." in html
    token = csrf_token(client, "/monitoring/jobs")
    assert client.post("/monitoring/jobs/nope/run", data={"csrf_token": token}).status_code == 404
    page = client.post("/monitoring/jobs/kpi-snapshot/run", data={"csrf_token": token}, follow_redirects=True)
    html = page.get_data(as_text=True)
    assert "asked the scheduler to run kpi-snapshot" in html and 'class="run-status requested"' in html
    with session(bare) as s:
        run = s.exec(select(JobRun).where(JobRun.job == "kpi-snapshot")).one()  # nothing ran in the web worker
        entry = s.exec(select(AuditEntry).where(AuditEntry.action == "run_job")).one()
    assert (run.status, run.trigger) == ("requested", f"manual: {entry.actor}") and entry.actor.startswith("user:")
    assert (entry.subject_id, entry.after) == ("kpi-snapshot", {"requested_run": run.id})
    client.post("/monitoring/jobs/kpi-snapshot/run", data={"csrf_token": token})  # asked twice: still one run
    assert run_requested(bare) == 1  # the scheduler's next look
    with session(bare) as s:
        assert [(r.status, r.trigger) for r in s.exec(select(JobRun))] == [("ok", run.trigger)]
    html = client.get("/monitoring/jobs").get_data(as_text=True)
    assert "stored 9 KPI values" in html and 'class="run-status ok"' in html


def test_run_now_brings_a_later_request_forward(bare):
    with session(bare) as s:
        later = job_requests.request_run(s, "kpi-snapshot", "yellow: conversion on *", not_before=utcnow() + timedelta(minutes=4))
        s.commit()
    client = admin(bare)
    client.post("/monitoring/jobs/kpi-snapshot/run", data={"csrf_token": csrf_token(client, "/monitoring/jobs")})
    assert run_requested(bare) == 1
    with session(bare) as s:
        assert [(r.id, r.status) for r in s.exec(select(JobRun))] == [(later, "ok")]


def test_reviewers_cannot_open_monitoring(bare):
    make_user(bare, "rita@example.org", "reviewer")
    client = bare.test_client()
    sign_in(client, "rita@example.org")
    assert client.get("/monitoring/").status_code == 403 and client.get("/monitoring/jobs").status_code == 403
    assert bare.test_client().get("/monitoring/").status_code == 302  # anonymous: to sign in
