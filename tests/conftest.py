"""Fixtures: every database test runs on SQLite and on PostgreSQL (skipped, with the reason, when
FEEDLOOP_TEST_POSTGRES_URL is not set). Shared helpers live in tests/helpers.py."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, make_url

from app.services.learner import Learner
from tests.helpers import CATALOGUE, SteppedClock, bare_app, make_app, new_key


def _postgres_url() -> str | None:
    """The PostgreSQL database of this test process: under pytest-xdist each worker gets its own (test_gw0,
    test_gw1, ... beside the one named), created on first use, since tests reset the schema they use."""
    base, worker = os.environ.get("FEEDLOOP_TEST_POSTGRES_URL"), os.environ.get("PYTEST_XDIST_WORKER")
    if not base or not worker:
        return base
    url = make_url(base)
    name = f"{url.database}_{worker}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %(name)s", {"name": name}).first() is None:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


POSTGRES_URL = _postgres_url()


@pytest.fixture(autouse=True)
def fast_password_hashing(request, monkeypatch):
    """argon2id at its real cost takes about 60 ms a hash and the page tests sign in hundreds of times; they test
    who may do what, not the cost. tests/app/services/test_users.py keeps the real parameters."""
    if request.module.__name__.endswith("test_users"):
        return
    from argon2 import PasswordHasher

    from app.services import users

    fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(users, "HASHER", fast)
    monkeypatch.setattr(users, "_DUMMY_HASH", fast.hash("not a password"))


def reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'feedloop.db'}"
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL: set FEEDLOOP_TEST_POSTGRES_URL (as .ci/run does) to run this test on it too")
    reset_postgres(POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture
def config(tmp_path, database_url) -> dict:
    return {"home": str(tmp_path / "home"), "database_url": database_url, "env": "test"}


@pytest.fixture
def app(config):
    app = make_app(config)
    yield app
    app.extensions["db_engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def auth(app) -> dict:
    return {"Authorization": f"Bearer {new_key(app)}"}


@pytest.fixture
def catalogue(client, auth) -> list[dict]:
    response = client.post("/api/v1/items", json={"items": CATALOGUE}, headers=auth)
    assert response.status_code == 200, response.json
    return CATALOGUE


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock()


@pytest.fixture
def learner(app, clock):
    return Learner(app.config["FEEDLOOP"], app.extensions["db_engine"], clock=clock)


@pytest.fixture
def cli(config, monkeypatch):
    """Run `feedloop ...` in-process against the test's database; `ok=False` expects a failure."""
    from click.testing import CliRunner

    from app.cli import main

    monkeypatch.setenv("FEEDLOOP_HOME", config["home"])
    monkeypatch.setenv("FEEDLOOP_DATABASE_URL", config["database_url"])
    monkeypatch.setenv("FEEDLOOP_ENV", "test")
    runner = CliRunner()

    def run(*args, ok: bool = True, input: str | None = None):
        result = runner.invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output + result.stderr
        return result

    return run


@pytest.fixture
def ready(cli):
    cli("init")
    return cli


@pytest.fixture
def bare(config):
    """An app whose encoder and index are never loaded (services that need neither are tested without them)."""
    app = bare_app(config)
    yield app
    app.extensions["db_engine"].dispose()
