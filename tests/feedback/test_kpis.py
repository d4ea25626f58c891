from __future__ import annotations

import pytest

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
