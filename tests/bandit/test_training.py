"""Offline training and the settings search: candidates learn logged rewards, are judged on later decisions, and
the search keeps the setting the estimator prefers."""

from dataclasses import replace

import numpy as np
import pytest

from bandit.exploration import EpsilonGreedy, SquareCB
from bandit.features import Candidate, Shared
from bandit.model import ServedModel
from bandit.policy import PolicyConfig
from bandit.training import LoggedChoice, LoggedReward, RewardModel, combined, grid, judge, search, train

ITEMS = [Candidate(f"i{n}", category=f"c{n}") for n in range(6)]
BEST = {"mobile": "i1", "desktop": "i4"}  # the item each device's users click


def logged(n: int, seed: int, best=BEST) -> list[tuple[Shared, int, float, float]]:
    """Decisions a uniform-random policy made: (shared, position shown, propensity, reward)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        device = str(rng.choice(["mobile", "desktop"]))
        position = int(rng.integers(len(ITEMS)))
        reward = float(rng.random() < (0.9 if ITEMS[position].id == best[device] else 0.05))
        rows.append((Shared(f"u{rng.integers(50)}", {"device": device}), position, 1 / len(ITEMS), reward))
    return rows


def as_rewards(rows):
    return [LoggedReward(shared, ITEMS, position, p, r, shared.context["device"]) for shared, position, p, r in rows]


def as_choices(rows):
    return [LoggedChoice(shared, ITEMS, position, p, r) for shared, position, p, r in rows]


def test_a_trained_candidate_learns_the_logged_tastes_and_its_estimate_says_so():
    (model,), reward_model = train([PolicyConfig()], [as_rewards(logged(1500, seed=1))], alpha=0.1)
    pmf = model.policy.distribution(Shared("u1", {"device": "desktop"}), ITEMS)
    assert ITEMS[int(np.argmax(pmf))].id == "i4"
    assert model.qvalues.get("i4", "desktop") > model.qvalues.get("i1", "desktop")
    assert reward_model.n == 1500
    (candidate_log,), live_log = judge([model], [as_choices(logged(600, seed=2))], reward_model)
    # Uniform logging earns about (0.9 + 5 * 0.05) / 6 = 0.19; the learned policy about 0.9 less exploration.
    assert live_log.reward.mean() == pytest.approx(0.19, abs=0.05)
    assert np.mean(candidate_log.target / candidate_log.pscore * candidate_log.reward) > 0.7


def test_the_reward_model_shrinks_rarely_seen_items_towards_the_overall_mean():
    rows = [LoggedReward(Shared("u"), ITEMS, 0, 1.0, 1.0, "*")] + [LoggedReward(Shared("u"), ITEMS, 1, 1.0, 0.0, "*")] * 3
    fit = RewardModel.fitting()
    for r in rows:
        fit.add(r.candidates[r.position].id, r.reward)
    model = fit.done()
    assert model.overall == 0.25
    assert model.means["i0"] == pytest.approx((1 + 0.25) / 2)
    assert model.predict([ITEMS[5]])[0] == 0.25  # never seen: the overall mean


def test_the_grid_changes_one_setting_at_a_time_and_has_no_duplicates():
    base = PolicyConfig()
    configs = grid(base)
    assert configs[0] == base and len(configs) == len(set(configs))
    fields = ("exploration", "learning_rate", "interactions", "cb_type")
    for config in configs[1:]:
        changed = [f for f in fields if getattr(config, f) != getattr(base, f)]
        assert len(changed) == 1 or changed == ["interactions"] or (config.cubics != base.cubics and not changed)


def test_the_combination_takes_each_settings_best_value():
    base = PolicyConfig()
    faster, greedier = replace(base, learning_rate=8.0), replace(base, exploration=EpsilonGreedy(0.05))
    together = combined(base, [(base, 0.1), (faster, 0.3), (greedier, 0.2)])
    assert together.learning_rate == 8.0 and together.exploration == EpsilonGreedy(0.05)


@pytest.mark.parametrize("squarecb_score, dr_score, kept", [(0.3, 0.2, "squarecb"), (0.2, 0.3, "dr")])
def test_the_combination_never_pairs_squarecb_with_a_cb_type_it_refuses(squarecb_score, dr_score, kept):
    base = PolicyConfig()
    squarecb, dr = replace(base, exploration=SquareCB(10.0)), replace(base, cb_type="dr")
    together = combined(base, [(base, 0.1), (squarecb, squarecb_score), (dr, dr_score)])
    assert together.runnable
    ServedModel.fresh(together, 0.1)  # Vowpal Wabbit takes it
    assert (together.exploration == SquareCB(10.0)) == (kept == "squarecb") and (together.cb_type == "dr") == (kept == "dr")


def test_the_grid_of_a_squarecb_base_tries_no_cb_type_squarecb_refuses():
    base = PolicyConfig(exploration=SquareCB(10.0))
    assert all(config.runnable for config in grid(base))
    assert all(config.cb_type == "mtr" for config in grid(base) if isinstance(config.exploration, SquareCB))


def test_the_search_ranks_trials_by_the_estimator_and_judges_the_logging_policy_on_the_same_decisions():
    train_rows, holdout_rows = logged(800, seed=3), logged(400, seed=4)
    found = search(
        PolicyConfig(),
        lambda: [as_rewards(train_rows)],
        lambda: [as_choices(holdout_rows)],
        0.1,
        estimator="snips",
        resamples=100,
    )
    values = [t.estimates["snips"].value for t in found.trials]
    assert values == sorted(values, reverse=True)
    assert found.held_out == 400 and found.trained_on == 800
    assert found.live["ips"].value == pytest.approx(np.mean([r for *_, r in holdout_rows]))
    assert found.trials[0].estimates["snips"].low > found.live["snips"].value
