"""feedloop's web layer: create_app wires settings, database, auth, catalogue and blueprints."""
from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

from flask import Flask

from app.settings import load_settings


def create_app(config: dict | None = None, *, warm: bool = False) -> Flask:
    """Build the app. `config` overrides FEEDLOOP_* settings; `warm` loads the encoder and index now."""
    from app import db, errors
    from app.api import blueprint as api_blueprint
    from app.auth import KeyCache
    from app.catalogue import Catalogue
    from app.health import bp as health_bp
    from app.model_store import ModelStore
    from app.recommender import Recommender

    settings = load_settings(config)
    app = Flask(__name__)
    app.json = errors.StrictJSONProvider(app)
    app.request_class = errors.StrictJSONRequest
    app.config.update(
        FEEDLOOP=settings,
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        VERSION=_version(),
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings.home.mkdir(parents=True, exist_ok=True)
    db.init_app(app)
    errors.init_app(app)
    app.extensions["api_keys"] = KeyCache()
    catalogue = app.extensions["catalogue"] = Catalogue(settings, app.extensions["db_engine"])
    models = app.extensions["models"] = ModelStore(settings)
    app.extensions["recommender"] = Recommender(settings, app.extensions["db_engine"], catalogue, models)
    app.register_blueprint(api_blueprint())
    app.register_blueprint(health_bp)
    if warm:
        catalogue.warm_up()
    return app


def _version() -> str:
    try:
        return version("feedloop")
    except PackageNotFoundError:
        return "0+unknown"
