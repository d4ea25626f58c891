"""Incremental Q-values per (item, context segment): Q ← Q + α (R − Q) on every reward."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

Scalar = str | int | float | bool
ALL = "*"


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
    def __init__(self, alpha: float = 0.1, initial: float = 0.0):
        if not 0 < alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        self.alpha = alpha
        self.initial = initial
        self._q: dict[tuple[str, str], float] = {}
        self._n: dict[tuple[str, str], int] = {}
        self._top: dict[str, list[str]] = {}  # segment → item ids by Q, built on demand

    def get(self, item_id: str, seg: str) -> float:
        return self._q.get((item_id, seg), self.initial)

    def count(self, item_id: str, seg: str) -> int:
        return self._n.get((item_id, seg), 0)

    def update(self, item_id: str, seg: str, reward: float) -> float:
        key = (item_id, seg)
        q = self._q.get(key, self.initial)
        q += self.alpha * (reward - q)
        self._q[key] = q
        self._n[key] = self._n.get(key, 0) + 1
        self._top.pop(seg, None)
        return q

    def top(self, seg: str, n: int) -> list[str]:
        """The n items with the highest Q in the segment: the popular items for that context."""
        if seg not in self._top:
            ranked = sorted(((q, item) for (item, s), q in self._q.items() if s == seg), reverse=True)
            self._top[seg] = [item for _, item in ranked[:1000]]
        return self._top[seg][:n]

    def rows(self) -> list[tuple[str, str, float, int]]:
        return [(item, seg, q, self._n[(item, seg)]) for (item, seg), q in self._q.items()]

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, float, int]], alpha: float = 0.1) -> QTable:
        table = cls(alpha)
        for item, seg, q, n in rows:
            table._q[(item, seg)] = float(q)
            table._n[(item, seg)] = int(n)
        return table
