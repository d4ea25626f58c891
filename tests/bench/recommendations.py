"""Recommendation benchmarks at 100k items, N = 100 candidates, k = 10: in process, over HTTP under
`feedloop serve` (2 workers), the floor (FAISS search + VW predict alone), and learner throughput.

Bounded: the catalogue is random unit vectors (no encoding); each latency pass stops after
REQUESTS requests or BUDGET_S seconds; the HTTP load runs CONCURRENCY clients for at most HTTP_S seconds.
"""

from __future__ import annotations

import http.client
import json
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from tests.bench.service import CONTEXTS, USERS, K, build_service, latencies, served, summary, warm_history

ITEMS, N = 100_000, 100
HTTP_REQUESTS, HTTP_S, CONCURRENCY = 8_000, 60.0, 8
LEARN_REWARDS = 5_000
LEARN_SECONDS_MAX = 120
TARGETS = {"p50_ms": 5.0, "p99_ms": 20.0, "http_rps": 400, "floor_ratio": 2.0, "learn_per_s": 2_000}


def run() -> Iterator[dict]:
    with tempfile.TemporaryDirectory(prefix="feedloop-bench-") as home:
        app = build_service(Path(home), ITEMS)
        rec = app.extensions["recommender"]
        rng = np.random.default_rng(0)
        warm_history(app, rng)

        def one():
            from app.services.recommender import Request

            rec.recommend(Request(user_id=f"user-{rng.integers(USERS)}", context=CONTEXTS[rng.integers(4)], k=K))

        in_process = latencies(one)
        floor = latencies(floor_call(app, rng))
        rows = [
            ["in process: recommend (retrieve, rerank, log)", *summary(in_process)],
            ["floor: FAISS top-100 + VW predict", *summary(floor)],
        ]
        ratio = np.percentile(in_process, 50) / np.percentile(floor, 50)
        learn_rate = learner_throughput(app, rng)
        http = http_load(Path(home))
        app.extensions["db_engine"].dispose()
    yield {
        "title": f"Recommendation latency at {ITEMS:,} items, N = {N}, k = {K}",
        "columns": ["path", "requests", "p50 ms", "p99 ms", "mean ms"],
        "rows": rows
        + [
            [
                "HTTP, feedloop serve (2 workers), " + f"{CONCURRENCY} clients",
                http["count"],
                f"{http['p50']:.2f}",
                f"{http['p99']:.2f}",
                f"{http['mean']:.2f}",
            ]
        ],
        "note": f"HTTP throughput: {http['rps']:.0f} requests/s. In-process p50 is {ratio:.1f}× the floor. "
        f"Learner: {learn_rate:,.0f} rewards/s with {N} candidates per event. Targets: in-process p50 ≤ "
        f"{TARGETS['p50_ms']} ms, p99 ≤ {TARGETS['p99_ms']} ms; HTTP ≥ {TARGETS['http_rps']} requests/s; "
        f"p50 ≤ {TARGETS['floor_ratio']}× floor; learner ≥ {TARGETS['learn_per_s']:,} rewards/s.",
    }


def floor_call(app, rng) -> Callable[[], None]:
    from bandit.features import Candidate, Shared

    catalogue = app.extensions["catalogue"]
    vectors = list(catalogue.vectors([f"item-{n}" for n in range(200)]).values())
    shared = Shared("user-1", {"device": "mobile", "daypart": "morning"}, 9, 2)

    def call():
        hits = catalogue.index.search(vectors[rng.integers(200)], N)
        candidates = [Candidate(i, f"cat{hash(i) % 40}", ("tag1",), s, 0.0) for i, s in hits]
        app.extensions["models"].current().policy.distribution(shared, candidates)

    return call


def learner_throughput(app, rng) -> float:
    """LEARN_REWARDS rewards for as many fresh events, learned in a process of its own, as `feedloop learner` runs."""
    import multiprocessing

    from app import db
    from app.services.recommender import Request
    from app.services.rewards import RewardIn, reward_rules, store_rewards

    rec = app.extensions["recommender"]
    events = [
        rec.recommend(Request(user_id=f"user-{n % USERS}", context=CONTEXTS[n % 4], k=K)).event_id for n in range(LEARN_REWARDS)
    ]
    with db.write_session(app.extensions["db_engine"]) as s:
        store_rewards(s, reward_rules(app.config["FEEDLOOP"]), [RewardIn(e, float(rng.random() < 0.3)) for e in events])
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_learn_all, (str(app.config["FEEDLOOP"].home),))


def _learn_all(home: str) -> float:
    """The learner's own loop (settling, learning, publishing snapshots), timed until it has caught up."""
    from sqlalchemy import func, select

    from app import create_app
    from app.models import Reward
    from app.services.learner import Learner

    app = create_app({"home": home, "env": "test"})
    with app.extensions["db_engine"].connect() as conn:
        last = conn.execute(select(func.max(Reward.id))).scalar()
    learner = Learner(app.config["FEEDLOOP"], app.extensions["db_engine"])
    learner.learn_pending()  # the first batch warms the workspace and the caches
    first, stop = learner.last_reward_id, threading.Event()
    start = time.perf_counter()
    loop = threading.Thread(target=learner.run, args=(stop,))
    loop.start()
    deadline = start + LEARN_SECONDS_MAX
    while learner.last_reward_id < last and loop.is_alive() and time.perf_counter() < deadline:
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    stop.set()
    loop.join()
    return (learner.last_reward_id - first) / elapsed


def http_load(home: Path) -> dict:
    with served(home) as (port, key, _server):
        return _drive(port, key)


def _drive(port: int, key: str, seconds: float = HTTP_S) -> dict:
    times: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    per_client = HTTP_REQUESTS // CONCURRENCY

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        for i in range(per_client):
            if time.monotonic() > deadline:
                break
            body = json.dumps(
                {"user_id": f"user-{(n * per_client + i) % USERS}", "k": K, "context": {"device": "mobile", "daypart": "evening"}}
            )
            start = time.perf_counter()
            conn.request("POST", "/api/v1/recommendations", body, headers)
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                with lock:
                    times.append((time.perf_counter() - start) * 1000)
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CONCURRENCY)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    ms = np.array(times)
    return {
        "count": len(ms),
        "p50": np.percentile(ms, 50),
        "p99": np.percentile(ms, 99),
        "mean": ms.mean(),
        "rps": len(ms) / elapsed,
    }
