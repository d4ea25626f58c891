"""The pure reward rules: which rewards a decision accepts, what is learned on arrival and at settlement."""

from datetime import UTC, datetime, timedelta

import pytest

from feedback.rewards import LoggedDecision, Refused, RewardRules, check, due_at, final_reward, on_arrival

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
RULES = RewardRules(minimum=0.0, maximum=1.0, default=0.0, wait=timedelta(seconds=600), window=timedelta(days=1))
SHOWN = LoggedDecision(created_at=T0, shown=["a", "b", "c"])


def refusal(decision, value=1.0, item_id=None, now=T0 + timedelta(seconds=1), rules=RULES) -> tuple[int, str]:
    with pytest.raises(Refused) as exc:
        check(rules, decision, value, item_id, now)
    return exc.value.status, exc.value.code


@pytest.mark.parametrize("value", [-0.01, 1.01, float("nan"), float("inf"), float("-inf")])
def test_values_outside_the_range_are_refused(value):
    assert refusal(SHOWN, value) == (422, "reward_out_of_range")


@pytest.mark.parametrize("value", [0.0, 1.0, 0.5])
def test_values_within_the_range_are_accepted_for_the_first_slot_by_default(value):
    assert check(RULES, SHOWN, value, None, T0) == "a"


def test_a_reward_older_than_the_window_is_410_and_one_at_the_window_is_accepted():
    assert refusal(SHOWN, now=T0 + RULES.window + timedelta(seconds=1)) == (410, "event_expired")
    assert check(RULES, SHOWN, 1.0, "b", T0 + RULES.window) == "b"


def test_a_deferred_decision_not_activated_is_409_and_accepts_once_activated():
    deferred = LoggedDecision(created_at=T0, shown=["a"], deferred=True)
    assert refusal(deferred) == (409, "event_not_activated")
    activated = LoggedDecision(created_at=T0, shown=["a"], deferred=True, activated_at=T0 + timedelta(seconds=5))
    assert check(RULES, activated, 1.0, None, T0 + timedelta(seconds=6)) == "a"


def test_an_item_that_was_not_shown_is_refused():
    assert refusal(SHOWN, item_id="z") == (422, "item_not_shown")
    assert refusal(LoggedDecision(created_at=T0, shown=[])) == (422, "item_not_shown")
    assert check(RULES, SHOWN, 1.0, "c", T0) == "c"


def test_earliest_learns_the_first_reward_of_a_slot_and_not_the_later_ones():
    rules = RewardRules(aggregation="earliest")
    assert on_arrival(rules, SHOWN, slot_learned=False, value=0.75) == (0.75, False)
    assert on_arrival(rules, SHOWN, slot_learned=True, value=0.5) == (None, False)


@pytest.mark.parametrize("aggregation", ["sum", "capped"])
def test_sum_and_capped_learn_nothing_on_arrival(aggregation):
    rules = RewardRules(aggregation=aggregation)
    assert on_arrival(rules, SHOWN, slot_learned=False, value=0.75) == (None, False)


@pytest.mark.parametrize("aggregation", ["earliest", "sum", "capped"])
def test_a_reward_for_a_settled_decision_is_late_and_not_learned(aggregation):
    settled = LoggedDecision(created_at=T0, shown=["a"], settled=True)
    assert on_arrival(RewardRules(aggregation=aggregation), settled, slot_learned=False, value=1.0) == (None, True)


@pytest.mark.parametrize("aggregation", ["earliest", "sum", "capped"])
def test_a_slot_nobody_rewarded_learns_the_default(aggregation):
    rules = RewardRules(default=0.25, aggregation=aggregation)
    assert final_reward(rules, [], slot_learned=False) == (0.25, True)


def test_final_reward_per_aggregation():
    received = [0.75, 0.5]  # sums to 1.25, above the maximum of 1.0
    assert final_reward(RewardRules(aggregation="sum"), received, False) == (1.25, False)
    assert final_reward(RewardRules(aggregation="capped", maximum=1.0), received, False) == (1.0, False)
    assert final_reward(RewardRules(aggregation="capped", maximum=2.0), received, False) == (1.25, False)
    assert final_reward(RewardRules(aggregation="earliest"), received, False) == (0.75, False)


@pytest.mark.parametrize("aggregation", ["earliest", "sum", "capped"])
def test_a_slot_learned_already_gets_no_final_reward(aggregation):
    assert final_reward(RewardRules(aggregation=aggregation), [0.75], slot_learned=True) is None


def test_due_at_is_the_wait_after_the_decision_or_its_activation():
    assert due_at(RULES, SHOWN) == T0 + RULES.wait
    activated_at = T0 + timedelta(hours=2)
    assert due_at(RULES, LoggedDecision(T0, ["a"], deferred=True, activated_at=activated_at)) == activated_at + RULES.wait
    assert due_at(RULES, LoggedDecision(T0, ["a"], deferred=True)) is None
