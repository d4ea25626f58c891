from __future__ import annotations

import numpy as np
import pytest

from feedback.drift import DriftRules, compare, psi_categorical, psi_numeric


def test_psi_by_hand_on_categories():
    # reference 50/50, current 80/20: (0.8-0.5) ln(0.8/0.5) + (0.2-0.5) ln(0.2/0.5)
    expected = 0.3 * np.log(1.6) + (-0.3) * np.log(0.4)
    assert psi_categorical(["a"] * 50 + ["b"] * 50, ["a"] * 80 + ["b"] * 20) == pytest.approx(expected)


def test_a_category_new_in_the_current_window_counts_as_drift():
    assert psi_categorical(["a"] * 100, ["a"] * 50 + ["new"] * 50) > 0.25


def test_the_same_distribution_is_green_and_a_shifted_one_red():
    rng = np.random.default_rng(3)
    same = compare(rng.normal(0, 1, 5000), rng.normal(0, 1, 5000))
    assert same.colour == "green" and same.psi < 0.02
    shifted = compare(rng.normal(0, 1, 5000), rng.normal(1, 1, 5000))
    assert shifted.colour == "red" and shifted.psi > 0.25 and shifted.ks > 0.3 and shifted.ks_p < 1e-6


def test_a_moderate_shift_is_yellow():
    rng = np.random.default_rng(4)
    drift = compare(rng.normal(0, 1, 20_000), rng.normal(0.3, 1, 20_000))
    assert drift.colour == "yellow", drift


def test_psi_of_numbers_uses_the_reference_deciles():
    reference = np.arange(1000, dtype=float)
    assert psi_numeric(reference, reference.copy()) == pytest.approx(0.0)
    assert psi_numeric(reference, reference[:500]) > 0.25  # the upper half vanished


def test_too_few_observations_give_no_verdict():
    assert compare([0.1] * 10, [0.2] * 500).colour == "insufficient"


def test_thresholds_are_configurable():
    rng = np.random.default_rng(5)
    ref, cur = rng.normal(0, 1, 5000), rng.normal(0.3, 1, 5000)
    assert compare(ref, cur, DriftRules(psi_yellow=0.5, psi_red=0.9, ks_yellow=0.5, ks_red=0.9)).colour == "green"


def test_non_finite_numbers_are_refused():
    with pytest.raises(ValueError):
        compare([0.0] * 40 + [float("nan")], [0.0] * 41)
