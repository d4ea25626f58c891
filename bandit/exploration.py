"""Exploration strategies, each expressed as Vowpal Wabbit arguments for --cb_explore_adf."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EpsilonGreedy:
    epsilon: float = 0.02  # with the same policy, 0.05 closed 57% of the simulator's gap, 0.02 67% (docs/benchmarks.md)

    def vw_args(self) -> str:
        return f"--epsilon {self.epsilon}"


@dataclass(frozen=True)
class Softmax:
    lam: float = 10.0  # inverse temperature: higher is greedier

    def vw_args(self) -> str:
        return f"--softmax --lambda {self.lam}"


@dataclass(frozen=True)
class SquareCB:
    gamma_scale: float = 10.0

    def vw_args(self) -> str:
        return f"--squarecb --gamma_scale {self.gamma_scale}"


Exploration = EpsilonGreedy | Softmax | SquareCB


def exploration_from(name: str, parameter: float | None = None) -> Exploration:
    """'epsilon' / 'softmax' / 'squarecb', with the strategy's one parameter when given."""
    kinds = {"epsilon": EpsilonGreedy, "softmax": Softmax, "squarecb": SquareCB}
    if name not in kinds:
        raise ValueError(f"unknown exploration {name!r}; choose one of {', '.join(kinds)}")
    return kinds[name]() if parameter is None else kinds[name](parameter)
