import numpy as np
import pytest

from bandit.exploration import EpsilonGreedy, Softmax, SquareCB, exploration_from
from bandit.features import Candidate, Shared, example
from bandit.policy import PolicyConfig, VWPolicy, fill_slots


def candidates(n: int = 12) -> list[Candidate]:
    return [Candidate(f"item-{i}", f"cat{i % 4}", (f"tag{i % 3}",), similarity=0.5, q=0.0) for i in range(n)]


def train(policy: VWPolicy, rounds: int = 1500, seed: int = 0) -> None:
    """Users u0..u3 each like one category; a reward of 1 only for it."""
    rng = np.random.default_rng(seed)
    items = candidates()
    for _ in range(rounds):
        u = int(rng.integers(4))
        shared = Shared(f"u{u}", {"device": "mobile"}, hour=9, weekday=2)
        choice = policy.choose(shared, items, 1, rng)
        position = choice.positions[0]
        policy.learn(shared, items, position, float(items[position].category == f"cat{u}"), choice.probabilities[0])


@pytest.mark.parametrize("exploration", [EpsilonGreedy(0.1), Softmax(5.0), SquareCB(10.0)])
def test_the_distribution_sums_to_one_and_slots_are_distinct(exploration):
    policy = VWPolicy(PolicyConfig(exploration=exploration), seed=1)
    train(policy, 300)
    choice = policy.choose(Shared("u1"), candidates(), 5, np.random.default_rng(0))
    assert sum(choice.pmf) == pytest.approx(1.0)
    assert len(set(choice.positions)) == 5
    assert all(0 < p <= 1 for p in choice.probabilities)


def test_first_slot_probability_is_the_policy_probability():
    policy = VWPolicy(seed=1)
    train(policy, 300)
    choice = policy.choose(Shared("u2"), candidates(), 3, np.random.default_rng(4))
    assert choice.probabilities[0] == pytest.approx(choice.pmf[choice.positions[0]])


def test_slot_probabilities_match_sampling_frequencies():
    pmf = np.array([0.5, 0.3, 0.2])
    rng = np.random.default_rng(0)
    seen = {}
    for _ in range(4000):
        positions, probabilities = fill_slots(pmf, 2, rng)
        seen[tuple(positions)] = probabilities
    counts = {}
    rng = np.random.default_rng(1)
    for _ in range(20000):
        key = tuple(fill_slots(pmf, 2, rng)[0])
        counts[key] = counts.get(key, 0) + 1
    for key, probabilities in seen.items():
        assert counts[key] / 20000 == pytest.approx(np.prod(probabilities), abs=0.015)


def test_zero_mass_candidates_come_last_and_share_the_remaining_slots_evenly():
    rng = np.random.default_rng(0)
    firsts, lasts = set(), {}
    for _ in range(400):
        positions, probabilities = fill_slots(np.array([0.0, 0.6, 0.0, 0.4]), 4, rng)
        assert set(positions[:2]) == {1, 3} and probabilities[2:] == [0.5, 1.0]
        assert probabilities[1] == pytest.approx(1.0)
        firsts.add(positions[0])
        lasts[positions[3]] = lasts.get(positions[3], 0) + 1
    assert firsts == {1, 3} and lasts[0] == pytest.approx(200, abs=40)


def test_learning_is_real_each_user_gets_their_category():
    policy = VWPolicy(PolicyConfig(exploration=EpsilonGreedy(0.05)), seed=3)
    train(policy)
    for u in range(4):
        pmf = policy.distribution(Shared(f"u{u}", {"device": "mobile"}, 9, 2), candidates())
        assert candidates()[int(np.argmax(pmf))].category == f"cat{u}"
        assert max(pmf) >= 0.9


def test_explanations_name_the_features_behind_the_score():
    policy = VWPolicy(seed=3)
    train(policy)
    shared = Shared("u1", {"device": "mobile"}, 9, 2)
    liked, other = candidates()[1], candidates()[2]
    (score_liked, why), (score_other, _) = policy.explain(shared, liked), policy.explain(shared, other)
    assert score_liked > score_other + 0.1
    assert len(why) == 3 and any("c=cat1" in part["feature"] and part["contribution"] > 0 for part in why)


def test_an_untrained_model_scores_zero_not_negative_zero():
    choice = VWPolicy(seed=3).choose(Shared("u1"), candidates(), 3, np.random.default_rng(0))
    assert all(str(score) == "0.0" for score in choice.scores)  # "-0.0" in an API answer puzzles people


def test_choices_carry_the_expected_reward_the_explanations_add_up_to():
    policy = VWPolicy(seed=3)
    train(policy)
    shared = Shared("u1", {"device": "mobile"}, 9, 2)
    choice = policy.choose(shared, candidates(), 3, np.random.default_rng(0))
    assert choice.scores == pytest.approx([policy.explain(shared, c, top=0)[0] for c in candidates()], abs=1e-5)
    assert max(choice.scores) > min(choice.scores) + 0.1


@pytest.mark.parametrize("exploration", [EpsilonGreedy(0.1), Softmax(5.0)])
def test_learning_from_the_chosen_candidate_alone_gives_the_same_model(exploration):
    """With MTR only the chosen candidate is regressed on, so the learner skips the other 99 (they are stood
    in for by empty lines); the model must come out exactly as if it had learned the whole decision."""
    alone, whole = (VWPolicy(PolicyConfig(exploration=exploration), seed=1) for _ in range(2))
    assert alone._learns_from_chosen_alone
    whole._learns_from_chosen_alone = False
    rng = np.random.default_rng(0)
    for r in range(400):
        shared = Shared(f"u{r % 7}", {"device": ["mobile", "desktop"][r % 2]}, r % 24, r % 7)
        items = [
            Candidate(
                f"i{rng.integers(60)}",
                f"cat{rng.integers(6)}",
                (f"t{rng.integers(9)}",),
                float(rng.random()),
                float(rng.random()),
            )
            for _ in range(int(rng.integers(5, 40)))
        ]
        position, reward, probability = int(rng.integers(len(items))), float(rng.random() < 0.4), float(rng.uniform(0.01, 1))
        for policy in (alone, whole):
            policy.learn(shared, items, position, reward, probability)
    for u in range(7):
        shared = Shared(f"u{u}", {"device": "mobile"}, 9, 2)
        a, w = alone.predict(shared, candidates(30)), whole.predict(shared, candidates(30))
        assert np.array_equal(a.scores, w.scores) and np.array_equal(a.pmf, w.pmf)
    assert np.ptp(a.scores) > 0.05  # it did learn something


def test_squarecb_learns_from_whole_decisions():
    assert not VWPolicy(PolicyConfig(exploration=SquareCB(10.0)))._learns_from_chosen_alone
    assert not VWPolicy(PolicyConfig(cb_type="dr"))._learns_from_chosen_alone


def test_a_saved_model_predicts_the_same():
    policy = VWPolicy(seed=2)
    train(policy, 500)
    copy = VWPolicy(policy.config, seed=2, model=policy.to_bytes())
    shared = Shared("u3", {"device": "mobile"}, 9, 2)
    assert np.allclose(copy.distribution(shared, candidates()), policy.distribution(shared, candidates()))


def test_config_round_trips_through_a_dict():
    config = PolicyConfig(exploration=Softmax(3.0), bits=16)
    assert PolicyConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown exploration"):
        exploration_from("thompson")


def test_examples_escape_what_vw_would_misread():
    lines = example(Shared("user 1|x", {"page": "a:b"}), [Candidate("id 2", "c|d", ("t t",))], (0, -1.0, 0.5))
    assert lines[0].startswith("shared |U u=user_1_x |C page=a_b")
    assert lines[1].startswith("0:-1:0.5 |I i=id_2 |G c=c_d t=t_t")


def test_explanations_add_up_to_the_score_vw_computes_including_cubic_crosses():
    """The weights `explain` reads are the ones VW uses: replay the same hashing and compare with VW's own
    scores from a --cb_adf workspace (scores, not a distribution) with the same features and crosses."""
    import vowpalwabbit

    config = PolicyConfig()
    assert config.cubics == ("CCG",)
    vw = vowpalwabbit.Workspace(
        config.vw_args(0).replace("--cb_explore_adf", "--cb_adf").replace(config.exploration.vw_args(), "")
    )
    rng = np.random.default_rng(0)
    items = [Candidate(f"i{n}", f"cat{n % 4}", (f"t{n % 3}", "x"), 0.3 * n, 0.1) for n in range(6)]
    for r in range(300):
        shared = Shared(
            f"u{r % 5}",
            {"device": ["mobile", "desktop"][r % 2], "daypart": ["am", "pm"][r % 3 % 2], "age": 30 + r % 7},
            r % 24,
            r % 7,
        )
        vw.learn(example(shared, items, (int(rng.integers(6)), -float(rng.random() < 0.5), 1 / 6)))
    policy = VWPolicy(config)
    policy._vw, policy._mask = vw, vw.num_weights() - 1
    shared = Shared("u1", {"device": "mobile", "daypart": "am", "age": 33}, 9, 2)
    scores = [-cost for cost in vw.predict(example(shared, items))]
    assert [policy.explain(shared, c)[0] for c in items] == pytest.approx(scores, abs=1e-5)
    assert any("daypart=am × device=mobile × " in part["feature"] for c in items for part in policy.explain(shared, c, top=50)[1])


def test_slot_probabilities_never_exceed_one_despite_rounding():
    rng = np.random.default_rng(3)
    for _ in range(200):
        pmf = rng.dirichlet(np.full(100, 0.05))  # mass piled on a few candidates, as a trained model's is
        _, probabilities = fill_slots(pmf, 100, rng)
        assert max(probabilities) <= 1.0


def test_a_model_with_poisoned_weights_refuses_to_rank_rather_than_answer_nan():
    from bandit.policy import NonFiniteModel

    policy = VWPolicy(PolicyConfig(), seed=1)
    candidates = [Candidate(f"i{n}", "books", ("t",), 0.5, 0.0) for n in range(5)]
    for index in range(policy._vw.num_weights()):
        if policy._vw.get_weight(index) == 0.0:
            policy._vw.set_weight(index, 0, float("nan"))
    with pytest.raises(NonFiniteModel):
        policy.choose(Shared("u", {"device": "mobile"}), candidates, 3, np.random.default_rng(0))
