"""Off-policy estimates of what a policy would have earned, from a log of another policy's decisions.

The log is aligned arrays, one entry per logged decision (Open Bandit Pipeline's layout): the reward observed,
`pscore` the probability the logging policy gave the action it took, and `target` the probability the evaluated
policy gives that same action. Doubly robust also takes a reward model's prediction for the logged action and
its expectation under the evaluated policy, sum over actions of pi(a|x) * r_hat(x, a).

- IPS: mean(w * r), w = target / pscore. Unbiased when pscore > 0 wherever target > 0; high variance.
- SNIPS: sum(w * r) / sum(w). Slightly biased, much steadier when weights are large.
- DR: mean(r_hat_target + w * (r - r_hat_logged)). Unbiased if either the pscores or the reward model are right.
Intervals come from the percentile bootstrap over decisions; tests check their coverage on simulated logs whose
true value is known.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Log:
    reward: np.ndarray
    pscore: np.ndarray
    target: np.ndarray
    reward_hat_logged: np.ndarray | None = None
    reward_hat_target: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.reward)
        arrays = [self.reward, self.pscore, self.target, self.reward_hat_logged, self.reward_hat_target]
        if any(a is not None and (np.ndim(a) != 1 or len(a) != n) for a in arrays):
            raise ValueError("every array of a log has one entry per decision")
        if n == 0:
            raise ValueError("an empty log estimates nothing")
        if not np.all((self.pscore > 0) & (self.pscore <= 1)):
            raise ValueError("pscore must lie in (0, 1]: a logged action had a positive probability")
        if not np.all((self.target >= 0) & (self.target <= 1)):
            raise ValueError("target probabilities must lie in [0, 1]")
        if not all(np.all(np.isfinite(a)) for a in arrays if a is not None):
            raise ValueError("a log holds finite numbers only")

    def __len__(self) -> int:
        return len(self.reward)

    def take(self, rows: np.ndarray) -> Log:
        """The decisions at `rows` (a bootstrap resample): already checked, so not checked again."""
        part = object.__new__(Log)
        for name in ("reward", "pscore", "target", "reward_hat_logged", "reward_hat_target"):
            column = getattr(self, name)
            object.__setattr__(part, name, None if column is None else column[rows])
        return part


def ips(log: Log) -> float:
    return float(np.mean(log.target / log.pscore * log.reward))


def snips(log: Log) -> float:
    w = log.target / log.pscore
    total = w.sum()
    return float((w * log.reward).sum() / total) if total > 0 else 0.0


def doubly_robust(log: Log) -> float:
    if log.reward_hat_logged is None or log.reward_hat_target is None:
        raise ValueError("doubly robust needs the reward model's predictions (reward_hat_logged, reward_hat_target)")
    w = log.target / log.pscore
    return float(np.mean(log.reward_hat_target + w * (log.reward - log.reward_hat_logged)))


ESTIMATORS: dict[str, Callable[[Log], float]] = {"ips": ips, "snips": snips, "dr": doubly_robust}


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    level: float


def bootstrap(
    estimator: Callable[[Log], float], log: Log, *, level: float = 0.95, resamples: int = 1000, seed: int = 0
) -> Estimate:
    """The estimate on the whole log, with a percentile bootstrap interval at `level` (decisions resampled with
    replacement, `resamples` times, from a seeded generator)."""
    if not 0 < level < 1:
        raise ValueError("level lies between 0 and 1")
    rng = np.random.default_rng(seed)
    n = len(log)
    values = np.array([estimator(log.take(rng.integers(0, n, n))) for _ in range(resamples)])
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return Estimate(estimator(log), float(low), float(high), level)


def estimate_all(log: Log, *, level: float = 0.95, resamples: int = 1000, seed: int = 0) -> dict[str, Estimate]:
    """IPS, SNIPS and DR on the log, with percentile bootstrap intervals from one set of resamples shared by the
    three. Each estimate is a ratio of per-row sums, so a resample is drawn as row counts and costs one bincount
    and one product (100,000 rows, 1,000 resamples: 3 s instead of 27 s)."""
    if not 0 < level < 1:
        raise ValueError("level lies between 0 and 1")
    w = log.target / log.pscore
    # Per row: IPS's term, SNIPS's weight, DR's term.
    terms = np.stack([w * log.reward, w, log.reward_hat_target + w * (log.reward - log.reward_hat_logged)], axis=1)
    rng = np.random.default_rng(seed)
    n = len(log)
    sums = np.empty((resamples, 3))
    for k in range(resamples):
        sums[k] = np.bincount(rng.integers(0, n, n), minlength=n) @ terms
    with np.errstate(invalid="ignore", divide="ignore"):
        draws = {"ips": sums[:, 0] / n, "snips": np.where(sums[:, 1] > 0, sums[:, 0] / sums[:, 1], 0.0), "dr": sums[:, 2] / n}
    tail = (1 - level) / 2
    estimates = {}
    for name, f in ESTIMATORS.items():
        low, high = np.quantile(draws[name], [tail, 1 - tail])
        estimates[name] = Estimate(f(log), float(low), float(high), level)
    return estimates
