"""The contextual bandit: Vowpal Wabbit --cb_explore_adf over retrieved candidates.

`choose` fills k slots by sampling without replacement from the policy's distribution and
returns each slot's probability, which is what off-policy evaluation needs. `learn` takes
a reward (cost = −reward). A workspace is not thread-safe; callers serialise access.
"""

from __future__ import annotations

import functools
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pylibvw
import vowpalwabbit

from bandit.exploration import EpsilonGreedy, Exploration, SquareCB, exploration_from
from bandit.features import Candidate, Shared, action_features, example, shared_features

FNV_PRIME = 16777619  # VW hashes a quadratic feature as (h1 * FNV_PRIME) ^ h2
CONSTANT_HASH = 11650396
# User × item groups and context × item groups, and pairs of context fields × item groups, so that a taste
# that depends on two fields at once (a format people want on mobile in the morning) can be learned. Activity ×
# item groups lets a user's recent categories lift those categories' items (a VW-only simulation of 5,000 users
# with four visits each: last-quarter CTR 0.28 against 0.08 without; no effect at all without interaction events,
# when namespace A is empty).
# Crossing time, item ids or retrieval scores diluted learning in the simulator (docs/benchmarks.md), so they
# enter linearly.
DEFAULT_INTERACTIONS = ("UG", "CG", "AG")
DEFAULT_CUBICS = ("CCG",)


class NonFiniteModel(ArithmeticError):
    """The model predicts NaN or infinity (its weights were poisoned): it must not rank anything."""


@dataclass(frozen=True)
class Choice:
    positions: list[int]  # candidate positions, in slot order
    probabilities: list[float]  # probability with which each slot got its candidate
    pmf: list[float]  # the policy's distribution over all candidates for the first slot
    scores: list[float]  # the model's expected reward for every candidate


@dataclass(frozen=True)
class Prediction:
    pmf: np.ndarray
    scores: np.ndarray  # expected reward per candidate (VW predicts costs; reward = −cost)


@dataclass(frozen=True)
class PolicyConfig:
    exploration: Exploration = EpsilonGreedy()
    interactions: tuple[str, ...] = DEFAULT_INTERACTIONS
    cubics: tuple[str, ...] = DEFAULT_CUBICS
    bits: int = 18
    learning_rate: float = 4.0
    cb_type: str = "mtr"
    # Importance weights are capped at 1/clip_p: an explored candidate (p = epsilon/N) would otherwise count
    # thousands of times and swamp what the greedy choices taught (docs/benchmarks.md: simulation).
    clip_p: float = 0.1

    @property
    def runnable(self) -> bool:
        """Vowpal Wabbit's SquareCB learns with cb_type mtr only; it refuses any other."""
        return self.cb_type == "mtr" or not isinstance(self.exploration, SquareCB)

    def to_dict(self) -> dict:
        kind = {"EpsilonGreedy": "epsilon", "Softmax": "softmax", "SquareCB": "squarecb"}[type(self.exploration).__name__]
        return {
            "exploration": kind,
            "exploration_parameter": next(iter(vars(self.exploration).values())),
            "interactions": list(self.interactions),
            "cubics": list(self.cubics),
            "bits": self.bits,
            "learning_rate": self.learning_rate,
            "cb_type": self.cb_type,
            "clip_p": self.clip_p,
        }

    @classmethod
    def from_dict(cls, d: dict) -> PolicyConfig:
        """The settings of a model archive, checked against an allow-list before any of them reaches Vowpal
        Wabbit: they become its command line (`vw_args`), where a crafted string would pass options of its own
        (`--readable_model /path` writes files). Raises ValueError naming the setting."""
        if not isinstance(d, dict):
            raise ValueError(f"the policy settings must be an object, not {type(d).__name__}")
        unknown = sorted(map(str, set(d) - _SETTINGS))
        if unknown:
            raise ValueError(f"unknown policy setting {', '.join(map(repr, unknown))}")
        missing = sorted({"exploration", "interactions", "bits", "learning_rate"} - set(d))
        if missing:
            raise ValueError(f"missing policy setting {', '.join(map(repr, missing))}")
        exploration = d["exploration"]
        if exploration not in _EXPLORATIONS:
            raise ValueError(f"exploration must be one of {', '.join(_EXPLORATIONS)}, not {exploration!r}")
        parameter = d.get("exploration_parameter")
        if parameter is not None:
            if exploration == "epsilon":
                parameter = _number("exploration_parameter", parameter, lambda v: 0 < v <= 1, "in (0, 1]")
            else:
                parameter = _number("exploration_parameter", parameter, lambda v: v > 0, "above 0")
        cb_type = d.get("cb_type", "mtr")
        if cb_type not in _CB_TYPES:
            raise ValueError(f"cb_type must be one of {', '.join(_CB_TYPES)}, not {cb_type!r}")
        bits = d["bits"]
        # 2^30 weights are 4 GiB of floats at the least (more with each weight's learning state): an archive
        # must not make every worker that loads it allocate more than that. The default is 18.
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= MAX_BITS:
            raise ValueError(f"bits must be a whole number from 1 to {MAX_BITS}, not {bits!r}")
        config = cls(
            exploration=exploration_from(exploration, parameter),
            interactions=_crossings("interactions", d["interactions"], 2),
            cubics=_crossings("cubics", d.get("cubics", []), 3),
            bits=bits,
            learning_rate=_number("learning_rate", d["learning_rate"], lambda v: 0 < v <= 1000, "in (0, 1000]"),
            cb_type=cb_type,
            clip_p=_number("clip_p", d.get("clip_p", 0.0), lambda v: 0 <= v < 1, "in [0, 1)"),
        )
        if not config.runnable:
            raise ValueError(f"squarecb exploration learns with cb_type mtr only, not {cb_type!r}")
        return config

    def vw_args(self, seed: int) -> str:
        crosses = " ".join([f"-q {pair}" for pair in self.interactions] + [f"--cubic {triple}" for triple in self.cubics])
        return (
            f"--cb_explore_adf --cb_type {self.cb_type} --clip_p {self.clip_p} --quiet -b {self.bits} -l {self.learning_rate} "
            f"{crosses} {self.exploration.vw_args()} --random_seed {seed}"
        )


_SETTINGS = {"exploration", "exploration_parameter", "interactions", "cubics", "bits", "learning_rate", "cb_type", "clip_p"}
_EXPLORATIONS = ("epsilon", "softmax", "squarecb")
_CB_TYPES = ("mtr", "ips", "dr")
NAMESPACES = frozenset("UCTAIGS")  # bandit/features.py: shared U, C, T, A; per candidate I, G, S
MAX_BITS = 30


def _number(name: str, value: object, within: Callable[[float], bool], described: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and within(value)):
        raise ValueError(f"{name} must be a finite number {described}, not {value!r}")
    return float(value)


def _crossings(name: str, value: object, size: int) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list, not {type(value).__name__}")
    for crossing in value:
        if not (isinstance(crossing, str) and len(crossing) == size and set(crossing) <= NAMESPACES):
            raise ValueError(
                f"{name} must be strings of {size} namespace letters from {''.join(sorted(NAMESPACES))}, not {crossing!r}"
            )
    return tuple(value)


class VWPolicy:
    def __init__(self, config: PolicyConfig = PolicyConfig(), seed: int = 0, model: bytes | None = None):
        self.config = config
        self.seed = seed
        args = config.vw_args(seed)
        if model is None:
            self._vw = vowpalwabbit.Workspace(args)
        else:
            self._vw = _load(model, args)
        self._mask = self._vw.num_weights() - 1
        self._hashes: dict[tuple[str, str], int] = {}  # feature hashes depend only on the name and namespace
        self._learns_from_chosen_alone = config.cb_type == "mtr" and not isinstance(config.exploration, SquareCB)

    def choose(self, shared: Shared, candidates: Sequence[Candidate], k: int, rng: np.random.Generator) -> Choice:
        prediction = self.predict(shared, candidates)
        positions, probabilities = fill_slots(prediction.pmf, k, rng)
        return Choice(positions, probabilities, prediction.pmf.tolist(), prediction.scores.tolist())

    def distribution(self, shared: Shared, candidates: Sequence[Candidate]) -> np.ndarray:
        return self.predict(shared, candidates).pmf

    def predict(self, shared: Shared, candidates: Sequence[Candidate]) -> Prediction:
        examples = self._parse(example(shared, candidates))
        try:
            pylibvw.vw.predict_multi(self._vw, examples)
            pmf = np.asarray(examples[0].get_action_scores(), dtype=np.float64)
            costs = np.fromiter((ex.get_partial_prediction() for ex in examples[1:]), dtype=np.float64, count=len(candidates))
        finally:
            pylibvw.vw._finish_example_multi_ex(self._vw, examples)
        if not (np.isfinite(costs).all() and np.isfinite(pmf).all() and pmf.sum() > 0):
            raise NonFiniteModel("the model's predictions are not finite numbers")
        return Prediction(pmf / pmf.sum(), 0.0 - costs)  # not -costs: an untrained model would answer -0.0

    def learn(self, shared: Shared, candidates: Sequence[Candidate], position: int, reward: float, probability: float) -> None:
        cost, probability = -reward, max(probability, 1e-6)
        if self._learns_from_chosen_alone:
            # MTR regresses on the chosen candidate alone; VW scales its importance weight by the number of
            # candidates, so empty lines stand in for the others. The model comes out the same, bit for bit
            # (tests/bandit), and learning costs a fraction.
            lines = example(shared, [candidates[position]], (0, cost, probability)) + ["|"] * (len(candidates) - 1)
        else:
            lines = example(shared, candidates, (position, cost, probability))
        examples = self._parse(lines)
        try:
            pylibvw.vw.learn_multi(self._vw, examples)
        finally:
            pylibvw.vw._finish_example_multi_ex(self._vw, examples)

    def explain(self, shared: Shared, candidate: Candidate, top: int = 3) -> tuple[float, list[dict]]:
        """The model's expected reward for the candidate and the features that contributed most to it."""
        hashed = {
            ns: [(name, value, self._hash(ns, name)) for name, value in features]
            for namespaces in (shared_features(shared), action_features(candidate))
            for ns, features in namespaces.items()
        }
        parts = [(name, value * self._weight(h)) for feats in hashed.values() for name, value, h in feats]
        for namespaces in self.config.interactions + self.config.cubics:
            for crossed in _crosses([hashed.get(ns, []) for ns in namespaces], namespaces):
                names, values, hashes = zip(*crossed)
                h = hashes[0]
                for nxt in hashes[1:]:
                    h = ((h * FNV_PRIME) ^ nxt) & 0xFFFFFFFF
                parts.append((" × ".join(names), math.prod(values) * self._weight(h)))
        cost = sum(c for _, c in parts) + self._weight(CONSTANT_HASH)
        ranked = sorted((p for p in parts if p[1] != 0.0), key=lambda p: -abs(p[1]))[:top]
        return -cost, [{"feature": name, "contribution": round(-c, 4)} for name, c in ranked]

    def to_bytes(self) -> bytes:
        fd, path = tempfile.mkstemp(suffix=".vw")
        os.close(fd)
        try:
            self._vw.save(path)
            with open(path, "rb") as f:
                return f.read()
        finally:
            os.unlink(path)

    def _parse(self, lines: list[str]) -> list[pylibvw.example]:
        # pyvw would wrap each parsed line in a Python Example (2 µs apiece, over 100 per decision); the
        # native examples serve predict, learn and finish alike, which is all pyvw does with them.
        return self._vw._parse("\n".join(lines))

    def _hash(self, ns: str, name: str) -> int:
        key = (ns, name)
        if key not in self._hashes:
            if len(self._hashes) > 1_000_000:
                self._hashes.clear()
            self._hashes[key] = self._vw.hash_feature(name, self._vw.hash_space(ns))
        return self._hashes[key]

    def _weight(self, h: int) -> float:
        return self._vw.get_weight(h & self._mask)


def _crosses(features: list[list[tuple]], namespaces: str) -> list[tuple]:
    """The feature tuples VW forms for one interaction: every combination across the namespaces, and where a
    namespace repeats, each unordered pair of its features once (VW skips the mirrored duplicates)."""
    combos: list[tuple] = [()]
    for n, feats in enumerate(features):
        repeats = n > 0 and namespaces[n] == namespaces[n - 1]
        combos = [
            combo + (f,) for combo in combos for i, f in enumerate(feats) if not repeats or i >= features[n - 1].index(combo[-1])
        ]
    return combos


def fill_slots(pmf: np.ndarray, k: int, rng: np.random.Generator) -> tuple[list[int], list[float]]:
    """Sample k distinct positions as drawing one slot at a time from the remaining mass would, in one
    vectorised draw (Gumbel-top-k); slot j's probability is its candidate's mass over what remained.
    Once only zero-mass candidates are left, they share the remaining slots evenly."""
    pmf = np.asarray(pmf, dtype=np.float64)
    gumbel = rng.gumbel(size=len(pmf))
    with np.errstate(divide="ignore"):
        keys = np.log(pmf) + gumbel  # −inf for zero mass, ordered among themselves by the noise alone
    order = np.lexsort((-gumbel, -keys))[: min(k, len(pmf))]
    remaining, zero_left = float(pmf.sum()), int(np.count_nonzero(pmf <= 0))
    positions, probabilities = [], []
    for position in order.tolist():
        mass = float(pmf[position])
        if mass > 0:
            probabilities.append(min(1.0, mass / remaining))  # rounding in `remaining` can overshoot 1 by 1e-14
            remaining -= mass
        else:
            probabilities.append(1.0 / zero_left)
            zero_left -= 1
        positions.append(position)
    return positions, probabilities


def _load(model: bytes, args: str) -> vowpalwabbit.Workspace:
    """A workspace from a saved model, refused when the model file brought options of its own: VW keeps some
    options inside the model file and applies them on load (a model saved with `--ignore S` ignores the
    similarity features of whoever loads it), so what is loaded must run with exactly the options `args` give."""
    fd, path = tempfile.mkstemp(suffix=".vw")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(model)
        workspace = vowpalwabbit.Workspace(f"{args} -i {path}")
    finally:
        os.unlink(path)
    carried = sorted(set(_options(workspace.get_arguments())) - set(_expected_options(args)))
    if carried:
        workspace.finish()
        raise ValueError(f"the model file carries options of its own: {' '.join(carried)}")
    return workspace


def _options(arguments: str) -> list[str]:
    """VW's effective arguments as "--name value" strings, without the ones that only say how it was started."""
    tokens, options = arguments.split(), []
    for n, t in enumerate(tokens):
        if t.startswith("--"):
            value = tokens[n + 1] if n + 1 < len(tokens) and not tokens[n + 1].startswith("--") else ""
            options.append(f"{t} {value}".strip())
    return [o for o in options if not o.startswith(("--initial_regressor", "--no_predict"))]


@functools.lru_cache(maxsize=8)
def _expected_options(args: str) -> tuple[str, ...]:
    workspace = vowpalwabbit.Workspace(args)
    try:
        return tuple(_options(workspace.get_arguments()))
    finally:
        workspace.finish()
