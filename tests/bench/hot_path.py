"""The recommendation path as one user sees it: one client, one request at a time, over HTTP against `feedloop
serve` (its defaults) with ITEMS items and rewards flowing (one reward per three recommendations), next to the
floor measured in the same run, before and after: FAISS exact top-100 plus one Vowpal Wabbit predict over 100
example lines built beforehand with feedloop's features (the served model's, from a logged decision). Then the
same traffic again while py-spy samples the workers, to show where the time goes.

Bounded: REQUESTS recommendations or SECONDS, whichever comes first; the profile pass PROFILE_S seconds.
"""

from __future__ import annotations

import http.client
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pylibvw
from sqlmodel import Session, col, select

from tests.bench import profile
from tests.bench.service import CONTEXTS, USERS, K, build_service, latencies, served, summary, warm_history

ITEMS, N = 10_000, 100
REQUESTS, SECONDS, PROFILE_S = 3_000, 120.0, 20
REWARD_EVERY = 3
TARGETS = {"floor_ratio": 3.0, "p99_ms": 10.0}


def run() -> Iterator[dict]:
    with tempfile.TemporaryDirectory(prefix="feedloop-bench-") as home:
        app = build_service(Path(home), ITEMS)
        rng = np.random.default_rng(0)
        warm_history(app, rng)
        floor = floor_call(app, rng)
        before = latencies(floor)
        with served(Path(home)) as (port, key, server):
            http = drive(port, key, rng, REQUESTS, SECONDS)
            spies = profile.spy(profile.workers(server.pid), PROFILE_S, Path(home) / "profile")
            drive(port, key, rng, REQUESTS, PROFILE_S)
            for spy in spies or []:
                spy.wait(timeout=60)
            by_package, by_function = profile.breakdown(sorted(Path(home).glob("profile.*")))
        after = latencies(floor)
        app.extensions["db_engine"].dispose()
    floor_ms = np.concatenate([before, after])
    recommend = np.array(http["recommend"])
    ratio = np.percentile(recommend, 50) / np.percentile(floor_ms, 50)
    yield {
        "title": f"One client over HTTP at {ITEMS:,} items, rewards flowing (N = {N}, k = {K})",
        "columns": ["path", "requests", "p50 ms", "p99 ms", "mean ms"],
        "rows": [
            ["HTTP: POST /api/v1/recommendations", *summary(recommend)],
            ["  of which in the service (its latency_ms)", *summary(np.array(http["in service"]))],
            ["HTTP: POST /api/v1/rewards (one per three)", *summary(np.array(http["reward"]))],
            ["floor: FAISS exact top-100 + VW predict over 100 lines (before)", *summary(before)],
            ["floor (after)", *summary(after)],
        ],
        "note": f"p50 is {ratio:.1f}x the floor (both floor passes together); errors: {http['errors']}. Targets: "
        f"p50 at most {TARGETS['floor_ratio']}x the floor, p99 at most {TARGETS['p99_ms']} ms.",
    }
    if by_package:
        title = f"Where the workers' time goes ({PROFILE_S} s of the same traffic, py-spy, innermost Python frame)"
        yield {"title": title + ", by package", "columns": ["package or module", "share of samples"], "rows": by_package}
        yield {"title": title + ", by function", "columns": ["function", "share of samples"], "rows": by_function}


def floor_call(app, rng) -> Callable[[], None]:
    import faiss

    from app.models import Event
    from bandit.features import Candidate, Shared, example

    catalogue = app.extensions["catalogue"]
    ids = [f"item-{n}" for n in range(ITEMS)]
    stored = catalogue.vectors(ids)
    matrix = np.stack([stored[i] for i in ids])
    exact = faiss.IndexFlatIP(matrix.shape[1])
    exact.add(matrix)
    with Session(app.extensions["db_engine"]) as s:
        event = s.exec(select(Event).order_by(col(Event.created_at).desc())).first()
    lines = example(Shared.from_dict(event.shared), [Candidate.from_dict(c) for c in event.candidates])
    policy = app.extensions["models"].current().policy

    def call() -> None:
        exact.search(matrix[rng.integers(ITEMS)][None, :], N)
        examples = policy._parse(lines)
        pylibvw.vw.predict_multi(policy._vw, examples)
        pylibvw.vw._finish_example_multi_ex(policy._vw, examples)

    return call


def drive(port: int, key: str, rng: np.random.Generator, requests: int, seconds: float) -> dict:
    """One client: recommendations one after another, and after every REWARD_EVERY-th a reward for it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    times: dict = {"recommend": [], "in service": [], "reward": [], "errors": 0}
    deadline = time.monotonic() + seconds

    def post(path: str, body: dict, kind: str) -> bytes | None:
        start = time.perf_counter()
        conn.request("POST", path, json.dumps(body), headers)
        response = conn.getresponse()
        data = response.read()
        if response.status >= 300:
            times["errors"] += 1
            return None
        times[kind].append((time.perf_counter() - start) * 1000)
        return data

    for n in range(requests):
        if time.monotonic() > deadline:
            break
        body = {"user_id": f"user-{rng.integers(USERS)}", "k": K, "context": CONTEXTS[rng.integers(len(CONTEXTS))]}
        answer = post("/api/v1/recommendations", body, "recommend")
        if answer is None:
            continue
        decision = json.loads(answer)
        times["in service"].append(decision["latency_ms"])
        if n % REWARD_EVERY == REWARD_EVERY - 1:
            post("/api/v1/rewards", {"event_id": decision["event_id"], "reward": float(rng.random() < 0.3)}, "reward")
    conn.close()
    for kind in ("recommend", "in service", "reward"):
        times[kind] = times[kind][len(times[kind]) // 10 :]  # the first tenth warms the workers
    return times
