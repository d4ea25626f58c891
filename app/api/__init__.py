"""The JSON API under /api/v1; every route needs a bearer key unless its endpoint is marked public."""
from flask import Blueprint

from app.auth import require_api_key

bp = Blueprint("api", __name__, url_prefix="/api/v1")
bp.before_request(require_api_key)

from app.api import docs, items, recommendations, search  # noqa: E402,F401  (routes register on bp)
