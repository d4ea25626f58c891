"""What a policy would have earned on a dataset that another system logged (`feedloop evaluate`).

Choices, where the issue left room:
- The action space is the distinct actions of the dataset. `uniform` gives each of them 1/N at every position;
  a model (`live` or an exported archive) ranks all of them for each logged decision (rows with the same
  timestamp, user and context), so both policies choose from the same set and their values compare.
- A model's probability of the logged action is its first-slot distribution (exploration included), taken at
  every position: exact for logs of single choices and for position 1, an approximation for lower positions
  of a ranking (the exact marginal of sampling without replacement would cost a simulation per decision).
- Candidates are described as the recommender describes them: category and tags from the catalogue when the
  item is in it, the model's Q-value for the context's segment, no retrieval similarity (the logged system's is
  unknown).
- Doubly robust's reward model is the mean reward per action, shrunk towards the overall mean by one pseudo
  row, cross-fitted: rows are split at random into two halves, each half is predicted by the means of the other,
  so no row's own reward enters its prediction.
- Intervals: the percentile bootstrap over rows (bandit.estimators.estimate_all), one set of resamples shared by
  the three estimators.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlmodel import Session

from app.models import Item
from bandit.estimators import Estimate, Log, estimate_all
from bandit.features import Candidate, Shared
from bandit.model import ServedModel
from bandit.qvalues import segment
from feedback.logs import LoggedRow

SHRINKAGE = 1.0  # pseudo rows at the overall mean in each action's mean reward
Groups = Iterator[tuple[np.ndarray, np.ndarray]]  # (row indices, the policy's distribution over the actions)


@dataclass(frozen=True)
class Evaluation:
    dataset: str
    policy: str
    n: int
    actions: int
    estimates: dict[str, Estimate]

    def to_json(self) -> dict:
        parts = {name: {"value": e.value, "ci": [e.low, e.high]} for name, e in self.estimates.items()}
        return {"dataset": self.dataset, "policy": self.policy, "n": self.n} | parts


def distinct_actions(rows: Sequence[LoggedRow]) -> list[str]:
    return sorted({r.action for r in rows})


def uniform_groups(rows: Sequence[LoggedRow], actions: Sequence[str]) -> Groups:
    yield np.arange(len(rows)), np.full(len(actions), 1.0 / len(actions))


def model_groups(
    rows: Sequence[LoggedRow],
    actions: Sequence[str],
    model: ServedModel,
    described: dict[str, tuple[str | None, tuple[str, ...]]],
    segment_keys: list[str] | None = None,
    on_rows: Callable[[int], None] | None = None,
) -> Groups:
    """The model's distribution over `actions` once per logged decision (`described`: item id → category, tags)."""
    decisions: dict[tuple, list[int]] = {}
    for i, r in enumerate(rows):
        decisions.setdefault((r.timestamp, r.user_id, json.dumps(r.context, sort_keys=True)), []).append(i)
    candidates_by_segment: dict[str, list[Candidate]] = {}
    for indices in decisions.values():
        first = rows[indices[0]]
        seg = segment(first.context, segment_keys)
        if seg not in candidates_by_segment:
            candidates_by_segment[seg] = [
                Candidate(a, *described.get(a, (None, ())), 0.0, model.qvalues.get(a, seg)) for a in actions
            ]
        shared = Shared.at(first.user_id or "", first.context, first.timestamp)
        yield np.asarray(indices), model.policy.distribution(shared, candidates_by_segment[seg])
        if on_rows is not None:
            on_rows(len(indices))


def describe_items(s: Session, ids: Sequence[str]) -> dict[str, tuple[str | None, tuple[str, ...]]]:
    """Category and tags of the actions that are catalogue items (in chunks, to stay under bind-parameter limits)."""
    found: dict[str, tuple[str | None, tuple[str, ...]]] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        for item_id, category, tags in s.execute(select(Item.id, Item.category, Item.tags).where(Item.id.in_(chunk))):
            found[item_id] = (category, tuple(tags or ()))
    return found


def build_log(rows: Sequence[LoggedRow], actions: Sequence[str], groups: Groups, seed: int = 0) -> Log:
    """The estimators' log: logged rewards and propensities, the target's probability of each logged action and
    the cross-fitted reward model's predictions for doubly robust."""
    index = {a: i for i, a in enumerate(actions)}
    action = np.fromiter((index[r.action] for r in rows), dtype=np.int64, count=len(rows))
    reward = np.fromiter((r.reward for r in rows), dtype=np.float64, count=len(rows))
    pscore = np.fromiter((r.propensity for r in rows), dtype=np.float64, count=len(rows))
    fold = np.random.default_rng(seed).integers(0, 2, len(rows))
    reward_model = np.stack([_mean_reward(action[fold != f], reward[fold != f], len(actions)) for f in (0, 1)])
    target = np.empty(len(rows))
    reward_hat_target = np.empty(len(rows))
    for indices, distribution in groups:
        target[indices] = distribution[action[indices]]
        reward_hat_target[indices] = (reward_model @ distribution)[fold[indices]]
    return Log(reward, pscore, target, reward_model[fold, action], reward_hat_target)


def estimate(
    dataset: str, policy: str, log: Log, n_actions: int, *, seed: int = 0, resamples: int = 1000, level: float = 0.95
) -> Evaluation:
    return Evaluation(dataset, policy, len(log), n_actions, estimate_all(log, level=level, resamples=resamples, seed=seed))


def _mean_reward(action: np.ndarray, reward: np.ndarray, n_actions: int) -> np.ndarray:
    overall = float(reward.mean()) if len(reward) else 0.0
    sums = np.bincount(action, weights=reward, minlength=n_actions)
    counts = np.bincount(action, minlength=n_actions)
    return (sums + SHRINKAGE * overall) / (counts + SHRINKAGE)
