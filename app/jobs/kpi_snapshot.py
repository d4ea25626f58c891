from flask import Flask

from app.db import write_session
from app.services.monitoring import snapshot_kpis


def kpi_snapshot(app: Flask) -> str:
    """Snapshot the KPIs per release and overall; red raises an alert, red on a model KPI of the serving release
    takes it out of serving and asks for a retrain, yellow asks for the next snapshot sooner."""
    with write_session(app.extensions["db_engine"]) as s:
        run = snapshot_kpis(s, app.config["FEEDLOOP"])
    done = "".join(f"; {action}" for action in run.actions)
    return f"stored {run.stored} KPI values, raised {len(run.alerts)} alerts{done}"
