"""The whole service under a realistic mix: recommendations 70%, rewards 20%, interaction events 9% and poll answers
1% of the requests, offered at RATE requests/s (open loop: each client keeps its own Poisson schedule, and a
request's time runs from when it was due, so a stall is not hidden by the clients waiting for it) for SECONDS
against `feedloop serve` (defaults: 2 workers, learner and scheduler sidecars) at ITEMS items, on SQLite and,
when FEEDLOOP_BENCH_POSTGRES_URL (or the test server of .ci/run) answers, on PostgreSQL.

Reported: requests/s answered, p50/p95/p99 per route, errors, the learner's lag (age of the oldest reward it has
not learned, sampled every second), the served model's age (from its snapshot's publication to each answer that
named it), and the writes: every accepted reward, event, poll answer and logged decision counted in the database
afterwards.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
from sqlalchemy import create_engine, func, select

from tests.bench.freshness import SnapshotWatch
from tests.bench.service import CONTEXTS, USERS, K, build_service, served, warm_history

ITEMS, SECONDS, RATE, CLIENTS = 100_000, 60.0, 100.0, 12
MIX = {"recommend": 0.70, "reward": 0.20, "events": 0.09, "poll": 0.01}
POSTGRES_URL = os.environ.get("FEEDLOOP_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/feedloop_bench")
# Poll answers come from many respondents' browsers in production: from one address, the per-address limit
# (120/minute by default) would refuse them.
SERVER_ENV = {"FEEDLOOP_PUBLIC_RATE_LIMIT": "100000/minute"}


def run() -> Iterator[dict]:
    for name, url in (("SQLite", None), ("PostgreSQL", POSTGRES_URL)):
        if url is not None and not fresh_postgres(url):
            yield {"title": f"Mix on {name}", "columns": ["skipped"], "rows": [[f"PostgreSQL at {url} does not answer"]]}
            continue
        yield from one_database(name, url)


def one_database(name: str, url: str | None) -> Iterator[dict]:
    with tempfile.TemporaryDirectory(prefix="feedloop-mix-") as home:
        app = build_service(Path(home), ITEMS, url)
        warm_history(app, np.random.default_rng(0))
        settings = app.config["FEEDLOOP"]
        app.extensions["db_engine"].dispose()
        database_url = url or f"sqlite:///{Path(home) / 'feedloop.db'}"
        os.environ.update(SERVER_ENV)
        with served(Path(home), url) as (port, key, _server):
            snapshots = SnapshotWatch(settings.snapshot_path)
            snapshots.start()
            lag = LagSampler(database_url, settings)
            lag.start()
            load = Load(port, key)
            started = time.monotonic()
            load.run()
            elapsed = time.monotonic() - started
            lag.stop()
            snapshots.stop()
            stored = count_writes(database_url, load.since)
    yield report(name, load, elapsed, lag.lags, snapshots, stored)


class Load:
    """CLIENTS threads, each a Poisson stream of RATE / CLIENTS requests/s, drawn from MIX."""

    def __init__(self, port: int, key: str):
        self.port, self.key = port, key
        self.since = time.time()
        self.times: dict[str, list[float]] = {kind: [] for kind in MIX}
        self.errors: dict[str, int] = {kind: 0 for kind in MIX}
        self.accepted = {"decisions": 0, "rewards": 0, "events": 0, "poll answers": 0}
        self.served_at: list[tuple[float, str]] = []  # (monotonic time of the answer, model version)
        self.recent: deque[tuple[str, str, list[str]]] = deque(maxlen=5_000)  # (event id, user, items)
        self._lock = threading.Lock()
        self.poll_token = ""

    def run(self) -> None:
        self.poll_token = self._post(self._connection(), "/api/v1/polls", {"question": "Useful?", "kind": "thumbs"})[1][
            "public_token"
        ]
        self.since = time.time()
        deadline = time.monotonic() + SECONDS
        threads = [threading.Thread(target=self._client, args=(n, deadline)) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def _post(self, conn, path: str, body: dict, auth: bool = True) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {self.key}"} if auth else {})
        conn.request("POST", path, json.dumps(body), headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")

    def _client(self, n: int, deadline: float) -> None:
        rng = random.Random(n)
        conn = self._connection()
        kinds, weights = list(MIX), list(MIX.values())
        due = time.monotonic()
        while True:
            due += rng.expovariate(RATE / CLIENTS)
            if due > deadline:
                break
            time.sleep(max(0.0, due - time.monotonic()))
            kind = rng.choices(kinds, weights)[0]
            try:
                ok = getattr(self, f"_{kind}")(conn, rng)
            except (OSError, http.client.HTTPException, ValueError):
                conn.close()
                conn = self._connection()
                ok = False
            with self._lock:
                if ok:
                    self.times[kind].append((time.monotonic() - due) * 1000)
                else:
                    self.errors[kind] += 1
        conn.close()

    def _recommend(self, conn, rng: random.Random) -> bool:
        user = f"user-{rng.randrange(USERS)}"
        status, body = self._post(conn, "/api/v1/recommendations", {"user_id": user, "k": K, "context": rng.choice(CONTEXTS)})
        if status != 200:
            return False
        with self._lock:
            self.accepted["decisions"] += 1
            self.served_at.append((time.monotonic(), body["model_version"]))
            self.recent.append((body["event_id"], user, [item["id"] for item in body["items"]]))
        return True

    def _take(self) -> tuple[str, str, list[str]] | None:
        with self._lock:
            return self.recent.popleft() if self.recent else None

    def _reward(self, conn, rng: random.Random) -> bool:
        decision = self._take()
        if decision is None:
            return self._recommend(conn, rng)
        event_id, _, items = decision
        reward = {"event_id": event_id, "item_id": rng.choice(items), "reward": float(rng.random() < 0.3)}
        status, body = self._post(conn, "/api/v1/rewards", reward)
        with self._lock:
            self.accepted["rewards"] += body.get("accepted", 0) if status == 202 else 0
        return status == 202

    def _events(self, conn, rng: random.Random) -> bool:
        decision = self._take()
        if decision is None:
            return self._recommend(conn, rng)
        _, user, items = decision
        rows = [{"type": "impression", "user_id": user, "item_id": item} for item in items]
        rows += [{"type": "click", "user_id": user, "item_id": rng.choice(items)}] if rng.random() < 0.3 else []
        status, body = self._post(conn, "/api/v1/events", {"events": rows})
        with self._lock:
            self.accepted["events"] += body.get("accepted", 0) if status == 202 else 0
        return status == 202 and not body.get("errors")

    def _poll(self, conn, rng: random.Random) -> bool:
        answer = {"respondent_id": f"respondent-{rng.getrandbits(48)}", "answer": rng.choice(["up", "down"])}
        status, _ = self._post(conn, f"/api/v1/polls/{self.poll_token}/responses", answer, auth=False)
        with self._lock:
            self.accepted["poll answers"] += status == 201
        return status == 201


class LagSampler:
    """The learner's lag (age of its oldest unlearned reward), every second, as /healthz reports it."""

    def __init__(self, database_url: str, settings):
        self.engine, self.settings = create_engine(database_url), settings
        self.lags: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.engine.dispose()

    def _sample(self) -> None:
        from app.services.status import learner_status

        while not self._stop.wait(1.0):
            self.lags.append(learner_status(self.engine, self.settings).lag_seconds)


def count_writes(database_url: str, since: float) -> dict[str, int]:
    """What the database holds from the load on: decisions, client rewards, interaction events, poll answers."""
    from datetime import UTC, datetime

    from app.models import Event, Interaction, PollResponse, Reward

    start = datetime.fromtimestamp(since, UTC).replace(tzinfo=None)
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return {
                "decisions": conn.execute(select(func.count()).where(Event.created_at >= start)).scalar(),
                "rewards": conn.execute(
                    select(func.count()).where(Reward.source == "client", Reward.received_at >= start)
                ).scalar(),
                "events": conn.execute(
                    select(func.count()).select_from(Interaction).where(Interaction.received_at >= start)
                ).scalar(),
                "poll answers": conn.execute(select(func.count()).select_from(PollResponse)).scalar(),
            }
    finally:
        engine.dispose()


def fresh_postgres(url: str) -> bool:
    """Drop and create the benchmark's database; False when the server does not answer."""
    base, _, database = url.rpartition("/")
    try:
        with psycopg.connect(base.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{database}"')
        return True
    except psycopg.OperationalError:
        return False


def report(name: str, load: Load, elapsed: float, lags: list[float], snapshots: SnapshotWatch, stored: dict) -> dict:
    answered = sum(len(t) for t in load.times.values())
    rows = []
    for kind, times in load.times.items():
        ms = np.array(times) if times else np.array([np.nan])
        rows.append([kind, len(times), load.errors[kind], *(f"{np.percentile(ms, q):.1f}" for q in (50, 95, 99))])
    ages = [t - snapshots.seen_at[v] for t, v in load.served_at if v in snapshots.seen_at]
    lost = {what: load.accepted[what] - stored[what] for what in load.accepted}
    return {
        "title": f"Mix on {name}: {ITEMS:,} items, {RATE:g} requests/s offered for {SECONDS:g} s",
        "columns": ["route", "answered", "errors", "p50 ms", "p95 ms", "p99 ms"],
        "rows": rows,
        "note": f"Answered {answered / elapsed:.0f} requests/s. Learner lag (s, sampled each second): median "
        f"{np.median(lags):.2f}, max {max(lags):.2f}. Served model's age at each answer (s): median "
        f"{np.median(ages):.2f}, p99 {np.percentile(ages, 99):.2f} ({len(ages)} of {len(load.served_at)} answers named a "
        f"snapshot seen published). Writes accepted / found in the database: "
        + ", ".join(f"{what} {load.accepted[what]} / {stored[what]}" for what in load.accepted)
        + (f"; LOST: {lost}" if any(lost.values()) else "; none lost."),
    }
