"""KPI thresholds: each KPI is green, yellow or red by two configurable limits, in the direction that is good
for it (AUC higher is better; missed items lower is better)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Band:
    green: float  # at or beyond this: green
    red: float  # beyond this the other way: red; between the two: yellow
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        if (self.green < self.red) if self.higher_is_better else (self.green > self.red):
            raise ValueError("the green limit must be on the good side of the red one")

    def colour(self, value: float | None) -> str:
        if value is None:
            return "unknown"
        if self.higher_is_better:
            return "green" if value >= self.green else "yellow" if value >= self.red else "red"
        return "green" if value <= self.green else "yellow" if value <= self.red else "red"


# The defaults the monitoring issue set (fractions, not percentages).
DEFAULT_BANDS: dict[str, Band] = {
    "auc": Band(green=0.85, red=0.75),
    "f1": Band(green=0.20, red=0.15),
    "conversion": Band(green=0.15, red=0.10),
    "missed_items": Band(green=0.05, red=0.10, higher_is_better=False),
    "negative_hits": Band(green=0.02, red=0.05, higher_is_better=False),
}
MODEL_KPIS = ("auc", "f1")  # red on these takes the model out of serving
# Fewer labels than this: a model KPI is reported, not judged. AUC 0.85 has a standard error (Hanley and McNeil)
# of about 0.11 on 20 labels with 30% positives, wider than the 0.10 between its green and red limits; on 200, 0.03.
MIN_LABELS = 200


def colour(name: str, value: float | None, n: int, bands: Mapping[str, Band], min_labels: int = MIN_LABELS) -> str:
    """The colour of one KPI measured over `n`: "unknown" without a band, and for a model KPI on fewer than
    `min_labels` labels (a release minutes after its promotion has a handful, and red takes it out of serving)."""
    if name not in bands or (name in MODEL_KPIS and n < min_labels):
        return "unknown"
    return bands[name].colour(value)


def colours(values: Mapping[str, float | None], bands: Mapping[str, Band] = DEFAULT_BANDS) -> dict[str, str]:
    """The colour of each KPI that has a band; KPIs without one (CTR, mean reward) are reported, not judged."""
    return {name: bands[name].colour(value) for name, value in values.items() if name in bands}


def f1_at_base_rate(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """F1 of predicting positive for the top share of scores equal to the observed positive rate: the threshold
    is the P-th highest of the n scores when P labels are positive (the scores' 1 - P/n quantile), and scores tied
    with it count as positive. A fixed threshold (Q >= 0.5) says nothing about a bandit's Q-values, which are
    running mean rewards: at click rates of a few percent none reaches 0.5. With no ties, precision equals recall
    here, and a model ranking at random scores about the positive rate. None without both classes."""
    y = np.asarray(labels, dtype=bool)
    positives = int(y.sum())
    if positives in (0, len(y)):
        return None
    x = np.asarray(scores, dtype=float)
    predicted = x >= np.sort(x)[-positives]
    hits = int((predicted & y).sum())
    return 2 * hits / (int(predicted.sum()) + positives)


def parse_bands(text: str, base: Mapping[str, Band] = DEFAULT_BANDS) -> dict[str, Band]:
    """Bands from a setting such as "auc=0.9:0.8,missed_items=0.03:0.08" (green:red), over the defaults."""
    bands = dict(base)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, limits = part.partition("=")
        if name not in bands:
            raise ValueError(f"unknown KPI {name!r}; the KPIs with bands are {', '.join(sorted(bands))}")
        green, _, red = limits.partition(":")
        try:
            bands[name] = Band(float(green), float(red), bands[name].higher_is_better)
        except ValueError as exc:
            raise ValueError(f"{part!r}: write NAME=GREEN:RED with numbers ({exc})") from None
    return bands
