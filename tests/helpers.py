"""Helpers shared by the tests: a small catalogue, apps built from the factory, and API shortcuts."""

from __future__ import annotations

import atexit
import functools
import re
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, make_url
from sqlmodel import Session, select, update

from app import create_app, db
from app.models import Event, Reward, utcnow
from app.services.keys import create_key
from app.services.model_store import ModelStore
from bandit.features import Candidate, Shared


def item(item_id: str, title: str, **fields) -> dict:
    return {"id": item_id, "title": title, **fields}


CATALOGUE = [
    item(
        "pasta",
        "Spaghetti carbonara",
        description="Pasta with eggs, pecorino and guanciale",
        category="recipes",
        tags=["italian"],
    ),
    item(
        "curry",
        "Thai green curry",
        description="Coconut curry with chicken and basil",
        category="recipes",
        tags=["thai", "spicy"],
    ),
    item("pizza", "Margherita pizza", description="Tomato, mozzarella and basil on a thin crust", category="recipes"),
    item("phones", "Noise-cancelling headphones", description="Wireless over-ear headphones", category="gadgets"),
    item("drone", "Camera drone", description="Foldable drone that films in 4K", category="gadgets"),
    item("novel", "The Silent Orbit", description="A space station crew hears a signal from a dead star", category="books"),
]


def migrated(url: str) -> None:
    """Bring an empty test database to the newest schema by copying a database migrated once per test process
    (running the migrations takes about 0.3 s a test; a copy a few milliseconds). A database that has a schema
    already is only upgraded, so a second app on the same database sees the first one's data."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(_template("sqlite"), path)
            path.chmod(0o600)
        return
    engine = create_engine(url)
    with engine.connect() as conn:
        empty = not conn.exec_driver_sql("SELECT 1 FROM pg_tables WHERE schemaname = 'public' LIMIT 1").first()
    engine.dispose()
    if empty:
        name = make_url(url).database
        with _admin(url) as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{_template(url)}"')


@functools.cache
def _template(url: str) -> str:
    if url == "sqlite":
        folder = tempfile.mkdtemp(prefix="feedloop-template-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        path = Path(folder) / "feedloop.db"
        engine = db.make_engine(f"sqlite:///{path}")
        db.upgrade(engine)
        engine.dispose()
        return str(path)
    name = f"{make_url(url).database}_template"
    with _admin(url) as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = create_engine(make_url(url).set(database=name))
    db.upgrade(engine)
    engine.dispose()
    return name


@contextmanager
def _admin(url: str):
    """A connection to the server's `postgres` database, outside any transaction (CREATE DATABASE needs that)."""
    engine = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def make_app(config: dict):
    if "database_url" in config:
        migrated(config["database_url"])
    app = create_app(config)
    db.upgrade(app.extensions["db_engine"])
    app.extensions["catalogue"].warm_up()
    return app


def new_key(app, name: str = "test") -> str:
    with app.app_context(), db.write_session() as s:
        return create_key(s, name)[1]


def keyed_client(app) -> tuple:
    """A test client and the headers of a fresh key, with the test catalogue uploaded."""
    client, auth = app.test_client(), {"Authorization": f"Bearer {new_key(app)}"}
    assert client.post("/api/v1/items", json={"items": CATALOGUE}, headers=auth).status_code == 200
    return client, auth


def recommend(client, auth, **body) -> dict:
    response = client.post("/api/v1/recommendations", json={"user_id": "alice", **body}, headers=auth)
    assert response.status_code == 200, response.json
    return response.json


def events(app) -> list[Event]:
    with Session(app.extensions["db_engine"]) as s:
        return list(s.exec(select(Event)).all())


def stored_rewards(app) -> list[Reward]:
    with Session(app.extensions["db_engine"]) as s:
        return list(s.exec(select(Reward).order_by(Reward.id)).all())


def age_events(app, seconds: float) -> None:
    """Move every logged decision (and its activation) `seconds` into the past."""
    with Session(app.extensions["db_engine"]) as s:
        for e in s.exec(select(Event)).all():
            values = {"created_at": e.created_at - timedelta(seconds=seconds)}
            if e.activated_at is not None:
                values["activated_at"] = e.activated_at - timedelta(seconds=seconds)
            s.exec(update(Event).where(Event.id == e.id).values(**values))
        s.commit()


class SteppedClock:
    """A monotonic clock that moves only when told, so that cadences (publishing, snapshot checks) are stepped
    by the test instead of raced against the wall clock."""

    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def bare_app(config: dict):
    """An app on a migrated database whose encoder and index are never loaded: for services that need neither."""
    if "database_url" in config:
        migrated(config["database_url"])
    app = create_app(config)
    db.upgrade(app.extensions["db_engine"])
    return app


@dataclass(frozen=True)
class Logged:
    event_id: str
    item_ids: list[str]


def log_decision(app, k: int = 3, user_id: str = "alice", defer: bool = False, n_candidates: int = 10) -> Logged:
    """A decision logged as the recommender logs one (shared features, candidates, slots and their probabilities),
    written straight to the database: items i0 … i{k-1} shown, out of n_candidates."""
    now = utcnow()
    candidates = [Candidate(f"i{n}", "books", ("t",), 0.5, 0.0) for n in range(max(n_candidates, k))]
    event = Event(
        id=uuid.uuid4().hex,
        user_id=user_id,
        context={"device": "mobile"},
        shared=Shared.at(user_id, {"device": "mobile"}, now).to_dict(),
        candidates=[c.to_dict() for c in candidates],
        slots=[{"position": n, "item_id": f"i{n}", "probability": 1 / (len(candidates) - n)} for n in range(k)],
        segment="device=mobile",
        model_version="v0",
        deferred=defer,
        created_at=now,
    )
    with Session(app.extensions["db_engine"]) as s:
        s.add(event)
        s.commit()
        return Logged(event.id, [f"i{n}" for n in range(k)])


def stepped_models(app, clock) -> ModelStore:
    """Serve through a ModelStore whose snapshot checks move with the test's clock, not the wall clock."""
    store = app.extensions["models"] = app.extensions["recommender"].models = ModelStore(app.config["FEEDLOOP"], clock=clock)
    return store


PASSWORD = "correct horse battery"


def make_user(app, email: str, role: str, password: str = PASSWORD) -> int:
    from app.services.users import create_user

    with app.app_context(), db.write_session() as s:
        return create_user(s, email, role, password).id


def csrf_token(client, path: str = "/login") -> str:
    """The CSRF token of the client's session, as a page's form carries it."""
    page = client.get(path, follow_redirects=True).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(r'"X-CSRFToken": "([^"]+)"', page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client, email: str, password: str = PASSWORD):
    """Sign the test client in through /login, as a browser does; returns the response (302 on success)."""
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": csrf_token(client)})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response
