from flask import Flask

from app.db import write_session
from app.services.monitoring import scan_drift


def drift_scan(app: Flask) -> str:
    """Drift of the current window against the reference one, per feature; red raises an alert. (Starting a
    retrain on red waits for the retrain job.)"""
    with write_session(app.extensions["db_engine"]) as s:
        reports, alerts = scan_drift(s, app.config["FEEDLOOP"])
    red = sum(r.colour == "red" for r in reports)
    return f"compared {len(reports)} features, {red} red, raised {len(alerts)} alerts"
