"""A synthetic world to watch the loop learn: items in topics, users with hidden tastes that depend
on the context, and the reference policies (uniform random, popularity, plain Vowpal Wabbit as its tutorial
sets it up, oracle). The other worlds are in bandit.worlds.

The world knows nothing of feedloop: `simulate` drives any recommender through two callables,
so the same world measures the real service (through its API) and the baselines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pylibvw
import vowpalwabbit

from bandit.features import token

TOPICS = {
    "cooking": ["pasta", "curry", "bread", "soup", "salad", "grill", "dessert", "spices", "noodles", "roast"],
    "travel": ["beach", "mountain", "city", "island", "hostel", "train", "museum", "road trip", "harbour", "desert"],
    "sport": ["football", "tennis", "running", "cycling", "swimming", "boxing", "climbing", "rowing", "golf", "skiing"],
    "music": ["jazz", "guitar", "piano", "orchestra", "vinyl", "festival", "choir", "drums", "opera", "synth"],
    "science": ["physics", "genome", "telescope", "chemistry", "fossils", "robotics", "climate", "quantum", "neurons", "volcano"],
    "film": ["thriller", "comedy", "documentary", "western", "animation", "noir", "horror", "romance", "heist", "sci-fi"],
    "garden": ["roses", "compost", "tomatoes", "orchids", "hedges", "seedlings", "pond", "herbs", "lawn", "greenhouse"],
    "money": ["savings", "stocks", "mortgage", "budget", "pension", "taxes", "crypto", "insurance", "loans", "bonds"],
}
STYLES = ["beginner's guide to", "the best", "a short history of", "weekend", "advanced", "budget", "classic", "modern"]
FORMATS = ["quick read", "long read", "video", "podcast"]
QUALITY_SD = 0.3  # items' own appeal, a logit of normal(0, QUALITY_SD) each
CONTEXTS = [{"device": d, "daypart": p} for d in ("mobile", "desktop") for p in ("morning", "evening")]
# Which format each context favours (logit bonus), the same for everyone: commuters on mobile in the
# morning listen and skim, people at a desk in the evening watch and read at length.
FORMAT_BONUS = np.array(
    [
        [1.0, -1.0, -0.5, 1.5],  # mobile, morning
        [0.5, -0.5, 1.5, 0.0],  # mobile, evening
        [1.0, 0.5, -0.5, -0.5],  # desktop, morning
        [-0.5, 1.5, 1.0, -1.0],  # desktop, evening
    ]
)


@dataclass(frozen=True)
class SimItem:
    id: str
    title: str
    category: str
    tags: tuple[str, ...]


class World:
    """The default world. A visit is (user, situation): the situation indexes `situations`, what the app can see
    of the moment; `click_probabilities` is what the oracle knows and the app does not."""

    situations = CONTEXTS

    def __init__(self, n_items: int = 1000, n_users: int = 200, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.topics = list(TOPICS)
        self.items = [self._make_item(n, rng) for n in range(n_items)]
        self.users = [f"user-{u}" for u in range(n_users)]
        n_topics = len(self.topics)
        # Hidden tastes in logit space: each user loves the topic of their kind and likes one more of their own.
        self._kind = rng.integers(n_topics, size=n_users)
        taste = np.zeros((n_users, n_topics))
        for u in range(n_users):
            taste[u, rng.choice(np.delete(np.arange(n_topics), self._kind[u]))] = 1.5
            taste[u, self._kind[u]] = 3.0
        self._taste = taste
        # What the app knows of a user (an interest picked at sign-up): right for 80% of them.
        wrong = rng.random(n_users) < 0.2
        self._declared = np.where(wrong, rng.integers(n_topics, size=n_users), self._kind)
        self._quality = rng.normal(0.0, QUALITY_SD, size=n_items)
        self._topic = np.array([self.topics.index(i.category) for i in self.items])
        self._format = np.array([FORMATS.index(i.tags[-1]) for i in self.items])
        self._rng = np.random.default_rng(seed + 1)
        self.visits = 0  # visits so far: worlds whose tastes change with time read it

    def _make_item(self, n: int, rng: np.random.Generator) -> SimItem:
        topic = self.topics[n % len(self.topics)]
        words = rng.choice(TOPICS[topic], size=2, replace=False)
        fmt = FORMATS[(n // len(self.topics)) % len(FORMATS)]
        title = f"{fmt.capitalize()}: {rng.choice(STYLES)} {words[0]} and {words[1]}"
        return SimItem(f"sim-{n}", title, topic, (str(words[0]), str(words[1]), fmt))

    def click_probabilities(self, user: int, situation: int) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.taste_logits(user, situation) + self._quality)))

    def tastes(self) -> np.ndarray:
        """Each user's hidden taste for each topic (logits), as they are now."""
        return self._taste

    def taste_logits(self, user: int, situation: int) -> np.ndarray:
        """Each item's click logit for the user in the situation, all but the item's own quality."""
        return -4.0 + self.tastes()[user][self._topic] + FORMAT_BONUS[situation % len(CONTEXTS)][self._format]

    def next_visit(self) -> tuple[int, int]:
        self.visits += 1
        return int(self._rng.integers(len(self.users))), int(self._rng.integers(len(CONTEXTS)))

    def context(self, user: int, situation: int) -> dict:
        """What the app sends with a request: device and time of day, and the user's declared interest."""
        return {**self.situations[situation], "interest": self.topics[self._declared[user]]}

    def situation(self, context: dict) -> int:
        """The situation a request's context was sent in (for the oracle)."""
        return self.situations.index({k: context[k] for k in self.situations[0]})

    def measured(self, user: int) -> bool:
        """Whether the user's clicks count in the click-through rate (a bot's do not)."""
        return True

    def click(self, p: float) -> float:
        return float(self._rng.random() < p)


Recommend = Callable[[str, dict], str]  # (user id, context) → item id shown
Feedback = Callable[[str, dict, str, float], None]  # (user id, context, item id, reward)


def simulate(
    world: World, rounds: int, recommend: Recommend, feedback: Feedback, at: dict[int, Callable[[], None]] | None = None
) -> np.ndarray:
    """Run `rounds` visits; return the reward of each round, NaN for a visit that is not measured (a bot's).
    `at` maps a round to what happens just before it (a reviewer confirming a fraud, say)."""
    index = {item.id: n for n, item in enumerate(world.items)}
    rewards = np.zeros(rounds)
    for r in range(rounds):
        if at and r in at:
            at[r]()
        user, situation = world.next_visit()
        context = world.context(user, situation)
        item_id = recommend(world.users[user], context)
        reward = world.click(world.click_probabilities(user, situation)[index[item_id]])
        feedback(world.users[user], context, item_id, reward)
        rewards[r] = reward if world.measured(user) else np.nan
    return rewards


class Oracle:
    """Knows the hidden tastes: always shows the item most likely to be clicked."""

    def __init__(self, world: World):
        self.world = world
        self._users = {u: n for n, u in enumerate(world.users)}

    def recommend(self, user_id: str, context: dict) -> str:
        p = self.world.click_probabilities(self._users[user_id], self.world.situation(context))
        return self.world.items[int(np.argmax(p))].id

    def feedback(self, *_):
        pass


class Ceiling:
    """What a run of this length allows at best: told every user's tastes as they are now and what each situation
    favours (the whole click logit but the item's quality), it learns the items' quality from its own clicks by
    Thompson sampling on an exact grid posterior with the world's prior, normal(0, QUALITY_SD), pooling every
    impression of an item. A policy that must learn the tastes too cannot expect to beat it."""

    GRID = np.linspace(-5 * QUALITY_SD, 5 * QUALITY_SD, 61)
    SHORTLIST = 120  # items with the best logits but quality: the best item is among them by a wide margin

    def __init__(self, world: World, seed: int = 0):
        self.world = world
        self._users = {u: n for n, u in enumerate(world.users)}
        self.rng = np.random.default_rng(seed)
        self._log_posterior = np.tile(-0.5 * (self.GRID / QUALITY_SD) ** 2, (len(world.items), 1))
        self._index = {item.id: n for n, item in enumerate(world.items)}
        self._shown: dict[str, float] = {}  # user → the taste logit of what they were shown

    def recommend(self, user_id: str, context: dict) -> str:
        user = self._users[user_id]
        if not self.world.measured(user):  # told who the bot is, too: it learns nothing from its clicks
            return self.world.items[0].id
        logits = self.world.taste_logits(user, self.world.situation(context))
        shortlist = np.argsort(-logits)[: self.SHORTLIST]
        posterior = np.exp(self._log_posterior[shortlist] - self._log_posterior[shortlist].max(axis=1, keepdims=True))
        posterior /= posterior.sum(axis=1, keepdims=True)
        drawn = self.GRID[(posterior.cumsum(axis=1) < self.rng.random((len(shortlist), 1))).sum(axis=1)]
        n = int(shortlist[np.argmax(logits[shortlist] + drawn)])
        self._shown[user_id] = float(logits[n])
        return self.world.items[n].id

    def feedback(self, user_id: str, _context: dict, item_id: str, reward: float) -> None:
        if user_id not in self._shown:
            return
        p = 1.0 / (1.0 + np.exp(-(self._shown.pop(user_id) + self.GRID)))
        self._log_posterior[self._index[item_id]] += np.log(p if reward > 0 else 1.0 - p)


class UniformRandom:
    def __init__(self, world: World, seed: int = 0):
        self.ids = [i.id for i in world.items]
        self.rng = np.random.default_rng(seed)

    def recommend(self, _user: str, _context: dict) -> str:
        return self.ids[int(self.rng.integers(len(self.ids)))]

    def feedback(self, *_):
        pass


class Popularity:
    """Shows the item with the best observed click rate so far (Beta(1, 1) prior), for everyone."""

    def __init__(self, world: World, seed: int = 0):
        self.ids = [i.id for i in world.items]
        self.clicks = np.zeros(len(self.ids))
        self.shows = np.zeros(len(self.ids))
        self._index = {i: n for n, i in enumerate(self.ids)}
        self.rng = np.random.default_rng(seed)

    def recommend(self, _user: str, _context: dict) -> str:
        rate = (self.clicks + 1) / (self.shows + 2) + self.rng.random(len(self.ids)) * 1e-9
        return self.ids[int(np.argmax(rate))]

    def feedback(self, _user, _context, item_id: str, reward: float) -> None:
        n = self._index[item_id]
        self.shows[n] += 1
        self.clicks[n] += reward


def ctr_curve(rewards: np.ndarray, buckets: int = 20) -> list[float]:
    return [float(np.nanmean(chunk)) for chunk in np.array_split(rewards, buckets) if len(chunk)]


def gap_closed(policy: float, uniform: float, oracle: float) -> float:
    """Share of the uniform-to-oracle gap that `policy` closes (1.0 = as good as the oracle)."""
    return (policy - uniform) / (oracle - uniform) if oracle > uniform else 0.0


class TutorialVW:
    """Plain Vowpal Wabbit as its contextual-bandit tutorial sets it up, the baseline feedloop is measured
    against: `--cb_explore_adf -q UA --epsilon 0.2`, the user and the request's context in the User namespace,
    each item's id, category and tags in the Action namespace, every item a candidate, cost −1 for a click."""

    ARGS = "--cb_explore_adf -q UA --quiet --epsilon 0.2"

    def __init__(self, world: World, seed: int = 0):
        self.vw = vowpalwabbit.Workspace(f"{self.ARGS} --random_seed {seed}")
        self.ids = [i.id for i in world.items]
        self._actions = [
            f"|Action item={i.id} category={i.category} " + " ".join(f"tag={token(t)}" for t in i.tags) for i in world.items
        ]
        self._index = {i: n for n, i in enumerate(self.ids)}
        self.rng = np.random.default_rng(seed)
        self._last: dict[str, float] = {}  # user → probability of what they were shown last

    def _shared(self, user_id: str, context: dict) -> str:
        return f"shared |User user={token(user_id)} " + " ".join(f"{token(k)}={token(v)}" for k, v in sorted(context.items()))

    def recommend(self, user_id: str, context: dict) -> str:
        pmf = np.asarray(self._run(pylibvw.vw.predict_multi, [self._shared(user_id, context), *self._actions]))
        n = int(self.rng.choice(len(pmf), p=pmf / pmf.sum()))
        self._last[user_id] = float(pmf[n] / pmf.sum())
        return self.ids[n]

    def feedback(self, user_id: str, context: dict, item_id: str, reward: float) -> None:
        actions = list(self._actions)
        n = self._index[item_id]
        actions[n] = f"0:{-reward:g}:{self._last[user_id]:g} {actions[n]}"
        self._run(pylibvw.vw.learn_multi, [self._shared(user_id, context), *actions])

    def _run(self, what, lines: list[str]) -> list[float]:
        """Predict or learn on native examples, as bandit.policy does (pyvw's wrappers cost 4 ms a round here)."""
        examples = self.vw._parse("\n".join(lines))
        try:
            what(self.vw, examples)
            return examples[0].get_action_scores()
        finally:
            pylibvw.vw._finish_example_multi_ex(self.vw, examples)
