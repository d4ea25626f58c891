"""`feedloop simulate`: the synthetic world of bandit.simulator driving the real service through its API."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bandit.simulator import Oracle, Popularity, UniformRandom, World, ctr_curve, gap_closed, simulate

UPLOAD_BATCH = 1000


@dataclass
class SimulationResult:
    rounds: int
    curves: dict[str, list[float]]  # CTR per twentieth of the run
    last_quarter: dict[str, float]

    @property
    def gap_closed(self) -> float:
        q = self.last_quarter
        return gap_closed(q["feedloop"], q["uniform"], q["oracle"])


def run_simulation(
    home: Path,
    rounds: int,
    users: int,
    items: int,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    http: bool = False,
    pace: float | None = None,
) -> SimulationResult:
    """With `http`, the rounds go through a real `feedloop serve` (gunicorn workers, the learner sidecar learning
    asynchronously), as fast as it answers or at `pace` rounds a second; otherwise through the app in this
    process, learning each reward before the next round."""
    world = World(items, users, seed)
    if http:
        rewards = {"feedloop": _feedloop_over_http(home, world, rounds, pace, progress)}
    else:
        rewards = {"feedloop": _feedloop(home, world, rounds, seed, progress)}
    for name, make in (("uniform", UniformRandom), ("popularity", Popularity), ("oracle", Oracle)):
        world = World(items, users, seed)  # same visits in the same order for every policy
        policy = make(world) if make is Oracle else make(world, seed)
        rewards[name] = simulate(world, rounds, policy.recommend, policy.feedback)
    quarter = rounds - rounds // 4
    return SimulationResult(
        rounds=rounds,
        curves={name: ctr_curve(r) for name, r in rewards.items()},
        last_quarter={name: float(r[quarter:].mean()) for name, r in rewards.items()},
    )


def _feedloop(home: Path, world: World, rounds: int, seed: int, progress) -> np.ndarray:
    """Through the app in this process, the learner learning each reward before the next round."""
    from app.services.learner import Learner

    app, key = _prepared(home, warm=True)
    app.extensions["recommender"].rng = np.random.default_rng(seed)
    client = app.test_client()
    learner = Learner(app.config["FEEDLOOP"], app.extensions["db_engine"])

    def post(path: str, body: dict) -> dict:
        return _ok(client.post(path, json=body, headers={"Authorization": f"Bearer {key}"}))

    result = _drive(world, rounds, post, progress, after_reward=learner.step)
    app.extensions["db_engine"].dispose()
    return result


def _prepared(home: Path, warm: bool) -> tuple:
    """A migrated feedloop in HOME (SQLite) and a key for it."""
    from app import create_app, db
    from app.services.keys import create_key

    app = create_app({"home": str(home), "database_url": f"sqlite:///{home / 'simulation.db'}", "env": "test"})
    db.upgrade(app.extensions["db_engine"])
    if warm:
        app.extensions["catalogue"].warm_up()
    with app.app_context(), db.write_session() as s:
        return app, create_key(s, "simulator")[1]


def _drive(world: World, rounds: int, post, progress, pace: float | None = None, after_reward=None) -> np.ndarray:
    """Upload the world's catalogue, then play the rounds through the API: `post(path, body)` answers the JSON."""
    items = [{"id": i.id, "title": i.title, "category": i.category, "tags": list(i.tags)} for i in world.items]
    for start in range(0, len(items), UPLOAD_BATCH):
        post("/api/v1/items", {"items": items[start : start + UPLOAD_BATCH]})
    events: dict[str, str] = {}
    started, done = time.monotonic(), 0

    def recommend(user_id: str, context: dict) -> str:
        if pace:  # round r starts r/pace seconds after the first
            time.sleep(max(0.0, started + done / pace - time.monotonic()))
        body = post("/api/v1/recommendations", {"user_id": user_id, "context": context, "k": 1})
        events[user_id] = body["event_id"]
        return body["items"][0]["id"]

    def feedback(user_id: str, _context: dict, _item_id: str, reward: float) -> None:
        nonlocal done
        post("/api/v1/rewards", {"event_id": events[user_id], "reward": reward})
        done += 1
        if after_reward:
            after_reward()
        if progress:
            progress(1)

    return simulate(world, rounds, recommend, feedback)


def _ok(response) -> dict:
    if response.status_code >= 300:
        raise RuntimeError(f"{response.request.path} answered {response.status_code}: {response.get_data(as_text=True)[:500]}")
    return response.json


def plot(result: SimulationResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, curve in result.curves.items():
        x = (np.arange(len(curve)) + 0.5) * result.rounds / len(curve)
        ax.plot(x, curve, marker="o", markersize=3, label=name)
    ax.set_xlabel("round")
    ax.set_ylabel("click-through rate")
    ax.set_title(f"feedloop closes {result.gap_closed:.0%} of the random→oracle gap (last quarter)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _feedloop_over_http(home: Path, world: World, rounds: int, pace: float | None, progress) -> np.ndarray:
    """Through a real `feedloop serve`, its learner sidecar learning asynchronously."""
    app, key = _prepared(home, warm=False)
    app.extensions["db_engine"].dispose()
    env = {**os.environ, "FEEDLOOP_HOME": str(home), "FEEDLOOP_DATABASE_URL": app.config["FEEDLOOP"].database_url}
    with _Served(env) as service:
        return _drive(world, rounds, lambda path, body: service.call(path, key, body), progress, pace=pace)


class _Served:
    """`feedloop serve` on a free loopback port, for as long as the `with` block lasts."""

    def __init__(self, env: dict):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.env = env

    def __enter__(self) -> _Served:
        argv = [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("feedloop serve exited during start-up")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.__exit__()
        raise RuntimeError("feedloop serve did not become ready within 180 s")

    def __exit__(self, *_exc) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def call(self, path: str, key: str, body: dict) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{path} answered {e.code}: {e.read()[:500]!r}") from None
