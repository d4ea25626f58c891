"""The scheduled jobs, one module each. A job takes the app and returns a one-line summary for the job log."""

from collections.abc import Callable

from flask import Flask

from app.jobs.anomaly_scan import anomaly_scan
from app.jobs.drift_scan import drift_scan
from app.jobs.kpi_snapshot import kpi_snapshot
from app.jobs.prune import activity_prune
from app.jobs.reindex import reindex
from app.jobs.retrain import retrain
from app.jobs.shadow import shadow_score
from app.jobs.webhooks import webhooks

# name → (job, the setting that holds its interval in seconds)
JOBS: dict[str, tuple[Callable[[Flask], str], str]] = {
    "reindex": (reindex, "reindex_seconds"),
    "webhooks": (webhooks, "webhook_seconds"),
    "kpi-snapshot": (kpi_snapshot, "kpi_seconds"),
    "anomaly-scan": (anomaly_scan, "anomaly_seconds"),
    "drift-scan": (drift_scan, "drift_seconds"),
    "retrain": (retrain, "retrain_seconds"),
    "shadow-score": (shadow_score, "shadow_seconds"),
    "activity-prune": (activity_prune, "prune_seconds"),
}
# Jobs whose first run waits one interval instead of running at start-up: a restart does not retrain.
AFTER_AN_INTERVAL = frozenset({"retrain"})
