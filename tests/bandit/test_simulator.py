import numpy as np

from bandit.simulator import CONTEXTS, Ceiling, Oracle, Popularity, UniformRandom, World, ctr_curve, gap_closed, simulate


def test_the_world_is_reproducible_and_preferences_depend_on_context():
    a, b = World(200, 20, seed=3), World(200, 20, seed=3)
    assert [i.title for i in a.items] == [i.title for i in b.items]
    p = np.array([a.click_probabilities(0, c) for c in range(len(CONTEXTS))])
    assert not np.allclose(p[0], p[3])  # the same user prefers other items on another device and time
    assert int(np.argmax(p[0])) != int(np.argmax(a.click_probabilities(1, 0))) or a._kind[0] == a._kind[1]


def test_reference_policies_are_ordered_as_expected():
    results = {}
    for name, make in (("uniform", UniformRandom), ("popularity", Popularity), ("oracle", Oracle)):
        world = World(200, 30, seed=1)
        policy = make(world) if make is Oracle else make(world, 1)
        results[name] = simulate(world, 3000, policy.recommend, policy.feedback)[1500:].mean()
    assert results["uniform"] < results["popularity"] < results["oracle"]
    assert results["oracle"] > 0.5 and results["uniform"] < 0.15


class QualityBlind(Ceiling):
    def feedback(self, *_):  # never learns which items are good: its quality draws stay the prior's
        pass


def test_the_ceiling_learns_item_quality_and_stays_below_the_oracle():
    """Told the tastes, it must still find the good items, which it learns from its own clicks."""
    last_quarter = {}
    for name, make in (("uniform", UniformRandom), ("blind", QualityBlind), ("ceiling", Ceiling), ("oracle", Oracle)):
        world = World(400, 30, seed=2)
        policy = make(world) if make is Oracle else make(world, 2)
        last_quarter[name] = simulate(world, 6000, policy.recommend, policy.feedback)[4500:].mean()
    assert last_quarter["uniform"] < last_quarter["blind"] < last_quarter["ceiling"] - 0.02 < last_quarter["oracle"] - 0.06


def test_gap_closed_and_curves():
    assert gap_closed(0.5, 0.1, 0.9) == 0.5
    assert ctr_curve(np.array([0, 1] * 10), buckets=2) == [0.5, 0.5]
