"""One process per role (the learner, later the scheduler): a file lock on this host, plus a
PostgreSQL advisory lock when several hosts share the database."""
from __future__ import annotations

import fcntl
import zlib
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import Engine, text

from app.settings import Settings


class AlreadyRunning(RuntimeError):
    pass


@contextmanager
def single_instance(role: str, settings: Settings, engine: Engine) -> Iterator[None]:
    path = settings.home / f"{role}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(f"another {role} is running on this host (lock {path})") from None
        if engine.dialect.name != "postgresql":
            yield
            return
        key = zlib.crc32(role.encode())
        with engine.connect() as conn:
            if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                raise AlreadyRunning(f"another {role} is running against this database")
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
