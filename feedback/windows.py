"""Windowed activity of a user or an item, kept as per-minute counts, and the bandit features made from it.

The same functions serve a live request and a retraining that asks "what did this user look like at `now`":
both turn per-minute buckets into `Activity`, and `features` turns that into the context the bandit sees, so
serving and training cannot disagree on a name or a scale.

A window of length W at `now` holds the minutes m with floor(now) - W < m <= floor(now): the minute under way
and the W - 1 whole minutes before it. Buckets after `now` (events a retraining must not see yet) are ignored.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

MINUTE = timedelta(minutes=1)
WINDOWS: dict[str, timedelta] = {"5m": timedelta(minutes=5), "1h": timedelta(hours=1), "1d": timedelta(days=1)}
LONGEST = max(WINDOWS.values())
# Event types that become features; other types are counted and shown, not fed to the bandit, so that a client
# inventing a type cannot add features.
FEATURE_TYPES = ("impression", "click", "purchase", "search")
ENGAGED = frozenset({"click", "purchase"})  # what makes a category one the user engaged with
RATE_WINDOW = "1h"
# log1p of counts, capped: 10,000 events in a window is far beyond a person and caps the feature at ~9.2.
COUNT_CAP = 10_000
CATEGORY_LIMIT = 5


def minute_of(ts: datetime) -> datetime:
    """The start of the minute holding `ts`, in UTC."""
    if ts.tzinfo is None:
        raise ValueError("a time zone is required")
    return ts.astimezone(UTC).replace(second=0, microsecond=0)


def window_minutes(now: datetime, window: timedelta) -> tuple[datetime, datetime]:
    """(first, last) minute counted in `window` at `now`, both included."""
    last = minute_of(now)
    return last - window + MINUTE, last


@dataclass(frozen=True)
class Bucket:
    minute: datetime
    event_type: str
    count: int
    category: str = ""  # "" for the subject's totals; a category's own rows otherwise


@dataclass(frozen=True)
class Activity:
    counts: dict[str, dict[str, int]]  # window name -> event type -> count
    categories: list[str] = field(default_factory=list)  # engaged with in the last day, most first

    def click_rate(self, window: str = RATE_WINDOW) -> float | None:
        return click_rate(self.counts[window])


def bucketize(events: Iterable[tuple[datetime, str, str | None]]) -> list[Bucket]:
    """Per-minute buckets of (ts, type, category) events: the totals, plus a row per category when it is known."""
    tally: Counter[tuple[datetime, str, str]] = Counter()
    for ts, event_type, category in events:
        m = minute_of(ts)
        tally[(m, event_type, "")] += 1
        if category:
            tally[(m, event_type, category)] += 1
    return [Bucket(m, t, n, c) for (m, t, c), n in sorted(tally.items())]


def counts(buckets: Iterable[Bucket], now: datetime, window: timedelta) -> dict[str, int]:
    first, last = window_minutes(now, window)
    out: Counter[str] = Counter()
    for b in buckets:
        if not b.category and first <= b.minute <= last:
            out[b.event_type] += b.count
    return dict(sorted(out.items()))


def click_rate(window_counts: dict[str, int]) -> float | None:
    """Clicks per impression in a window; None without impressions (no rate, rather than a made-up zero)."""
    impressions = window_counts.get("impression", 0)
    if impressions <= 0:
        return None
    return min(window_counts.get("click", 0) / impressions, 1.0)


def recent_categories(
    buckets: Iterable[Bucket], now: datetime, window: timedelta = LONGEST, limit: int = CATEGORY_LIMIT
) -> list[str]:
    """Categories with clicks or purchases in the window, most engaged first (ties by name)."""
    first, last = window_minutes(now, window)
    tally: Counter[str] = Counter()
    for b in buckets:
        if b.category and b.event_type in ENGAGED and first <= b.minute <= last:
            tally[b.category] += b.count
    return [c for c, _ in sorted(tally.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def activity(buckets: Iterable[Bucket], now: datetime) -> Activity:
    buckets = list(buckets)
    return Activity(
        counts={name: counts(buckets, now, w) for name, w in WINDOWS.items()},
        categories=recent_categories(buckets, now),
    )


_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def feature_token(text: str) -> str:
    """A value safe inside a feature name (Vowpal Wabbit splits on spaces, '|' and ':')."""
    return _UNSAFE.sub("_", text)[:100]


def features(prefix: str, act: Activity) -> dict[str, float]:
    """Flat, bounded context features: `<prefix>_<type>_<window>` = log1p(count) (capped), `<prefix>_ctr_<window>`
    in [0, 1] with `<prefix>_has_ctr_<window>` saying whether there was a rate, and `<prefix>_cat_<name>` = 1 for
    each recent category. Every name but the categories is always present."""
    out: dict[str, float] = {}
    for window, window_counts in act.counts.items():
        for event_type in FEATURE_TYPES:
            out[f"{prefix}_{event_type}_{window}"] = math.log1p(min(window_counts.get(event_type, 0), COUNT_CAP))
        rate = click_rate(window_counts)
        out[f"{prefix}_ctr_{window}"] = 0.0 if rate is None else rate
        out[f"{prefix}_has_ctr_{window}"] = 0.0 if rate is None else 1.0
    for category in act.categories:
        out[f"{prefix}_cat_{feature_token(category)}"] = 1.0
    return out


def admissible(ts: datetime, now: datetime, lateness: timedelta, future: timedelta) -> str | None:
    """Why an event at `ts` cannot be taken at `now`, or None when it can."""
    if ts.tzinfo is None:
        return "a time zone is required"
    if ts < now - lateness:
        return f"older than the lateness window ({lateness.total_seconds():g} s)"
    if ts > now + future:
        return f"more than {future.total_seconds():g} s in the future"
    return None


def parse_reward_map(text: str) -> dict[str, float]:
    """'purchase=1.0,click=0.3' -> {'purchase': 1.0, 'click': 0.3}; '' maps nothing."""
    mapping: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"{part!r} is not TYPE=VALUE")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{part!r}: {value.strip()!r} is not a number") from None
        if not math.isfinite(number):
            raise ValueError(f"{part!r}: the value must be finite")
        if name in mapping:
            raise ValueError(f"{name!r} is mapped twice")
        mapping[name] = number
    return mapping


def reward_for(event_types: Iterable[str], mapping: dict[str, float]) -> float | None:
    """The reward of one recommended item from the events about it: the largest mapped value, None if none maps."""
    values = [mapping[t] for t in event_types if t in mapping]
    return max(values) if values else None
