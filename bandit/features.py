"""Decisions as Vowpal Wabbit multiline examples: one `shared` line, one line per candidate.

Shared namespaces: U (user), C (context), T (time), A (the user's windowed activity,
feedback.windows.features). Action namespaces: I (item id), G (category and tags), S (retrieval
similarity, the item's Q-value and its last-hour activity). The policy's interactions (-q) cross
the shared namespaces with the item ones.

Activity is part of what is logged (`to_dict`), so that learning and retraining replay the features serving
saw, not a recount made later. Zero-valued activity features are left out of the lines: Vowpal Wabbit drops
them anyway, and a user or item without activity adds nothing to parse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

Scalar = str | int | float | bool
_UNSAFE = re.compile(r"[\s|:]+")


def token(value: object) -> str:
    """A feature name VW can parse: no spaces, pipes or colons."""
    return _UNSAFE.sub("_", str(value)) or "_"


@dataclass(frozen=True)
class Candidate:
    """What the policy knows of an item when it ranks it; stored with the decision so it can be learned again."""

    id: str
    category: str | None = None
    tags: tuple[str, ...] = ()
    similarity: float = 0.0
    q: float = 0.0
    activity: tuple[tuple[str, float], ...] = ()  # (feature, value) pairs, non-zero only

    def to_dict(self) -> dict:
        d = {"id": self.id, "category": self.category, "tags": list(self.tags), "similarity": self.similarity, "q": self.q}
        if self.activity:  # most items had no recent events: no empty dict for each of a hundred candidates
            d["activity"] = dict(self.activity)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> Candidate:
        return cls(
            d["id"],
            d.get("category"),
            tuple(d.get("tags", ())),
            float(d.get("similarity", 0.0)),
            float(d.get("q", 0.0)),
            tuple((name, float(value)) for name, value in d.get("activity", {}).items()),
        )


class LoggedCandidates(Sequence[Candidate]):
    """The candidates stored with a decision, made into `Candidate`s only as they are read: learning one
    reward usually needs just the chosen one of 100."""

    def __init__(self, rows: Sequence[Mapping]):
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [Candidate.from_dict(row) for row in self._rows[i]]
        return Candidate.from_dict(self._rows[i])


@dataclass(frozen=True)
class Shared:
    user_id: str
    context: Mapping[str, Scalar] = field(default_factory=dict)
    hour: int = 0
    weekday: int = 0
    activity: Mapping[str, float] = field(default_factory=dict)  # feedback.windows.features("user", ...)

    @classmethod
    def at(
        cls, user_id: str, context: Mapping[str, Scalar], when: datetime, activity: Mapping[str, float] | None = None
    ) -> Shared:
        return cls(user_id, dict(context), when.hour, when.weekday(), dict(activity or {}))

    def to_dict(self) -> dict:
        return {
            "user_id": self.user_id,
            "context": dict(self.context),
            "hour": self.hour,
            "weekday": self.weekday,
            "activity": dict(self.activity),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> Shared:
        """Also a decision logged before activity features existed: it learns without them, as it was served."""
        return cls(
            d["user_id"],
            dict(d.get("context", {})),
            int(d.get("hour", 0)),
            int(d.get("weekday", 0)),
            {name: float(value) for name, value in d.get("activity", {}).items()},
        )


Namespaces = dict[str, list[tuple[str, float]]]


def shared_features(shared: Shared) -> Namespaces:
    context = []
    for key, value in sorted(shared.context.items()):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            context.append((f"{token(key)}={token(value)}", 1.0))
        else:
            context.append((token(key), float(value)))
    daypart = ("night", "morning", "afternoon", "evening")[shared.hour // 6]
    week = "weekend" if shared.weekday >= 5 else "weekday"
    namespaces = {
        "U": [(f"u={token(shared.user_id)}", 1.0)],
        "C": context,
        "T": [(f"h{shared.hour}", 1.0), (daypart, 1.0), (f"d{shared.weekday}", 1.0), (week, 1.0)],
    }
    activity = [(token(name), float(value)) for name, value in sorted(shared.activity.items()) if value != 0.0]
    if activity:
        namespaces["A"] = activity
    return namespaces


def action_features(c: Candidate) -> Namespaces:
    return {**_item_features(c.id, c.category, c.tags), "S": _scores(c)}


@lru_cache(maxsize=200_000)
def _item_features(item_id: str, category: str | None, tags: tuple[str, ...]) -> Namespaces:
    """The item's own namespaces; cached, since the same items are ranked again and again."""
    groups = [(f"c={token(category)}", 1.0)] if category is not None else []
    groups += [(f"t={token(t)}", 1.0) for t in tags]
    return {"I": [(f"i={token(item_id)}", 1.0)], "G": groups}


def _scores(c: Candidate) -> list[tuple[str, float]]:
    return [("sim", round(c.similarity, 4)), ("q", round(c.q, 4)), *c.activity]


def render(namespaces: Namespaces) -> str:
    return " ".join(
        f"|{ns} " + " ".join(name if value == 1.0 else f"{name}:{value:g}" for name, value in features)
        for ns, features in namespaces.items()
    )


@lru_cache(maxsize=200_000)
def _item_line(item_id: str, category: str | None, tags: tuple[str, ...]) -> str:
    return render(_item_features(item_id, category, tags))


def example(shared: Shared, candidates: Sequence[Candidate], label: tuple[int, float, float] | None = None) -> list[str]:
    """Lines for VW; `label` = (chosen position, cost, probability) marks the chosen candidate when learning."""
    lines = ["shared " + render(shared_features(shared))]
    lines += [
        f"{_item_line(c.id, c.category, c.tags)} |S sim:{round(c.similarity, 4):g} q:{round(c.q, 4):g}"
        + "".join(f" {name}:{value:g}" for name, value in c.activity)
        for c in candidates
    ]
    if label is not None:
        position, cost, probability = label
        lines[position + 1] = f"0:{cost:g}:{probability:g} {lines[position + 1]}"
    return lines
