"""Rate-limit counters live in the database, so every worker (and host) counts against one limit."""

from __future__ import annotations

import time

from app.rate_limits import DatabaseStorage
from tests.helpers import bare_app, csrf_token


def test_two_workers_on_one_database_share_a_limit(config):
    workers = [bare_app({**config, "login_rate_limit": "4/minute"}) for _ in range(2)]
    clients = [w.test_client() for w in workers]
    forms = [{"email": "a@example.org", "password": "not the password", "csrf_token": csrf_token(c)} for c in clients]
    codes = [clients[i % 2].post("/login", data=forms[i % 2]).status_code for i in range(6)]
    assert codes == [401, 401, 401, 401, 429, 429]  # the fifth attempt is one too many, whichever worker takes it
    for w in workers:
        w.extensions["db_engine"].dispose()


def test_a_window_counts_hits_until_it_expires_then_starts_again(bare):
    storage = DatabaseStorage(engine=bare.extensions["db_engine"])
    assert [storage.incr("k", expiry=0.3) for _ in range(3)] == [1, 2, 3]
    assert storage.get("k") == 3 and storage.get("other") == 0
    assert time.time() < storage.get_expiry("k") <= time.time() + 0.3
    time.sleep(0.35)
    assert storage.get("k") == 0
    assert storage.incr("k", expiry=60) == 1
    storage.clear("k")
    assert storage.get("k") == 0
    assert storage.check()
