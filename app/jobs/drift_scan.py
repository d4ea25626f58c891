from flask import Flask

from app.db import write_session
from app.services.monitoring import scan_drift


def drift_scan(app: Flask) -> str:
    """Drift of the current window against the reference one, per feature; a feature turning red raises an alert
    and asks for a retrain."""
    with write_session(app.extensions["db_engine"]) as s:
        reports, alerts, retrain = scan_drift(s, app.config["FEEDLOOP"])
    red = sum(r.colour == "red" for r in reports)
    asked = f"; retrain requested (job run {retrain})" if retrain else ""
    return f"compared {len(reports)} features, {red} red, raised {len(alerts)} alerts{asked}"
