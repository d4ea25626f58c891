from flask import Flask

from app.db import write_session
from app.services.monitoring import scan_anomalies


def anomaly_scan(app: Flask) -> str:
    """Engagement drops (alerts, and review tasks for items) and fraud-like users (review tasks)."""
    with write_session(app.extensions["db_engine"]) as s:
        found = scan_anomalies(s, app.config["FEEDLOOP"])
    return (
        f"{len(found.drops)} engagement drops, {len(found.flagged)} of {found.users} users flagged, "
        f"raised {len(found.alerts)} alerts"
    )
