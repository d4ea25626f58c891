"""Logged decisions from another system, one CSV row per shown item, checked before anything is stored.

Columns: `timestamp` (ISO-8601; a value without a zone is taken as UTC, the zone most logging pipelines write),
`user_id` (optional), `action` (the item id), `position` (optional, 1-based), `reward` (a finite number),
`propensity` (the probability the logging policy gave this action at this position, in (0, 1]) and any number
of `ctx_*` context columns (a cell that reads as a finite number is kept as a number, anything else as text,
an empty cell is left out). Off-policy estimates divide by the propensity, so a row without a usable one is
refused rather than guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

REQUIRED = ("timestamp", "action", "reward", "propensity")
OPTIONAL = ("user_id", "position")
CONTEXT_PREFIX = "ctx_"
MAX_TEXT = 256


@dataclass(frozen=True)
class LoggedRow:
    line: int
    timestamp: datetime
    user_id: str | None
    action: str
    position: int | None
    reward: float
    propensity: float
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Refused:
    line: int
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        return f"line {self.line}: " + "; ".join(self.reasons)


def check_header(columns: list[str] | None) -> list[str]:
    """What is wrong with a header: the required columns it lacks and columns named twice; [] when usable."""
    names = [c.strip() for c in columns or []]
    problems = []
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        problems.append("missing required column" + ("s " if len(missing) > 1 else " ") + ", ".join(missing))
    twice = sorted({c for c in names if names.count(c) > 1})
    if twice:
        problems.append("columns named more than once: " + ", ".join(twice))
    unknown = [c for c in names if c and c not in REQUIRED + OPTIONAL and not c.startswith(CONTEXT_PREFIX)]
    if unknown:
        problems.append(f"unknown columns (context columns start with {CONTEXT_PREFIX}): " + ", ".join(unknown))
    return problems


def parse_row(line: int, row: dict[str, str | None]) -> LoggedRow | Refused:
    """One CSV row (as csv.DictReader gives it) as a typed row, or every reason it is refused."""
    cells = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
    reasons: list[str] = []
    if None in row:
        reasons.append("more cells than header columns")
    timestamp = _timestamp(cells.get("timestamp", ""), reasons)
    action = cells.get("action", "")
    if not action:
        reasons.append("action is missing")
    elif len(action) > MAX_TEXT:
        reasons.append(f"action is longer than {MAX_TEXT} characters")
    user_id = cells.get("user_id") or None
    if user_id is not None and len(user_id) > MAX_TEXT:
        reasons.append(f"user_id is longer than {MAX_TEXT} characters")
    position = _position(cells.get("position", ""), reasons)
    reward = _number(cells.get("reward", ""))
    if reward is None:
        reasons.append(f"reward must be a finite number, not {cells.get('reward', '')!r}")
    propensity = _number(cells.get("propensity", ""))
    if not cells.get("propensity"):
        reasons.append("propensity is missing")
    elif propensity is None or not 0 < propensity <= 1:
        reasons.append(f"propensity must lie in (0, 1], not {cells['propensity']!r}")
    if reasons:
        return Refused(line, tuple(reasons))
    context = {k[len(CONTEXT_PREFIX) :]: _value(v) for k, v in cells.items() if k.startswith(CONTEXT_PREFIX) and v}
    return LoggedRow(line, timestamp, user_id, action, position, reward, propensity, context)


def _timestamp(text: str, reasons: list[str]) -> datetime:
    if not text:
        reasons.append("timestamp is missing")
        return datetime.min
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        reasons.append(f"timestamp is not ISO-8601: {text!r}")
        return datetime.min
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _position(text: str, reasons: list[str]) -> int | None:
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        reasons.append(f"position must be a whole number from 1, not {text!r}")
        return None
    return int(text)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _value(text: str) -> float | str:
    number = _number(text)
    if number is None:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
