"""Anomaly rules: engagement drops against a series' own recent baseline, and fraud-like users by an
unsupervised outlier detector over per-user behaviour.

Drops: the latest value of a rate series (clicks or rewards per impression, per item / category / overall)
against the baseline before it, by a robust z-score (median and MAD, so one past spike does not hide the next
drop) or by EWMA control limits. Only drops alert: a rise in engagement is good news.

Fraud-like users: a behaviour vector per user, scored by scikit-learn's Isolation Forest fitted on the current
population; users whose score falls below the threshold are flagged. The threshold is a quantile of the scores
(`contamination`), so about that share of ordinary traffic is flagged at most; tests measure it on simulated
users."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAD_TO_SIGMA = 1.4826  # the MAD of a normal distribution times this is its standard deviation


@dataclass(frozen=True)
class DropRules:
    method: str = "robust_z"  # robust_z or ewma
    limit: float = 3.5  # z below -limit (or the EWMA below its lower control limit at `limit` sigmas) alerts
    ewma_alpha: float = 0.3
    min_baseline: int = 8  # points of history needed before judging
    min_sigma: float = 0.01  # a floor on the spread, so a perfectly flat series does not alert on noise


@dataclass(frozen=True)
class Drop:
    alert: bool
    score: float  # the z-score (negative: below the baseline)
    baseline: float
    latest: float


def engagement_drop(series: Sequence[float], rules: DropRules = DropRules()) -> Drop | None:
    """Whether the last point of `series` is a drop against the points before it; None without enough history."""
    values = np.asarray(series, dtype=float)
    if len(values) < rules.min_baseline + 1 or not np.all(np.isfinite(values)):
        return None
    history, latest = values[:-1], float(values[-1])
    if rules.method == "robust_z":
        centre = float(np.median(history))
        spread = max(MAD_TO_SIGMA * float(np.median(np.abs(history - centre))), rules.min_sigma)
    elif rules.method == "ewma":
        centre, spread = _ewma(history, rules.ewma_alpha)
        # The EWMA of the latest point, with its control limit at limit * sigma * sqrt(alpha / (2 - alpha)).
        smoothed = rules.ewma_alpha * latest + (1 - rules.ewma_alpha) * centre
        sigma = max(spread, rules.min_sigma) * np.sqrt(rules.ewma_alpha / (2 - rules.ewma_alpha))
        score = (smoothed - centre) / sigma
        return Drop(bool(score < -rules.limit), float(score), centre, latest)
    else:
        raise ValueError(f"unknown method {rules.method!r}: robust_z or ewma")
    score = (latest - centre) / spread
    return Drop(bool(score < -rules.limit), float(score), centre, latest)


def _ewma(history: np.ndarray, alpha: float) -> tuple[float, float]:
    mean = float(history[0])
    for value in history[1:]:
        mean = alpha * float(value) + (1 - alpha) * mean
    return mean, float(np.std(history, ddof=1))


BEHAVIOUR = ("clicks_per_minute", "clicks_without_impression", "reward_rate", "distinct_items", "burstiness")


@dataclass(frozen=True)
class Flag:
    user_id: str
    score: float  # Isolation Forest's score_samples: lower is more anomalous
    features: dict[str, float]


def fraud_like(
    users: Sequence[str], behaviour: np.ndarray, *, contamination: float = 0.01, seed: int = 0, min_users: int = 50
) -> list[Flag]:
    """Users whose behaviour (rows of `behaviour`, columns in BEHAVIOUR order) is an outlier in this population."""
    behaviour = np.asarray(behaviour, dtype=float)
    if behaviour.shape != (len(users), len(BEHAVIOUR)):
        raise ValueError(f"behaviour has one row per user and the columns {', '.join(BEHAVIOUR)}")
    if len(users) < min_users or not np.all(np.isfinite(behaviour)):
        return []
    from sklearn.ensemble import IsolationForest  # here: only the anomaly scan pays for scikit-learn

    scaled = np.log1p(np.maximum(behaviour, 0))  # counts and rates are skewed; the log evens their scales
    forest = IsolationForest(n_estimators=200, contamination=contamination, random_state=seed).fit(scaled)
    scores = forest.score_samples(scaled)
    flagged = np.flatnonzero(forest.predict(scaled) == -1)
    return [
        Flag(users[i], float(scores[i]), dict(zip(BEHAVIOUR, map(float, behaviour[i]))))
        for i in flagged[np.argsort(scores[flagged])]
    ]


def burstiness(timestamps: Sequence[float]) -> float:
    """Goh and Barabási's burstiness of the gaps between events: -1 regular, 0 random (Poisson), towards 1 bursty."""
    gaps = np.diff(np.sort(np.asarray(timestamps, dtype=float)))
    if len(gaps) < 2:
        return 0.0
    mean, std = float(gaps.mean()), float(gaps.std())
    return 0.0 if mean + std == 0 else (std - mean) / (std + mean)
