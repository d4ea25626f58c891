from __future__ import annotations

import numpy as np
import pytest

from feedback import kpis
from feedback.kpis import DEFAULT_BANDS, Band, colours, parse_bands


@pytest.mark.parametrize(
    ("kpi", "value", "colour"),
    [
        ("auc", 0.85, "green"),
        ("auc", 0.80, "yellow"),
        ("auc", 0.75, "yellow"),
        ("auc", 0.7499, "red"),
        ("f1", 0.2, "green"),
        ("f1", 0.16, "yellow"),
        ("f1", 0.1, "red"),
        ("conversion", 0.15, "green"),
        ("conversion", 0.12, "yellow"),
        ("conversion", 0.05, "red"),
        ("missed_items", 0.05, "green"),
        ("missed_items", 0.07, "yellow"),
        ("missed_items", 0.11, "red"),
        ("negative_hits", 0.01, "green"),
        ("negative_hits", 0.03, "yellow"),
        ("negative_hits", 0.06, "red"),
    ],
)
def test_the_issues_default_bands(kpi, value, colour):
    assert DEFAULT_BANDS[kpi].colour(value) == colour


def test_kpis_without_a_band_are_not_judged_and_missing_values_are_unknown():
    assert colours({"ctr": 0.1, "auc": None, "f1": 0.3}) == {"auc": "unknown", "f1": "green"}


def test_bands_from_a_setting():
    bands = parse_bands("auc=0.9:0.8, missed_items=0.03:0.08")
    assert bands["auc"] == Band(0.9, 0.8) and bands["missed_items"] == Band(0.03, 0.08, higher_is_better=False)
    assert bands["f1"] == DEFAULT_BANDS["f1"]


@pytest.mark.parametrize("text", ["ctr=0.1:0.05", "auc=high:low", "auc=0.7:0.8", "missed_items=0.1:0.05"])
def test_bad_band_settings_say_what_is_wrong(text):
    with pytest.raises(ValueError):
        parse_bands(text)


def test_model_kpis_on_too_few_labels_are_reported_not_judged():
    assert kpis.colour("auc", 0.5, 199, DEFAULT_BANDS) == "unknown"
    assert kpis.colour("auc", 0.5, 200, DEFAULT_BANDS) == "red"
    assert kpis.colour("f1", 0.3, 20, DEFAULT_BANDS, min_labels=20) == "green"
    assert kpis.colour("conversion", 0.05, 3, DEFAULT_BANDS) == "red"  # not a model KPI: no minimum
    assert kpis.colour("ctr", 0.5, 1000, DEFAULT_BANDS) == "unknown"  # no band


def low_ctr(seed: int, n: int = 2000, rate: float = 0.03) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes at a click rate of a few percent, and Q-values as running mean rewards: all well below 0.5."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < rate).astype(int)
    return labels, rng.uniform(0.0, 0.1, n)


def test_f1_predicts_the_top_share_of_scores_equal_to_the_positive_rate():
    labels, noise = low_ctr(1)
    ranked = noise + 0.08 * labels  # positives first, mostly: every Q below 0.5
    assert ranked.max() < 0.5 and kpis.f1_at_base_rate(ranked, labels) >= 0.5
    assert DEFAULT_BANDS["f1"].colour(kpis.f1_at_base_rate(ranked, labels)) == "green"
    random = kpis.f1_at_base_rate(noise, labels)
    assert random < 0.1 and DEFAULT_BANDS["f1"].colour(random) == "red"  # about the positive rate


def test_f1_at_base_rate_by_hand():
    # 2 positives of 5: the threshold is the 2nd highest score, 0.3; 0.4 and 0.3 predicted positive
    assert kpis.f1_at_base_rate([0.4, 0.3, 0.2, 0.1, 0.05], [1, 0, 1, 0, 0]) == pytest.approx(0.5)
    # ties at the threshold count as positive: 3 predicted, 2 of them right
    assert kpis.f1_at_base_rate([0.3, 0.3, 0.3, 0.1], [1, 1, 0, 0]) == pytest.approx(2 * 2 / (3 + 2))
    assert kpis.f1_at_base_rate([0.1, 0.2], [0, 0]) is None and kpis.f1_at_base_rate([0.1], [1]) is None
