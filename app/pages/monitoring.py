"""`/monitoring`: the KPIs over time with their bands, drift per feature and the open alerts (resolved here,
audited); `/monitoring/jobs`: every scheduled job with its schedule and recent runs, and a button that asks the
scheduler to run one now (a requested run, as a red drift asks for a retrain): a job such as retrain searches a
grid for minutes, which a web worker should spend serving, and a recycled worker would kill it mid-run."""

from __future__ import annotations

from datetime import timedelta

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from app import db
from app.jobs import JOBS
from app.models import JobRun, utcnow
from app.pages import ADMINS, pages
from app.services import audit, job_requests, monitoring
from app.web import actor
from feedback.kpis import Band

bp = pages("monitoring", __name__, roles=ADMINS, url_prefix="/monitoring")

HISTORY_DAYS = (1, 7, 30)
COLOURS = {"green": "#2e9e5b", "yellow": "#d9a21b", "red": "#d0342c"}


def _chart(series: monitoring.Series) -> dict:
    labels = [at.strftime("%m-%d %H:%M") for at in series.at]
    datasets = [
        {"label": series.name, "data": series.values, "borderColor": "#1095c1", "backgroundColor": "#1095c1", "spanGaps": True}
    ]
    if isinstance(series.band, Band):
        for name, limit in (("green", series.band.green), ("red", series.band.red)):
            datasets.append(
                {
                    "label": f"{name} limit",
                    "data": [limit] * len(labels),
                    "borderColor": COLOURS[name],
                    "borderDash": [6, 4],
                    "pointRadius": 0,
                }
            )
    return {"type": "line", "labels": labels, "datasets": datasets}


@bp.get("/")
def index():
    days = request.args.get("days", "7")
    days = int(days) if days.isdigit() and int(days) in HISTORY_DAYS else 7
    s = db.session()
    settings = current_app.config["FEEDLOOP"]
    since = utcnow() - timedelta(days=days)
    versions = monitoring.kpi_versions(s, since)
    version = request.args.get("version", monitoring.ALL)
    version = version if version in versions else monitoring.ALL
    series = monitoring.kpi_series(s, settings, since, version)
    serving = monitoring.serving_release(s, since, utcnow())
    return render_template(
        "monitoring/index.html",
        kpis=[(x, _chart(x)) for x in series],
        descriptions=monitoring.DESCRIPTIONS,
        drift=monitoring.latest_drift(s),
        alerts=monitoring.open_alerts(s),
        days=days,
        history_days=HISTORY_DAYS,
        versions=versions,
        version=version,
        serving=serving,
        everything=monitoring.ALL,
    )


@bp.post("/alerts/<int:alert_id>/resolve")
def resolve(alert_id: int):
    with db.write_session() as s:
        alert = monitoring.resolve_alert(s, alert_id, actor())
    if alert is None:
        abort(404)
    flash(f"Alert {alert_id} resolved.", "success")
    return redirect(url_for("monitoring.index"))


@bp.get("/jobs")
def jobs():
    settings = current_app.config["FEEDLOOP"]
    s = db.session()
    listing = [
        {"name": name, "every": getattr(settings, interval), "setting": interval, "runs": monitoring.recent_runs(s, name)}
        for name, (_, interval) in JOBS.items()
    ]
    return render_template("monitoring/jobs.html", jobs=listing)


@bp.post("/jobs/<name>/run")
def run_now(name: str):
    """Ask the scheduler for a run (it takes requests up within seconds); the run shows below as requested, then
    running. A request already waiting is the one run, brought forward if it was asked for later."""
    if name not in JOBS:
        abort(404)
    with db.write_session() as s:
        run = s.get(JobRun, job_requests.request_run(s, name, f"manual: {actor()}"))
        run.started_at = min(run.started_at, utcnow())
        audit.record(s, actor(), "run_job", "job", name, after={"requested_run": run.id})
    flash(f"asked the scheduler to run {name}; its run appears below (refresh to follow it).", "success")
    return redirect(url_for("monitoring.jobs"))
