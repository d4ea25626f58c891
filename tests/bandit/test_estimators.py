"""Off-policy estimators against values worked by hand on a small log, and their intervals against simulated
logs whose true policy value is known."""

from __future__ import annotations

import numpy as np
import pytest

from bandit.estimators import Log, bootstrap, doubly_robust, ips, snips

# Four logged decisions. Weights w = target / pscore: 0.5/0.5=1, 0/0.25=0, 1/0.5=2, 0.5/0.25=2.
SMALL = Log(
    reward=np.array([1.0, 0.0, 1.0, 0.0]),
    pscore=np.array([0.5, 0.25, 0.5, 0.25]),
    target=np.array([0.5, 0.0, 1.0, 0.5]),
    reward_hat_logged=np.array([0.6, 0.2, 0.5, 0.4]),
    reward_hat_target=np.array([0.7, 0.3, 0.5, 0.4]),
)


def test_ips_by_hand():
    assert ips(SMALL) == pytest.approx((1 * 1 + 0 * 0 + 2 * 1 + 2 * 0) / 4)  # 0.75


def test_snips_by_hand():
    assert snips(SMALL) == pytest.approx((1 + 0 + 2 + 0) / (1 + 0 + 2 + 2))  # 0.6


def test_doubly_robust_by_hand():
    # r_hat_target + w (r - r_hat_logged): 0.7 + 1(0.4) = 1.1; 0.3 + 0 = 0.3; 0.5 + 2(0.5) = 1.5; 0.4 + 2(-0.4) = -0.4
    assert doubly_robust(SMALL) == pytest.approx((1.1 + 0.3 + 1.5 - 0.4) / 4)


def test_ips_agrees_with_vowpal_wabbits_estimators_package():
    vw_ips = pytest.importorskip("estimators.bandits.ips")
    vw_snips = pytest.importorskip("estimators.bandits.snips")
    a, b = vw_ips.Estimator(), vw_snips.Estimator()
    for r, p, t in zip(SMALL.reward, SMALL.pscore, SMALL.target):
        a.add_example(p, r, t)
        b.add_example(p, r, t)
    assert ips(SMALL) == pytest.approx(a.get())
    assert snips(SMALL) == pytest.approx(b.get())


@pytest.mark.parametrize(
    "bad",
    [
        {"pscore": np.array([0.5, 0.0, 0.5, 0.25])},
        {"target": np.array([0.5, 1.5, 1.0, 0.5])},
        {"reward": np.array([1.0, np.nan, 1.0, 0.0])},
        {"reward": np.array([1.0, 0.0])},
    ],
)
def test_a_malformed_log_is_refused(bad):
    fields = {"reward": SMALL.reward, "pscore": SMALL.pscore, "target": SMALL.target, **bad}
    with pytest.raises(ValueError):
        Log(**fields)


MEANS = np.array([[0.1, 0.5, 0.2, 0.3], [0.6, 0.1, 0.2, 0.1]])  # reward means per (context kind, action)


def target_policy(kind: int) -> np.ndarray:
    """The best action for the kind with probability 0.8, each other with 0.2 / 3."""
    probs = np.full(MEANS.shape[1], 0.2 / (MEANS.shape[1] - 1))
    probs[MEANS[kind].argmax()] = 0.8
    return probs


def simulated_log(rng: np.random.Generator, n: int) -> tuple[Log, float]:
    """Two equally likely kinds of context, a uniform logging policy, Bernoulli rewards with known means: the
    target policy's true value is known exactly."""
    actions = MEANS.shape[1]
    kind = rng.integers(0, 2, n)
    action = rng.integers(0, actions, n)
    reward = (rng.random(n) < MEANS[kind, action]).astype(float)
    probs = np.stack([target_policy(k) for k in kind])
    model = MEANS[kind] + 0.05  # a reward model that is a little off
    truth = float(np.mean([target_policy(k) @ MEANS[k] for k in (0, 1)]))
    log = Log(
        reward=reward,
        pscore=np.full(n, 1 / actions),
        target=probs[np.arange(n), action],
        reward_hat_logged=model[np.arange(n), action],
        reward_hat_target=(probs * model).sum(axis=1),
    )
    return log, truth


@pytest.mark.parametrize("estimator", [ips, snips, doubly_robust])
def test_the_95_percent_interval_holds_the_true_value_about_95_percent_of_the_time(estimator):
    rng = np.random.default_rng(7)
    trials, inside = 100, 0
    for trial in range(trials):
        log, truth = simulated_log(rng, 400)
        estimate = bootstrap(estimator, log, resamples=200, seed=trial)
        inside += estimate.low <= truth <= estimate.high
        assert estimate.low <= estimate.value <= estimate.high
    # Binomial(100, 0.95) is 88 or more with probability above 0.99 (and a too-wide interval would give 100).
    assert 88 <= inside <= 99, inside


def test_estimates_converge_to_the_true_value_on_a_long_log():
    log, truth = simulated_log(np.random.default_rng(1), 200_000)
    for estimator in (ips, snips, doubly_robust):
        assert estimator(log) == pytest.approx(truth, abs=0.01)
