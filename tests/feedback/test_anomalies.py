from __future__ import annotations

import numpy as np
import pytest

from feedback.anomalies import BEHAVIOUR, DropRules, burstiness, engagement_drop, fraud_like


def steady(rng, n=24, rate=0.1, noise=0.005):
    return list(rate + rng.normal(0, noise, n))


@pytest.mark.parametrize("method", ["robust_z", "ewma"])
def test_a_sharp_drop_alerts_and_a_steady_series_does_not(method):
    rng = np.random.default_rng(0)
    rules = DropRules(method=method)
    assert not engagement_drop([*steady(rng), 0.1], rules).alert
    drop = engagement_drop([*steady(rng), 0.03], rules)
    assert drop.alert and drop.score < -rules.limit and drop.baseline == pytest.approx(0.1, abs=0.01)


@pytest.mark.parametrize("method", ["robust_z", "ewma"])
def test_a_rise_never_alerts(method):
    rng = np.random.default_rng(1)
    assert not engagement_drop([*steady(rng), 0.5], DropRules(method=method)).alert


def test_one_past_spike_does_not_hide_a_drop():
    rng = np.random.default_rng(2)
    history = steady(rng)
    history[5] = 0.9
    assert engagement_drop([*history, 0.03]).alert


def test_a_short_history_is_not_judged():
    assert engagement_drop([0.1, 0.1, 0.0]) is None


def test_false_alarms_on_steady_series_are_rare():
    rng = np.random.default_rng(3)
    alarms = sum(engagement_drop(steady(rng, n=25)).alert for _ in range(2000))
    assert alarms / 2000 < 0.01, alarms


def test_burstiness_reads_regular_random_and_bursty_gaps():
    assert burstiness(np.arange(100.0)) == pytest.approx(-1.0)
    rng = np.random.default_rng(4)
    assert abs(burstiness(np.cumsum(rng.exponential(1.0, 5000)))) < 0.05
    bursts = np.concatenate([t + np.arange(20) * 0.01 for t in np.arange(10) * 1000.0])
    assert burstiness(bursts) > 0.5


def simulated_users(rng, ordinary=1000, fraudsters=10):
    """Ordinary users: a click or two a minute, mostly after impressions, some rewards, many items, random
    timing. Fraudsters: many clicks a minute, most without an impression, in bursts, on a handful of items."""
    normal = np.column_stack(
        [
            rng.gamma(2.0, 0.5, ordinary),
            rng.poisson(0.3, ordinary),
            rng.beta(2, 8, ordinary),
            rng.poisson(15, ordinary) + 1,
            rng.normal(0.0, 0.15, ordinary),
        ]
    )
    fraud = np.column_stack(
        [
            rng.gamma(20.0, 1.0, fraudsters),
            rng.poisson(40, fraudsters),
            rng.beta(8, 2, fraudsters),
            rng.poisson(2, fraudsters) + 1,
            rng.uniform(0.7, 0.95, fraudsters),
        ]
    )
    users = [f"u{i}" for i in range(ordinary)] + [f"fraud{i}" for i in range(fraudsters)]
    return users, np.vstack([normal, np.clip(fraud, 0, None)])


def test_fraud_like_users_are_found_and_ordinary_ones_rarely_flagged():
    caught, false_positives, ordinary = 0, 0, 0
    for seed in range(5):
        users, behaviour = simulated_users(np.random.default_rng(seed))
        flagged = {f.user_id for f in fraud_like(users, behaviour, contamination=0.015, seed=seed)}
        caught += sum(u.startswith("fraud") for u in flagged)
        false_positives += sum(not u.startswith("fraud") for u in flagged)
        ordinary += 1000
    assert caught >= 48  # of 50
    assert false_positives / ordinary < 0.01, false_positives  # below 1% of ordinary users


def test_flags_carry_their_evidence_most_anomalous_first():
    users, behaviour = simulated_users(np.random.default_rng(9))
    flags = fraud_like(users, behaviour, contamination=0.01)
    assert set(flags[0].features) == set(BEHAVIOUR)
    assert [f.score for f in flags] == sorted(f.score for f in flags)


def test_a_small_population_is_not_judged():
    users, behaviour = simulated_users(np.random.default_rng(0), ordinary=20, fraudsters=1)
    assert fraud_like(users, behaviour) == []
