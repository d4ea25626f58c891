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

from bandit.simulator import Ceiling, Oracle, Popularity, TutorialVW, UniformRandom, World, ctr_curve, gap_closed, simulate
from bandit.worlds import Fraud, make_world

UPLOAD_BATCH = 1000


@dataclass
class FraudTrace:
    """How the item the fraud bot clicked most fared, per twentieth of the run: the model's score for it above its
    peers' (for an ordinary reader of its topic) at the twentieth's end, its share of what ordinary readers were
    shown, and how many clicks the bot gave in all."""

    rounds: int
    confirmed_at: int | None  # the round before which a reviewer confirmed the bot
    target: str  # the item the bot clicked most before the confirmation
    score: list[float]  # the target's score less its peers' (same topic and format)
    share: list[float]
    bot_clicks: list[float]
    bot_learned: tuple[int, int]  # how many of the bot's rewards the learner learned before and after the confirmation

    def rise_after_confirmation(self) -> float:
        """How far the score rose above its value at the confirmation, at most (0 when it never rose)."""
        if self.confirmed_at is None:
            return float("nan")
        at = max(0, int(np.searchsorted(_twentieths(self.rounds), self.confirmed_at, side="right")) - 1)
        return max(0.0, max(self.score[at + 1 :]) - self.score[at])


def _twentieths(rounds: int) -> list[int]:
    """The rounds at which the twentieths of a run end (as ctr_curve splits it)."""
    return np.cumsum([len(c) for c in np.array_split(np.arange(rounds), 20) if len(c)]).tolist()


@dataclass
class SimulationResult:
    rounds: int
    world: str
    curves: dict[str, list[float]]  # CTR per twentieth of the run
    last_quarter: dict[str, float]
    fraud: FraudTrace | None = None

    @property
    def gap_closed(self) -> float:
        return self.gap_closed_by("feedloop")

    def gap_closed_by(self, name: str) -> float:
        q = self.last_quarter
        return gap_closed(q[name], q["uniform"], q["oracle"])


def run_simulation(
    home: Path,
    rounds: int,
    users: int | None,
    items: int,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    http: bool = False,
    pace: float | None = None,
    world: str = "default",
    confirm_fraud: bool = True,
    baselines: tuple[str, ...] = ("uniform", "popularity", "tutorial-vw", "ceiling", "oracle"),
) -> SimulationResult:
    """With `http`, the rounds go through a real `feedloop serve` (gunicorn workers, the learner sidecar learning
    asynchronously), as fast as it answers or at `pace` rounds a second; otherwise through the app in this
    process, learning each reward before the next round. In the fraud world a reviewer confirms the bot a quarter
    of the way in (unless not `confirm_fraud`), in process only."""
    sim = make_world(world, items, users, seed, rounds)
    fraud = None
    if http:
        rewards = {"feedloop": _feedloop_over_http(home, sim, rounds, pace, progress)}
    else:
        feedloop, fraud = _feedloop(home, sim, rounds, seed, progress, confirm_at=rounds // 4 if confirm_fraud else None)
        rewards = {"feedloop": feedloop}
    makers = {"uniform": UniformRandom, "popularity": Popularity, "tutorial-vw": TutorialVW, "ceiling": Ceiling, "oracle": Oracle}
    for name in baselines:
        sim = make_world(world, items, users, seed, rounds)  # same visits in the same order for every policy
        policy = Oracle(sim) if name == "oracle" else makers[name](sim, seed)
        rewards[name] = simulate(sim, rounds, policy.recommend, policy.feedback)
    quarter = rounds - rounds // 4
    return SimulationResult(
        rounds=rounds,
        world=world,
        curves={name: ctr_curve(r) for name, r in rewards.items()},
        last_quarter={name: float(np.nanmean(r[quarter:])) for name, r in rewards.items()},
        fraud=fraud,
    )


def _feedloop(
    home: Path, world: World, rounds: int, seed: int, progress, confirm_at: int | None = None
) -> tuple[np.ndarray, FraudTrace | None]:
    """Through the app in this process, the learner learning each reward before the next round. In the fraud
    world, the target item's score and share are traced, and the bot is confirmed in review at `confirm_at`."""
    from app.services.learner import Learner

    app, key = _prepared(home, warm=True)
    app.extensions["recommender"].rng = np.random.default_rng(seed)
    client = app.test_client()
    learner = Learner(app.config["FEEDLOOP"], app.extensions["db_engine"])

    def post(path: str, body: dict) -> dict:
        return _ok(client.post(path, json=body, headers={"Authorization": f"Bearer {key}"}))

    if not isinstance(world, Fraud):
        result = _drive(world, rounds, post, progress, after_reward=learner.step)
        app.extensions["db_engine"].dispose()
        return result, None
    trace = _FraudWatch(world, learner, rounds, confirm_at)
    at = {confirm_at: lambda: _confirm_in_review(app, world.users[world.bot])} if confirm_at is not None else None
    result = _drive(world, rounds, post, progress, after_reward=trace.step, at=at, shown=trace.shown, clicked=trace.clicked)
    app.extensions["db_engine"].dispose()
    return result, trace.result()


class _FraudWatch:
    """Steps the learner and records per twentieth of the run what the fraud trace needs: the model's scores of
    every item for an ordinary reader with the bot's declared interest (on a mobile morning), what ordinary
    readers were shown, and what the bot clicked."""

    def __init__(self, world: Fraud, learner, rounds: int, confirm_at: int | None):
        from bandit.features import Candidate, Shared

        self.world, self.learner, self.rounds, self.bot = world, learner, rounds, world.users[world.bot]
        self.confirm_at = confirm_at if confirm_at is not None else rounds
        self.bot_learned, self.last_user = [0, 0], ""
        self.candidates = [Candidate(i.id, i.category, i.tags) for i in world.items]
        self.probe = Shared("probe", world.context(world.bot, 0))
        self.index = {i.id: n for n, i in enumerate(world.items)}
        self.ends, self.scores = _twentieths(rounds), []
        self.done = self.last_shown = 0
        self.shown_to_readers = np.zeros((len(self.ends), len(world.items)))
        self.bot_clicks = np.zeros((len(self.ends), len(world.items)))

    def shown(self, user_id: str, item_id: str) -> None:
        self.last_user, self.last_shown = user_id, self.index[item_id]
        if user_id != self.bot:
            self.shown_to_readers[len(self.scores), self.last_shown] += 1

    def clicked(self, user_id: str, reward: float) -> None:
        if user_id == self.bot:
            self.bot_clicks[len(self.scores), self.last_shown] += reward

    def step(self) -> None:
        learned = self.learner.step()
        if self.last_user == self.bot:
            self.bot_learned[self.done >= self.confirm_at] += learned
        self.done += 1
        if self.done == self.ends[len(self.scores)]:
            self.scores.append(self.learner.model.policy.predict(self.probe, self.candidates).scores)

    def result(self) -> FraudTrace:
        """The trace of the item the bot clicked most in the first quarter (before a confirmation at a quarter)."""
        quarter = max(1, len(self.ends) // 4)
        target = int(np.argmax(self.bot_clicks[:quarter].sum(axis=0)))
        item = self.world.items[target]
        peers = [
            n
            for n, i in enumerate(self.world.items)
            if i.category == item.category and i.tags[-1] == item.tags[-1] and n != target
        ]
        score = [float(s[target] - s[peers].mean()) for s in self.scores]
        share = (self.shown_to_readers[:, target] / np.maximum(self.shown_to_readers.sum(axis=1), 1)).tolist()
        confirmed_at = self.confirm_at if self.confirm_at < self.rounds else None
        clicks = self.bot_clicks.sum(axis=1).tolist()
        return FraudTrace(self.rounds, confirmed_at, item.id, score, share, clicks, (self.bot_learned[0], self.bot_learned[1]))


def _confirm_in_review(app, end_user: str) -> None:
    """What a reviewer does with a flagged click farm: a task in the excluding queue, claimed and confirmed."""
    from app import db
    from app.services.review import EXCLUDING_QUEUE, claim_next, decide, enqueue
    from app.services.users import create_user, generated_password
    from feedback.review import validate_task

    with app.app_context(), db.write_session() as s:
        reviewer = create_user(s, "reviewer@simulation.example", "reviewer", generated_password()).id
        task, _ = enqueue(s, validate_task(EXCLUDING_QUEUE, "user", end_user, {"source": "simulation"}), "simulator")
    with app.app_context(), db.write_session() as s:
        claim_next(s, EXCLUDING_QUEUE, reviewer)
    with app.app_context(), db.write_session() as s:
        decide(s, task, reviewer, "confirm", note="click farm (simulated)")


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


def _drive(
    world: World, rounds: int, post, progress, pace: float | None = None, after_reward=None, at=None, shown=None, clicked=None
) -> np.ndarray:
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
        if shown:
            shown(user_id, body["items"][0]["id"])
        return body["items"][0]["id"]

    def feedback(user_id: str, _context: dict, _item_id: str, reward: float) -> None:
        nonlocal done
        post("/api/v1/rewards", {"event_id": events[user_id], "reward": reward})
        if clicked:
            clicked(user_id, reward)
        done += 1
        if after_reward:
            after_reward()
        if progress:
            progress(1)

    return simulate(world, rounds, recommend, feedback, at=at)


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
