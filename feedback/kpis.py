"""KPI thresholds: each KPI is green, yellow or red by two configurable limits, in the direction that is good
for it (AUC higher is better; missed items lower is better)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


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


def colours(values: Mapping[str, float | None], bands: Mapping[str, Band] = DEFAULT_BANDS) -> dict[str, str]:
    """The colour of each KPI that has a band; KPIs without one (CTR, mean reward) are reported, not judged."""
    return {name: bands[name].colour(value) for name, value in values.items() if name in bands}


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
