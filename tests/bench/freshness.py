"""Freshness: the time from a reward's 202 to the first recommendation served by a model that learned it, over
HTTP against `feedloop serve` (2 workers, learner sidecar) at 100k items, while the recommendation benchmark's
load (8 clients) runs beside it.

A probe asks for a recommendation for a user of its own, posts a reward for it, and then asks again until an
answer names a model version that has learned that reward. Which reward each version learned last is read from
the snapshots the learner publishes (their manifest records it), watched as they appear. Bounded: PROBES probes,
each given PROBE_TIMEOUT_S, all within the load's LOAD_S seconds.
"""

from __future__ import annotations

import http.client
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, func, select

from tests.bench.recommendations import ITEMS, _drive
from tests.bench.service import USERS, build_service, served, warm_history

PROBES, PROBE_TIMEOUT_S, LOAD_S = 120, 10.0, 90.0
TARGET_P99_S = 1.0


def run() -> Iterator[dict]:
    with tempfile.TemporaryDirectory(prefix="feedloop-fresh-") as home:
        app = build_service(Path(home), ITEMS)
        warm_history(app, np.random.default_rng(0))
        snapshot_path = app.config["FEEDLOOP"].snapshot_path
        app.extensions["db_engine"].dispose()
        with served(Path(home)) as (port, key, _server):
            learned = SnapshotWatch(snapshot_path)
            learned.start()
            load = threading.Thread(target=_drive, args=(port, key, LOAD_S))
            load.start()
            try:
                seconds, missed = probe(port, key, Path(home), learned)
            finally:
                load.join()
                learned.stop()
    ms = np.array(seconds) * 1000
    yield {
        "title": f"Freshness at {ITEMS:,} items: reward 202 → first answer from a model that learned it",
        "columns": ["probes", "p50 ms", "p90 ms", "p99 ms", "max ms", "not fresh within 10 s"],
        "rows": [[len(ms), *(f"{np.percentile(ms, q):.0f}" for q in (50, 90, 99)), f"{ms.max():.0f}", missed]],
        "note": f"HTTP, `feedloop serve` (2 workers, learner sidecar, defaults: publish every 0.5 s, workers look for a "
        f"new snapshot every 0.1 s), 8 clients asking for recommendations throughout. Target: p99 ≤ {TARGET_P99_S:g} s.",
    }


class SnapshotWatch:
    """version → the last reward id it learned, and when it was first seen (time.monotonic()), read from each
    snapshot the learner publishes."""

    def __init__(self, path: Path):
        self.path, self.versions, self.seen_at, self._stop = path, {}, {}, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        from bandit.snapshots import Snapshot, SnapshotError, file_stamp

        seen = None
        while not self._stop.wait(0.002):
            stamp = file_stamp(self.path)
            if stamp is None or stamp == seen:
                continue
            try:
                snapshot = Snapshot.from_bytes(self.path.read_bytes())
            except (OSError, SnapshotError):
                continue  # replaced while read: the next look reads the newer one
            seen = stamp
            self.versions.setdefault(snapshot.version, int(snapshot.meta.get("last_reward_id", 0)))
            self.seen_at.setdefault(snapshot.version, time.monotonic())


def probe(port: int, key: str, home: Path, learned: SnapshotWatch) -> tuple[list[float], int]:
    from app.models import Reward

    engine = create_engine(f"sqlite:///{home / 'feedloop.db'}")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def call(path: str, body: dict) -> dict:
        conn.request("POST", path, json.dumps(body), headers)
        response = conn.getresponse()
        payload = json.loads(response.read())
        if response.status >= 300:
            raise RuntimeError(f"{path} answered {response.status}: {payload}")
        return payload

    seconds, missed = [], 0
    deadline = time.monotonic() + LOAD_S - PROBE_TIMEOUT_S
    for n in range(PROBES):
        if time.monotonic() > deadline:
            break
        user = f"probe-{n % USERS}"
        event = call("/api/v1/recommendations", {"user_id": user, "k": 10})["event_id"]
        call("/api/v1/rewards", {"event_id": event, "reward": 1.0})
        accepted = time.perf_counter()
        with engine.connect() as db:
            reward_id = db.execute(select(func.max(Reward.id)).where(Reward.event_id == event)).scalar()
        while True:
            version = call("/api/v1/recommendations", {"user_id": user, "k": 10})["model_version"]
            if learned.versions.get(version, -1) >= reward_id:
                seconds.append(time.perf_counter() - accepted)
                break
            if time.perf_counter() - accepted > PROBE_TIMEOUT_S:
                missed += 1
                break
        time.sleep(0.2)
    conn.close()
    engine.dispose()
    return seconds, missed
