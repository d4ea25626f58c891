"""Drift between a reference window and the current one: Population Stability Index and the two-sample
Kolmogorov-Smirnov test, coloured green / yellow / red by configurable thresholds.

PSI = sum over bins of (current - reference) * ln(current / reference), with bins cut at the reference's
deciles (numbers) or one bin per category (strings). The usual reading: below 0.1 no shift, 0.1-0.25 a moderate
one, above 0.25 a major one. KS compares the two empirical distributions of a number directly; with many
observations tiny shifts become significant, so its colour uses the statistic (the largest gap between the two
CDFs) as well as the p-value."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

COLOURS = ("green", "yellow", "red")
FLOOR = 1e-4  # share given to an empty bin, so that ln(current / reference) stays finite


@dataclass(frozen=True)
class DriftRules:
    psi_yellow: float = 0.1
    psi_red: float = 0.25
    ks_yellow: float = 0.1  # KS statistic, only when p < ks_p
    ks_red: float = 0.2
    ks_p: float = 0.01
    bins: int = 10
    min_samples: int = 30  # fewer in either window: no verdict ("insufficient")


@dataclass(frozen=True)
class Drift:
    psi: float | None
    ks: float | None
    ks_p: float | None
    colour: str  # green, yellow, red, or insufficient
    reference_n: int
    current_n: int


def psi_numeric(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    ref = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1) / len(reference)
    cur = np.bincount(np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1) / len(current)
    return _psi(ref, cur)


def psi_categorical(reference: Sequence[str], current: Sequence[str]) -> float:
    ref, cur = Counter(reference), Counter(current)
    keys = sorted(set(ref) | set(cur))
    return _psi(np.array([ref[k] / len(reference) for k in keys]), np.array([cur[k] / len(current) for k in keys]))


def _psi(ref: np.ndarray, cur: np.ndarray) -> float:
    ref, cur = np.maximum(ref, FLOOR), np.maximum(cur, FLOOR)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def compare(reference: Sequence, current: Sequence, rules: DriftRules = DriftRules()) -> Drift:
    """Drift of one feature: numbers get PSI and KS, strings (categories) PSI alone."""
    n_ref, n_cur = len(reference), len(current)
    if min(n_ref, n_cur) < rules.min_samples:
        return Drift(None, None, None, "insufficient", n_ref, n_cur)
    if all(isinstance(v, str) for v in reference) and all(isinstance(v, str) for v in current):
        psi = psi_categorical(reference, current)
        return Drift(psi, None, None, _worst(_psi_colour(psi, rules)), n_ref, n_cur)
    ref, cur = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    if not (np.all(np.isfinite(ref)) and np.all(np.isfinite(cur))):
        raise ValueError("drift is measured on finite numbers or on categories (strings)")
    psi = psi_numeric(ref, cur, rules.bins)
    from scipy import stats  # here: only the drift scan pays for SciPy

    ks = stats.ks_2samp(ref, cur)
    return Drift(psi, float(ks.statistic), float(ks.pvalue), _worst(_psi_colour(psi, rules), _ks_colour(ks, rules)), n_ref, n_cur)


def _psi_colour(psi: float, rules: DriftRules) -> str:
    return "red" if psi >= rules.psi_red else "yellow" if psi >= rules.psi_yellow else "green"


def _ks_colour(ks, rules: DriftRules) -> str:
    if ks.pvalue >= rules.ks_p:
        return "green"
    return "red" if ks.statistic >= rules.ks_red else "yellow" if ks.statistic >= rules.ks_yellow else "green"


def _worst(*colours: str) -> str:
    return max(colours, key=COLOURS.index)
