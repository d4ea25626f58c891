"""Offline training and off-policy comparison of bandit policies, from logged decisions.

A candidate learns the logged rewards in the order the learner learned them, with the features each decision
logged (so training sees exactly what serving saw), and is judged on later decisions it never learned from:
for each, the probability it gives the item the live policy put first, against the probability that item was
shown with (bandit.estimators). Only the first slot of a decision is judged: its logged probability is the
policy's own distribution, while later slots' are conditional on the earlier draws.

The search tries a small grid around the live settings, one setting changed at a time, then the best value of
each setting together, and keeps the best by the chosen estimator ("optimization discovery").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from bandit.estimators import Estimate, Log, estimate_all
from bandit.exploration import EpsilonGreedy, Softmax, SquareCB
from bandit.features import Candidate, Shared
from bandit.model import ServedModel
from bandit.policy import PolicyConfig

SHRINKAGE = 1.0  # pseudo rows at the overall mean in each item's mean reward (the reward model of DR)


@dataclass(frozen=True)
class LoggedReward:
    """One learnable reward as the learner learns it."""

    shared: Shared
    candidates: Sequence[Candidate]
    position: int  # of the rewarded item among the candidates
    probability: float  # with which its slot was drawn
    reward: float
    segment: str


@dataclass(frozen=True)
class LoggedChoice:
    """A decision's first slot and its final reward: what off-policy evaluation judges."""

    shared: Shared
    candidates: Sequence[Candidate]
    position: int
    probability: float
    reward: float


Batches = Callable[[], Iterable[Sequence]]  # a fresh pass over the log, in batches (it may not fit in memory)


def train(configs: Sequence[PolicyConfig], batches: Iterable[Sequence[LoggedReward]], alpha: float, seed: int = 0):
    """Fresh models, one per config, that learned the rewards in order in one pass, their Q-values updated as the
    learner updates them; and the reward model fitted on the same rewards. (models, reward model)"""
    models = [ServedModel.fresh(config, alpha, seed) for config in configs]
    fit = RewardModel.fitting()
    for batch in batches:
        for r in batch:
            item = r.candidates[r.position].id
            for model in models:
                model.policy.learn(r.shared, r.candidates, r.position, r.reward, r.probability)
                model.qvalues.update(item, r.segment, r.reward)
            fit.add(item, r.reward)
    return models, fit.done()


@dataclass(frozen=True)
class RewardModel:
    """Mean reward per item, shrunk towards the overall mean: doubly robust's reward model."""

    means: dict[str, float]
    overall: float
    n: int  # the rewards it was fitted on

    @staticmethod
    def fitting() -> _Fitting:
        return _Fitting()

    def predict(self, candidates: Sequence[Candidate]) -> np.ndarray:
        return np.fromiter((self.means.get(c.id, self.overall) for c in candidates), dtype=np.float64, count=len(candidates))


class _Fitting:
    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, item: str, reward: float) -> None:
        self.sums[item] = self.sums.get(item, 0.0) + reward
        self.counts[item] = self.counts.get(item, 0) + 1

    def done(self) -> RewardModel:
        total = sum(self.counts.values())
        overall = sum(self.sums.values()) / total if total else 0.0
        means = {i: (v + SHRINKAGE * overall) / (self.counts[i] + SHRINKAGE) for i, v in self.sums.items()}
        return RewardModel(means, overall, total)


def judge(models: Sequence[ServedModel], batches: Iterable[Sequence[LoggedChoice]], reward_model: RewardModel):
    """In one pass over the held-out decisions: the log that evaluates each model, and the log that evaluates the
    policy that logged them (its target is its own propensity). (logs per model, logging policy's log)"""
    rows: list[list] = [[] for _ in models]
    logged: list = []
    for batch in batches:
        for c in batch:
            predicted = reward_model.predict(c.candidates)
            base = (c.reward, c.probability, predicted[c.position])
            logged.append((*base, c.probability, predicted[c.position]))
            for n, model in enumerate(models):
                pmf = model.policy.distribution(c.shared, c.candidates)
                rows[n].append((*base, pmf[c.position], float(pmf @ predicted)))
    return [_as_log(r) for r in rows], _as_log(logged)


class NothingToJudge(ValueError):
    """No held-out decision to judge the policies on."""


def _as_log(rows: list[tuple]) -> Log:
    if not rows:
        raise NothingToJudge("no held-out decisions to judge on")
    reward, pscore, hat_logged, target, hat_target = (np.array(column, dtype=np.float64) for column in zip(*rows))
    return Log(reward, pscore, target, hat_logged, hat_target)


# ---------------------------------------------------------------------------------------------- the search

EXPLORATIONS = (EpsilonGreedy(0.02), EpsilonGreedy(0.05), Softmax(30.0), SquareCB(10.0))
LEARNING_RATES = (2.0, 4.0, 8.0)
INTERACTION_SETS = ((("UG", "CG", "AG"), ("CCG",)), (("UG", "CG"), ("CCG",)), (("UG", "CG", "AG"), ()))
CB_TYPES = ("mtr", "dr")


def grid(base: PolicyConfig) -> list[PolicyConfig]:
    """The base settings, and each with one setting changed (exploration and its parameter, learning rate,
    interactions, cb_type); duplicates and settings Vowpal Wabbit refuses dropped, in a stable order."""
    variants = [base]
    variants += [replace(base, exploration=e) for e in EXPLORATIONS]
    variants += [replace(base, learning_rate=lr) for lr in LEARNING_RATES]
    variants += [replace(base, interactions=q, cubics=c) for q, c in INTERACTION_SETS]
    variants += [replace(base, cb_type=t) for t in CB_TYPES]
    unique: list[PolicyConfig] = []
    for v in variants:
        if v not in unique and v.runnable:
            unique.append(v)
    return unique


def combined(base: PolicyConfig, tried: Sequence[tuple[PolicyConfig, float]]) -> PolicyConfig:
    """The base with, for each setting, the value that scored best when it alone was changed. When the best
    exploration and the best cb_type cannot run together (SquareCB with anything but mtr), the one whose change
    scored higher is kept and the other stays the base's."""
    best = max(tried, key=lambda t: t[1])[0]
    fields = ("exploration", "learning_rate", "interactions", "cubics", "cb_type")
    chosen, scores = {}, {}
    for name in fields:
        alone = [(c, v) for c, v in tried if all(getattr(c, f) == getattr(base, f) for f in fields if f != name)]
        if alone:
            config, scores[name] = max(alone, key=lambda t: t[1])
            chosen[name] = getattr(config, name)
    if "interactions" in chosen:  # interactions and cubics were tried as pairs
        pair = next(c for c, _ in tried if c.interactions == chosen["interactions"])
        chosen["cubics"] = pair.cubics
    together = replace(best, **chosen) if chosen else best
    if not together.runnable:
        weaker = min(("exploration", "cb_type"), key=lambda name: scores.get(name, float("-inf")))
        together = replace(together, **{weaker: getattr(base, weaker)})
    return together


@dataclass(frozen=True)
class Trial:
    config: PolicyConfig
    estimates: dict[str, Estimate]
    model: ServedModel


@dataclass(frozen=True)
class Search:
    trials: list[Trial]  # best first by the estimator
    live: dict[str, Estimate]  # the logging policy on the same held-out decisions
    held_out: int
    trained_on: int


def search(
    base: PolicyConfig,
    train_batches: Batches,
    holdout_batches: Batches,
    alpha: float,
    *,
    estimator: str = "dr",
    seed: int = 0,
    resamples: int = 500,
) -> Search:
    """Train every setting of the grid in one pass over the training log, judge them in one pass over the held-out
    decisions, then train and judge the combination of the best values."""

    def trials_of(configs: list[PolicyConfig]) -> tuple[list[Trial], Log, RewardModel]:
        models, reward_model = train(configs, train_batches(), alpha, seed)
        logs, logged = judge(models, holdout_batches(), reward_model)
        estimated = [estimate_all(log, resamples=resamples, seed=seed) for log in logs]
        return [Trial(c, e, m) for c, e, m in zip(configs, estimated, models)], logged, reward_model

    trials, logged, reward_model = trials_of(grid(base))
    together = combined(base, [(t.config, t.estimates[estimator].value) for t in trials])
    if all(t.config != together for t in trials):
        trials += trials_of([together])[0]
    return Search(
        trials=sorted(trials, key=lambda t: -t.estimates[estimator].value),
        live=estimate_all(logged, resamples=resamples, seed=seed),
        held_out=len(logged),
        trained_on=reward_model.n,
    )
