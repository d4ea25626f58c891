import logging
from dataclasses import asdict

from flask import current_app
from sqlalchemy import text

from app import db
from app.api import public
from app.services.status import learner_status

bp = public("health", __name__, url_prefix="")
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz():
    """Readiness of the database, the encoder, the index and the learner: 200 when all are ready, 503 otherwise.
    Nothing here names hosts, users or errors: anyone may ask."""
    database = _database()
    checks = {"database": database, "model": _model(), "index": _index()}
    if database["status"] == "ok":
        checks["learner"] = _learner()
    ready = all(c["status"] in ("ok", "not_started") for c in checks.values())
    return {"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503


def _database() -> dict:
    try:
        with db.engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok"}
    except Exception as exc:
        log.warning("health check: database unavailable (%s)", type(exc).__name__)
        return {"status": "down"}


def _model() -> dict:
    catalogue = current_app.extensions["catalogue"]
    if not catalogue.model_ready:
        return {"status": "loading"}
    return {"status": "ok", "model_id": catalogue.encoder.model_id, "dim": catalogue.encoder.dim}


def _index() -> dict:
    index = current_app.extensions["catalogue"].index
    if index is None:
        return {"status": "loading"}
    return {"status": "ok", "items": len(index), "kind": index.kind}


def _learner() -> dict:
    try:
        status = learner_status(db.engine(), current_app.config["FEEDLOOP"])
    except Exception as exc:  # the schema is not there yet, say
        log.warning("health check: learner status unavailable (%s)", type(exc).__name__)
        return {"status": "unavailable"}
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(status).items()}
