"""A feedloop to benchmark: a catalogue of random unit vectors stored as if encoded (no encoding), some history,
and `feedloop serve` started on it and waited for. Shared by the benchmarks that drive the service."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import insert

DIM, K, USERS = 384, 10, 500
CONTEXTS = [{"device": d, "daypart": p} for d in ("mobile", "desktop") for p in ("morning", "evening")]
REQUESTS, BUDGET_S = 2_000, 60.0  # an in-process latency pass stops at whichever comes first


def build_service(home: Path, items: int, database_url: str | None = None):
    """A feedloop with `items` random unit vectors stored as if they had been encoded (SQLite in HOME unless
    `database_url`)."""
    from app import create_app, db
    from app.models import CatalogueChange, Item, ItemVector, utcnow

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    app = create_app({"home": str(home), "env": "test"} | ({"database_url": database_url} if database_url else {}))
    engine = app.extensions["db_engine"]
    db.upgrade(engine)
    model_id = app.extensions["catalogue"].encoder.model_id
    rng = np.random.default_rng(1)
    now = utcnow()
    with engine.begin() as conn:
        for start in range(0, items, 10_000):
            ids = [f"item-{n}" for n in range(start, min(items, start + 10_000))]
            vectors = rng.normal(size=(len(ids), DIM)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            conn.execute(
                insert(Item),
                [
                    dict(
                        id=i,
                        title=f"Item {i}",
                        description="",
                        category=f"cat{n % 40}",
                        tags=[f"tag{n % 7}", f"tag{n % 11}"],
                        attributes={},
                        created_at=now,
                        updated_at=now,
                    )
                    for n, i in enumerate(ids, start)
                ],
            )
            conn.execute(
                insert(ItemVector),
                [
                    dict(item_id=i, model_id=model_id, text_hash="", vector=v.tobytes(), updated_at=now)
                    for i, v in zip(ids, vectors)
                ],
            )
            conn.execute(insert(CatalogueChange), [dict(item_id=i, created_at=now) for i in ids])
    app.extensions["catalogue"].warm_up()
    return app


def warm_history(app, rng) -> None:
    """Some rewards, so that users have profiles and the model and Q-values are not empty."""
    from app import db
    from app.services.learner import Learner
    from app.services.recommender import Request
    from app.services.rewards import RewardIn, reward_rules, store_rewards

    rec = app.extensions["recommender"]
    rewards = []
    for n in range(1_000):
        d = rec.recommend(Request(user_id=f"user-{n % USERS}", context=CONTEXTS[n % 4], k=K))
        rewards.append(RewardIn(d.event_id, float(rng.random() < 0.3)))
    with db.write_session(app.extensions["db_engine"]) as s:
        store_rewards(s, reward_rules(app.config["FEEDLOOP"]), rewards)
    learner = Learner(app.config["FEEDLOOP"], app.extensions["db_engine"])
    learner.step()
    learner.publish()


def latencies(call: Callable[[], None], requests: int = REQUESTS, seconds: float = BUDGET_S) -> np.ndarray:
    """Milliseconds per call, the first tenth (warming caches) left out."""
    times, deadline = [], time.monotonic() + seconds
    for _ in range(requests):
        if time.monotonic() > deadline:
            break
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return np.array(times[len(times) // 10 :])


def summary(ms: np.ndarray) -> list:
    return [len(ms), f"{np.percentile(ms, 50):.2f}", f"{np.percentile(ms, 99):.2f}", f"{ms.mean():.2f}"]


@contextmanager
def served(home: Path, database_url: str | None = None, *flags: str) -> Iterator[tuple[int, str, subprocess.Popen]]:
    """`feedloop serve` (defaults but for `flags`) on HOME, started up; yields (port, API key, server)."""
    from app.models import utcnow

    port = _free_port()
    env = {**os.environ, "FEEDLOOP_HOME": str(home), "FEEDLOOP_ENV": "test"}
    if database_url:
        env["FEEDLOOP_DATABASE_URL"] = database_url
    launched = utcnow()
    feedloop = str(Path(sys.executable).with_name("feedloop"))
    server = subprocess.Popen(
        [feedloop, "serve", "--port", str(port), *flags],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        created = subprocess.run(
            [feedloop, "keys", "create", "--name", "bench"], env=env, capture_output=True, text=True, check=True
        )
        _wait_ready(port)
        _wait_started_up(database_url or f"sqlite:///{home / 'feedloop.db'}", launched)
        yield port, created.stdout.strip().splitlines()[-1], server
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_started_up(database_url: str, launched: datetime, timeout: float = 300.0) -> None:
    """Wait for the scheduler's first reindex run, which loads the index beside the workers at start-up:
    the load test measures a running service, not one that is still starting."""
    from sqlalchemy import create_engine, select

    from app.models import JobRun

    engine = create_engine(database_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if conn.execute(
                    select(JobRun.id).where(JobRun.job == "reindex", JobRun.started_at >= launched, JobRun.status != "running")
                ).first():
                    return
            time.sleep(0.5)
    finally:
        engine.dispose()
    raise RuntimeError(f"the scheduler's first reindex run did not finish within {timeout:.0f} s")


def _wait_ready(port: int, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"feedloop serve was not ready within {timeout:.0f} s")
