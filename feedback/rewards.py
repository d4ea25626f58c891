"""Reward rules: which rewards a logged decision accepts, and how each shown slot gets its one learned reward.

A slot (an item shown in a decision) is learned exactly once, with its final reward, because a bandit cannot
unlearn: with `earliest`, the first reward is final and is learned on arrival; with `sum` and `capped`, the
rewards are added up until the reward wait ends, and the total is learned then. A slot nobody rewarded learns
the default reward when the wait ends. Whatever arrives after that is late: kept and counted, never learned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Aggregation = Literal["earliest", "sum", "capped"]


@dataclass(frozen=True)
class RewardRules:
    minimum: float = 0.0
    maximum: float = 1.0
    default: float = 0.0
    aggregation: Aggregation = "earliest"
    wait: timedelta = timedelta(seconds=600)  # then the slot's reward is final
    window: timedelta = timedelta(days=1)  # rewards for older decisions are refused


@dataclass(frozen=True)
class LoggedDecision:
    """What the rules need to know of a logged decision."""

    created_at: datetime
    shown: Sequence[str]  # item ids in slot order
    deferred: bool = False
    activated_at: datetime | None = None
    settled: bool = False


class Refused(ValueError):
    """A reward the decision does not accept; `status` is the HTTP status that says why."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def check(rules: RewardRules, decision: LoggedDecision, value: float, item_id: str | None, now: datetime) -> str:
    """The item the reward is for (the first slot's unless named), or `Refused`."""
    if not (math.isfinite(value) and rules.minimum <= value <= rules.maximum):
        raise Refused(422, "reward_out_of_range", f"reward must lie in [{rules.minimum:g}, {rules.maximum:g}]")
    if now - decision.created_at > rules.window:
        raise Refused(410, "event_expired", f"the event is older than the reward window ({rules.window.total_seconds():g} s)")
    if decision.deferred and decision.activated_at is None:
        raise Refused(409, "event_not_activated", "the event was deferred and has not been activated")
    if not decision.shown:
        raise Refused(422, "item_not_shown", "the event showed no items")
    if item_id is None:
        return decision.shown[0]
    if item_id not in decision.shown:
        raise Refused(422, "item_not_shown", f"item {item_id!r} was not recommended in this event")
    return item_id


def on_arrival(rules: RewardRules, decision: LoggedDecision, slot_learned: bool, value: float) -> tuple[float | None, bool]:
    """(what the learner learns from this reward now, or None; whether it is late)."""
    if decision.settled:
        return None, True
    if rules.aggregation == "earliest" and not slot_learned:
        return value, False
    return None, False


def final_reward(rules: RewardRules, received: Sequence[float], slot_learned: bool) -> tuple[float, bool] | None:
    """The slot's reward when its wait ends, as (value, is the default), or None when it was learned already."""
    if slot_learned:
        return None
    if not received:
        return rules.default, True
    if rules.aggregation == "earliest":
        return received[0], False
    total = math.fsum(received)
    return (min(total, rules.maximum) if rules.aggregation == "capped" else total), False


def due_at(rules: RewardRules, decision: LoggedDecision) -> datetime | None:
    """When the slots' rewards become final: the wait after the decision (after its activation when deferred);
    None for a deferred decision never activated, which is never learned."""
    if decision.deferred:
        return None if decision.activated_at is None else decision.activated_at + rules.wait
    return decision.created_at + rules.wait


def can_activate(rules: RewardRules, created_at: datetime, now: datetime) -> bool:
    """A deferred decision can be activated while rewards for it are still accepted."""
    return now - created_at <= rules.window
