"""The JSON API under /api/v1; every route needs a bearer key unless its endpoint is marked public."""
from flask import Blueprint

from app.auth import require_api_key

bp = Blueprint("api", __name__, url_prefix="/api/v1")
bp.before_request(require_api_key)


def blueprint() -> Blueprint:
    """The API with its routes. They register themselves on `bp` when their modules are imported, which
    happens here rather than on importing this package, so that the domain wiring (app.catalogue) can use
    the schemas in app.api.schemas without pulling in the routes that use it."""
    from app.api import docs, items, recommendations, search  # noqa: F401

    return bp
