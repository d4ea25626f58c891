"""Engine, sessions, schema migrations and locks.

SQLite runs in WAL mode; write transactions start with BEGIN IMMEDIATE so that
concurrent writers wait on busy_timeout instead of failing with SQLITE_BUSY. On PostgreSQL,
transaction-scoped advisory locks give the logs that must be read in commit order (catalogue
changes, rewards) their ids in commit order.
"""

from __future__ import annotations

import fcntl
import json
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import orjson
from alembic import command
from alembic.config import Config
from flask import Flask, current_app, g
from sqlalchemy import Engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel, create_engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def make_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(
            url, pool_pre_ping=True, pool_size=5, max_overflow=10, json_serializer=_dumps, json_deserializer=orjson.loads
        )
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, json_serializer=_dumps, json_deserializer=orjson.loads
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # let the "begin" hook below issue BEGIN
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        # Straight to the driver: every transaction, reads included, passes here.
        conn.connection.driver_connection.execute(f"BEGIN {conn.get_execution_options().get('sqlite_begin', 'DEFERRED')}")

    return engine


def _dumps(value) -> str:
    """JSON columns hold logged decisions (100 candidates each): orjson writes them several times faster."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # integers beyond 64 bits, which only the standard library writes
        return json.dumps(value)


def init_app(app: Flask) -> None:
    url = app.config["FEEDLOOP"].database_url
    if url.startswith("sqlite:///"):
        create_private_file(Path(url.removeprefix("sqlite:///")))
    app.extensions["db_engine"] = make_engine(url)
    app.teardown_appcontext(_close_session)


def engine() -> Engine:
    return current_app.extensions["db_engine"]


def session() -> Session:
    """The request's read session (closed at teardown)."""
    if "db_session" not in g:
        g.db_session = Session(engine(), expire_on_commit=False)
    return g.db_session


@contextmanager
def write_session(bind: Engine | None = None) -> Iterator[Session]:
    """A short write transaction: committed on success, rolled back on error."""
    bound = (bind or engine()).execution_options(sqlite_begin="IMMEDIATE")
    with Session(bound, expire_on_commit=False) as s, s.begin():
        yield s


def _close_session(_exc: BaseException | None) -> None:
    s = g.pop("db_session", None)
    if s is not None:
        s.close()


def upsert(s: Session, model: type[SQLModel], rows: list[dict]) -> None:
    """Insert `rows`, or update them where their primary key exists already, in one statement."""
    if not rows:
        return
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[s.get_bind().dialect.name]
    table = model.__table__
    keys = [c.name for c in table.primary_key]
    stmt = insert(table)
    s.execute(stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in rows[0] if c not in keys}), rows)


def alembic_config(connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(bind: Engine) -> None:
    """Create or upgrade the schema to the newest migration."""
    with bind.begin() as conn:
        command.upgrade(alembic_config(conn), "head")


def schema_is_current(bind: Engine) -> bool:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with bind.connect() as conn:
        current = MigrationContext.configure(conn).get_current_heads()
        return set(current) == set(ScriptDirectory.from_config(alembic_config(conn)).get_heads())


def create_private_file(path: Path) -> None:
    """Create `path` readable by its owner alone, atomically (no moment with wider permissions); an
    existing file is left as it is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def advisory_xact_lock(s: Session, key: int) -> None:
    """Serialise writers of one log until the transaction ends (PostgreSQL; SQLite's BEGIN IMMEDIATE already
    serialises every writer)."""
    if s.get_bind().dialect.name == "postgresql":
        s.exec(text("SELECT pg_advisory_xact_lock(:k)").bindparams(k=key))


class AlreadyRunning(RuntimeError):
    pass


@contextmanager
def single_instance(role: str, home: Path, bind: Engine) -> Iterator[None]:
    """One process per role (the learner, the scheduler, one run of a job): a file lock on this host, plus a
    PostgreSQL advisory lock when several hosts share the database."""
    path = home / f"{role}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(f"another {role} is running on this host (lock {path})") from None
        if bind.dialect.name != "postgresql":
            yield
            return
        key = zlib.crc32(role.encode())
        with bind.connect() as conn:
            if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                raise AlreadyRunning(f"another {role} is running against this database")
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
