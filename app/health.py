from flask import Blueprint, current_app
from sqlalchemy import text

from app import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Readiness of the database, the encoder and the index: 200 when all are ready, 503 otherwise."""
    checks = {"database": _database(), "model": _model(), "index": _index()}
    ready = all(c["status"] == "ok" for c in checks.values())
    return {"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503


def _database() -> dict:
    try:
        with db.engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok"}
    except Exception as exc:
        return {"status": "error", "message": str(exc).splitlines()[0]}


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
