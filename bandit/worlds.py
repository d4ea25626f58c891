"""The simulator's other worlds, each a way production differs from the default world (bandit.simulator):
tastes that flip with a context field, tastes that drift, many users seen only a few times, and a click-fraud
bot among the readers. `make_world` builds any of them by name."""

from __future__ import annotations

import numpy as np

from bandit.simulator import CONTEXTS, World

WEEK = ("weekday", "weekend")
# The topics people turn to on weekdays (the others are the weekend's): out of season a topic loses WEEK_PENALTY logits.
WEEKDAY_TOPICS = ("cooking", "music", "science", "money")
WEEK_PENALTY = 2.0


class ContextFlip(World):
    """Tastes that flip with the week: on weekdays the weekend topics (travel, sport, film, garden) lose appeal,
    at weekends the weekday ones do, so a user whose favourite and second topics fall on either side prefers
    another topic at the weekend. The app sends the part of the week in the context, as `week`."""

    situations = [{**c, "week": w} for w in WEEK for c in CONTEXTS]

    def __init__(self, n_items: int = 1000, n_users: int = 200, seed: int = 0):
        super().__init__(n_items, n_users, seed)
        weekday = np.isin(self.topics, WEEKDAY_TOPICS)
        self._week_bonus = np.where(np.array([weekday, ~weekday]), 0.0, -WEEK_PENALTY)[:, self._topic]

    def next_visit(self) -> tuple[int, int]:
        user, situation = super().next_visit()  # a device and time of day, then the part of the week
        weekend = self._rng.random() < 2 / 7
        return user, situation + len(CONTEXTS) * int(weekend)

    def taste_logits(self, user: int, situation: int) -> np.ndarray:
        return super().taste_logits(user, situation) + self._week_bonus[situation // len(CONTEXTS)]


class Drift(World):
    """Tastes that drift: after `drift_at` visits, half the users take up a new favourite topic and lose interest in
    the old one (their declared interest stays what they said at sign-up)."""

    def __init__(self, n_items: int = 1000, n_users: int = 200, seed: int = 0, drift_at: int = 10_000):
        super().__init__(n_items, n_users, seed)
        rng = np.random.default_rng(seed + 2)
        self.drift_at = drift_at
        self.drifting = rng.random(n_users) < 0.5
        after = self._taste.copy()
        for u in np.flatnonzero(self.drifting):
            new = rng.choice(np.flatnonzero(after[u] == 0))
            after[u, self._kind[u]], after[u, new] = 0.0, 3.0
        self._after = after

    def tastes(self) -> np.ndarray:
        return self._after if self.visits > self.drift_at else self._taste


class Fraud(World):
    """A click-fraud bot among the readers: `bot_share` of the visits are its own, and it clicks 90% of whatever
    it is shown, so the items it is shown most (its greedy picks) look like hits. Its clicks are not measured."""

    def __init__(self, n_items: int = 1000, n_users: int = 200, seed: int = 0, bot_share: float = 0.1):
        super().__init__(n_items, n_users, seed)
        self.bot = len(self.users)
        self.users.append("bot-0")
        self.bot_share = bot_share
        self._declared = np.append(self._declared, self._rng.integers(len(self.topics)))
        self._bot_clicks = np.full(n_items, 0.9)

    def next_visit(self) -> tuple[int, int]:
        self.visits += 1
        user = self.bot if self._rng.random() < self.bot_share else int(self._rng.integers(self.bot))
        return user, int(self._rng.integers(len(self.situations)))

    def click_probabilities(self, user: int, situation: int) -> np.ndarray:
        return self._bot_clicks if user == self.bot else super().click_probabilities(user, situation)

    def measured(self, user: int) -> bool:
        return user != self.bot


WORLDS = ("default", "contextflip", "drift", "sparse", "fraud")
USERS = {"sparse": 5000}  # users by default: 200, or 5,000 seen about four times each in 20,000 rounds


def make_world(name: str, n_items: int, n_users: int | None, seed: int, rounds: int) -> World:
    users = n_users or USERS.get(name, 200)
    if name == "default" or name == "sparse":
        return World(n_items, users, seed)
    if name == "contextflip":
        return ContextFlip(n_items, users, seed)
    if name == "drift":
        return Drift(n_items, users, seed, drift_at=rounds // 2)
    if name == "fraud":
        return Fraud(n_items, users, seed)
    raise ValueError(f"unknown world {name!r}; choose one of {', '.join(WORLDS)}")
