"""feedloop's service: create_app wires settings, database, errors, auth, the domain services and blueprints."""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

from flask import Flask

from app.settings import load_settings


def create_app(config: dict | None = None, *, warm: bool = False) -> Flask:
    """Build the app. `config` overrides FEEDLOOP_* settings; `warm` loads the encoder and index now."""
    from app import api, db, errors, pages, web
    from app.auth import KeyCache
    from app.services.catalogue import Catalogue
    from app.services.model_store import ModelStore
    from app.services.recommender import Recommender

    settings = load_settings(config)
    app = Flask(__name__, template_folder="pages/templates")
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
    settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    db.init_app(app)
    errors.init_app(app)
    web.init_app(app)
    app.extensions["api_keys"] = KeyCache()
    catalogue = app.extensions["catalogue"] = Catalogue(settings, app.extensions["db_engine"])
    models = app.extensions["models"] = ModelStore(settings)
    app.extensions["recommender"] = Recommender(settings, app.extensions["db_engine"], catalogue, models)
    api.register(app)
    pages.register(app)
    if warm:
        catalogue.warm_up()
    return app


def _version() -> str:
    try:
        return version("feedloop")
    except PackageNotFoundError:
        return "0+unknown"
