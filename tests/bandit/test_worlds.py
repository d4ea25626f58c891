"""The simulator's worlds behave as they claim: the oracle beats uniform in each, the weekend flips tastes, tastes
drift at the set visit, the sparse world has its many users, and the fraud bot clicks but is not measured."""

import numpy as np
import pytest

from bandit.simulator import CONTEXTS, Oracle, TutorialVW, UniformRandom, simulate
from bandit.worlds import WORLDS, ContextFlip, Drift, Fraud, make_world


@pytest.mark.parametrize("name", WORLDS)
def test_the_oracle_beats_uniform_random_in_every_world(name):
    results = {}
    for make in (UniformRandom, Oracle):
        world = make_world(name, 120, 30, seed=1, rounds=1200)
        policy = Oracle(world) if make is Oracle else make(world, 1)
        results[make] = np.nanmean(simulate(world, 1200, policy.recommend, policy.feedback))
    assert results[Oracle] > results[UniformRandom] + 0.3


def test_the_weekend_flips_the_best_topic_for_some_users_and_is_sent_in_the_context():
    world = ContextFlip(400, 60, seed=2)

    def best(user: int, situation: int) -> str:
        return world.items[int(np.argmax(world.click_probabilities(user, situation)))].category

    weekend = len(CONTEXTS)  # mobile morning at the weekend
    flipped = [u for u in range(60) if best(u, 0) != best(u, weekend)]
    assert 10 <= len(flipped) < 60
    assert world.context(0, weekend)["week"] == "weekend" and world.context(0, 0)["week"] == "weekday"
    weeks = [world.context(*world.next_visit())["week"] for _ in range(2000)]
    assert 0.2 < weeks.count("weekend") / 2000 < 0.37  # two days in seven


def test_tastes_drift_at_the_set_visit_for_half_the_users():
    world = Drift(200, 100, seed=3, drift_at=50)
    before = [world.click_probabilities(u, 0) for u in range(100)]
    for _ in range(50):
        world.next_visit()
    assert all(np.allclose(before[u], world.click_probabilities(u, 0)) for u in range(100))  # up to visit 50
    world.next_visit()
    changed = [not np.allclose(before[u], world.click_probabilities(u, 0)) for u in range(100)]
    assert changed == world.drifting.tolist() and 30 < sum(changed) < 70


def test_the_sparse_world_has_many_users_seen_a_few_times_each():
    world = make_world("sparse", 100, None, seed=0, rounds=20_000)
    assert len(world.users) == 5000  # 20,000 rounds: four visits each on average
    assert len(make_world("default", 100, None, seed=0, rounds=20_000).users) == 200


def test_the_fraud_bot_clicks_whatever_it_is_shown_and_is_not_measured():
    world = Fraud(100, 20, seed=4, bot_share=0.1)
    visits = [world.next_visit()[0] for _ in range(3000)]
    assert 0.07 < visits.count(world.bot) / 3000 < 0.13
    assert world.click_probabilities(world.bot, 0).min() == 0.9
    rewards = simulate(Fraud(100, 20, seed=4), 500, lambda *_: "sim-0", lambda *_: None)
    assert 0 < np.isnan(rewards).sum() < 100  # the bot's rounds are left out of the click-through rate


def test_unknown_world_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown world 'moon'"):
        make_world("moon", 100, None, 0, 100)


def test_the_tutorial_vowpal_wabbit_baseline_learns():
    world = make_world("default", 40, 5, seed=5, rounds=1500)
    tutorial = TutorialVW(world, 5)
    rewards = simulate(world, 1500, tutorial.recommend, tutorial.feedback)
    uniform_world = make_world("default", 40, 5, seed=5, rounds=1500)
    uniform = UniformRandom(uniform_world, 5)
    assert rewards[750:].mean() > simulate(uniform_world, 1500, uniform.recommend, uniform.feedback)[750:].mean() + 0.05
