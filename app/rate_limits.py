"""Flask-Limiter's counters in feedloop's own database, so that every worker and host shares one limit
without another server to run (a redis:// FEEDLOOP_RATE_LIMIT_STORAGE replaces it where Redis exists).

A storage for the `limits` library, fixed windows only: one row per key holds its hits and when they expire."""

from __future__ import annotations

import itertools
import time

from limits.storage import Storage
from sqlalchemy import Engine, case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from app.db import write_session
from app.models import RateLimit

SWEEP_EVERY = 1000  # increments between deletions of expired rows


class DatabaseStorage(Storage):
    STORAGE_SCHEME = ["feedloop+db"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, *, engine: Engine, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.engine = engine
        self._count = itertools.count(1)

    @property
    def base_exceptions(self) -> type[Exception]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[self.engine.dialect.name]
        live = RateLimit.expires_at > now
        stmt = insert(RateLimit).values(key=key, hits=amount, expires_at=now + expiry)
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"],
            set_={
                "hits": case((live, RateLimit.hits + amount), else_=amount),
                "expires_at": case((live, RateLimit.expires_at), else_=now + expiry),
            },
        ).returning(RateLimit.hits)
        with write_session(self.engine) as s:
            hits = s.execute(stmt).scalar_one()
            if next(self._count) % SWEEP_EVERY == 0:
                s.execute(delete(RateLimit).where(RateLimit.expires_at <= now))
        return hits

    def get(self, key: str) -> int:
        row = self._row(key)
        return row.hits if row is not None and row.expires_at > time.time() else 0

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return row.expires_at if row is not None else time.time()

    def check(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return True
        except SQLAlchemyError:
            return False

    def reset(self) -> int | None:
        with write_session(self.engine) as s:
            return s.execute(delete(RateLimit)).rowcount

    def clear(self, key: str) -> None:
        with write_session(self.engine) as s:
            s.execute(delete(RateLimit).where(RateLimit.key == key))

    def _row(self, key: str) -> RateLimit | None:
        with self.engine.connect() as conn:
            return conn.execute(select(RateLimit).where(RateLimit.key == key)).first()
