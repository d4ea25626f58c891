from flask import Flask

from app.db import write_session
from app.services.monitoring import snapshot_kpis


def kpi_snapshot(app: Flask) -> str:
    """Snapshot the KPIs per model version and overall; a red one raises an alert. (Taking a red model out of
    serving waits for the retrain issue's promotion rules.)"""
    with write_session(app.extensions["db_engine"]) as s:
        stored, alerts = snapshot_kpis(s, app.config["FEEDLOOP"])
    return f"stored {stored} KPI values, raised {len(alerts)} alerts"
