"""Incremental Q-values per (item, context segment): Q ← Q + α (R − Q) on every reward."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping

Scalar = str | int | float | bool
ALL = "*"
TOP_KEPT = 1000  # the most popular items of a segment that `top` keeps ready


def segment(context: Mapping[str, Scalar], keys: Iterable[str] | None = None) -> str:
    """The context's categorical fields (or only `keys`), as 'k=v|k=v'; '*' when there are none."""
    wanted = set(keys) if keys is not None else None
    parts = [
        f"{k}={str(v).lower() if isinstance(v, bool) else v}"
        for k, v in sorted(context.items())
        if (wanted is None or k in wanted) and (isinstance(v, (str, bool)))
    ]
    return "|".join(parts) or ALL


class QTable:
    """Kept per segment, so that finding a segment's most popular items (`top`) reads that segment alone, with a
    heap rather than a sort: 240,000 entries in 8 segments took 22 ms after each update of a segment, now 6 ms
    (docs/benchmarks.md)."""

    def __init__(self, alpha: float = 0.1, initial: float = 0.0):
        if not 0 < alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        self.alpha = alpha
        self.initial = initial
        self._q: dict[str, dict[str, float]] = {}  # segment → item → Q
        self._n: dict[str, dict[str, int]] = {}
        self._top: dict[str, list[str]] = {}  # segment → item ids by Q, built on demand

    def get(self, item_id: str, seg: str) -> float:
        return self._q.get(seg, {}).get(item_id, self.initial)

    def count(self, item_id: str, seg: str) -> int:
        return self._n.get(seg, {}).get(item_id, 0)

    def update(self, item_id: str, seg: str, reward: float) -> float:
        values, counts = self._q.setdefault(seg, {}), self._n.setdefault(seg, {})
        q = values.get(item_id, self.initial)
        q += self.alpha * (reward - q)
        values[item_id] = q
        counts[item_id] = counts.get(item_id, 0) + 1
        self._top.pop(seg, None)
        return q

    def top(self, seg: str, n: int) -> list[str]:
        """The n items with the highest Q in the segment: the popular items for that context."""
        if seg not in self._top:
            ranked = heapq.nlargest(TOP_KEPT, ((q, item) for item, q in self._q.get(seg, {}).items()))
            self._top[seg] = [item for _, item in ranked]
        return self._top[seg][:n]

    def prepare(self) -> None:
        """Rank every segment now, so that the first `top` of each does not pay for it."""
        for seg in self._q:
            self.top(seg, 0)

    def rows(self) -> list[tuple[str, str, float, int]]:
        return [(item, seg, q, self._n[seg][item]) for seg, values in self._q.items() for item, q in values.items()]

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, float, int]], alpha: float = 0.1) -> QTable:
        table = cls(alpha)
        for item, seg, q, n in rows:
            table._q.setdefault(seg, {})[item] = float(q)
            table._n.setdefault(seg, {})[item] = int(n)
        return table
