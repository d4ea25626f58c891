"""Fixtures: every database test runs on SQLite and, when FEEDLOOP_TEST_POSTGRES_URL is set, on PostgreSQL."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine

from app import create_app, db
from app.auth import create_key

POSTGRES_URL = os.environ.get("FEEDLOOP_TEST_POSTGRES_URL")
DATABASES = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


def reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'feedloop.db'}"
    reset_postgres(POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture
def config(tmp_path, database_url) -> dict:
    return {"home": str(tmp_path / "home"), "database_url": database_url, "env": "test"}


def make_app(config: dict):
    app = create_app(config)
    db.upgrade(app.extensions["db_engine"])
    app.extensions["catalogue"].warm_up()
    return app


@pytest.fixture
def app(config):
    app = make_app(config)
    yield app
    app.extensions["db_engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


def new_key(app, name: str = "test") -> str:
    with app.app_context(), db.write_session() as s:
        return create_key(s, name)[1]


@pytest.fixture
def auth(app) -> dict:
    return {"Authorization": f"Bearer {new_key(app)}"}


def item(item_id: str, title: str, **fields) -> dict:
    return {"id": item_id, "title": title, **fields}


CATALOGUE = [
    item("pasta", "Spaghetti carbonara", description="Pasta with eggs, pecorino and guanciale", category="recipes", tags=["italian"]),
    item("curry", "Thai green curry", description="Coconut curry with chicken and basil", category="recipes", tags=["thai", "spicy"]),
    item("pizza", "Margherita pizza", description="Tomato, mozzarella and basil on a thin crust", category="recipes"),
    item("phones", "Noise-cancelling headphones", description="Wireless over-ear headphones", category="gadgets"),
    item("drone", "Camera drone", description="Foldable drone that films in 4K", category="gadgets"),
    item("novel", "The Silent Orbit", description="A space station crew hears a signal from a dead star", category="books"),
]


@pytest.fixture
def catalogue(client, auth) -> list[dict]:
    response = client.post("/api/v1/items", json={"items": CATALOGUE}, headers=auth)
    assert response.status_code == 200, response.json
    return CATALOGUE
