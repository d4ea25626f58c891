"""Off-policy estimates on imported logs: known values on simulated logs, the model's distributions per decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from app.services.evaluation import build_log, distinct_actions, estimate, model_groups, uniform_groups
from bandit.estimators import ESTIMATORS, bootstrap
from bandit.features import Candidate, Shared
from bandit.model import ServedModel
from bandit.policy import PolicyConfig
from feedback.logs import LoggedRow

START = datetime(2026, 1, 1, tzinfo=UTC)
MEANS = {"a": 0.2, "b": 0.5, "c": 0.8}  # the uniform policy earns 0.5


def simulated(n: int, propensities: dict[str, float], seed: int = 1) -> list[LoggedRow]:
    rng = np.random.default_rng(seed)
    actions = list(propensities)
    chosen = rng.choice(len(actions), size=n, p=list(propensities.values()))
    return [
        LoggedRow(
            i + 2,
            START + timedelta(minutes=i),
            f"u{i % 50}",
            actions[k],
            None,
            float(rng.random() < MEANS[actions[k]]),
            propensities[actions[k]],
            {"device": "web"},
        )
        for i, k in enumerate(chosen)
    ]


def test_with_a_uniform_logging_policy_ips_and_snips_are_the_mean_reward():
    rows = simulated(300, {a: 1 / 3 for a in MEANS})
    actions = distinct_actions(rows)
    log = build_log(rows, actions, uniform_groups(rows, actions))
    result = estimate("d", "uniform", log, len(actions), resamples=200)
    mean = np.mean([r.reward for r in rows])
    assert result.estimates["ips"].value == pytest.approx(mean)
    assert result.estimates["snips"].value == pytest.approx(mean)
    assert result.n == 300 and result.actions == 3


def test_a_skewed_logging_policy_still_gives_the_uniform_value_inside_the_intervals():
    rows = simulated(4000, {"a": 0.6, "b": 0.3, "c": 0.1})
    naive = np.mean([r.reward for r in rows])  # what the logging policy earned: about 0.35
    actions = distinct_actions(rows)
    result = estimate("d", "uniform", build_log(rows, actions, uniform_groups(rows, actions), seed=3), 3, resamples=300)
    assert naive < 0.4
    for name, e in result.estimates.items():
        assert e.low <= 0.5 <= e.high, (name, e)
        assert e.value == pytest.approx(0.5, abs=0.05), name


def test_doubly_robust_is_cross_fitted_so_a_row_never_predicts_itself():
    rows = [LoggedRow(2 + i, START, "u", "a" if i % 2 else "b", None, float(i % 3), 0.5, {}) for i in range(40)]
    before = build_log(rows, ["a", "b"], uniform_groups(rows, ["a", "b"]), seed=0)
    for i in (0, 7, 21):
        changed = rows[:i] + [LoggedRow(2 + i, START, "u", rows[i].action, None, 100.0, 0.5, {})] + rows[i + 1 :]
        after = build_log(changed, ["a", "b"], uniform_groups(changed, ["a", "b"]), seed=0)
        assert after.reward_hat_logged[i] == before.reward_hat_logged[i]  # its own reward does not enter
        assert after.reward_hat_logged.max() > 5  # the other half's predictions see it


def test_a_model_ranks_every_action_once_per_decision_and_learned_values_show():
    policy = PolicyConfig()
    model = ServedModel.fresh(policy, alpha=0.1, seed=0)
    candidates = [Candidate(a) for a in MEANS]
    rng = np.random.default_rng(0)
    for i in range(600):  # action c always pays, the others never
        shared = Shared.at(f"u{i % 5}", {"device": "web"}, START)
        k = int(rng.integers(0, 3))
        model.policy.learn(shared, candidates, k, float(k == 2), 1 / 3)
    rows = simulated(600, {a: 1 / 3 for a in MEANS})
    rows = rows[:2] + [LoggedRow(99, rows[0].timestamp, rows[0].user_id, "b", 2, 0.0, 0.5, rows[0].context)] + rows[2:]
    seen = []
    groups = list(model_groups(rows, sorted(MEANS), model, {}, on_rows=seen.append))
    assert sum(seen) == len(rows) and len(groups) == len(rows) - 1  # the extra row joins row 0's decision
    assert all(dist.sum() == pytest.approx(1.0) for _, dist in groups)
    result = estimate("d", "m", build_log(rows, sorted(MEANS), iter(groups)), 3, resamples=200)
    assert result.estimates["dr"].value > 0.7  # greedy on c (reward mean 0.8), exploring a little


def test_intervals_agree_with_the_estimators_own_bootstrap():
    rows = simulated(2000, {"a": 0.6, "b": 0.3, "c": 0.1})
    actions = distinct_actions(rows)
    log = build_log(rows, actions, uniform_groups(rows, actions), seed=2)
    ours = estimate("d", "uniform", log, 3, resamples=2000, seed=1).estimates
    for name, f in ESTIMATORS.items():
        theirs = bootstrap(f, log, resamples=2000, seed=7)
        assert ours[name].value == theirs.value
        width = theirs.high - theirs.low
        assert ours[name].low == pytest.approx(theirs.low, abs=0.1 * width)
        assert ours[name].high == pytest.approx(theirs.high, abs=0.1 * width)
