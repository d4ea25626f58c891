"""Reviewer queues as rules: what a task may hold, when a claim holds, which decisions a queue accepts, how
independent decisions become one outcome, and how far reviewers agree. No Flask, no database.

Evidence is a JSON object that apps and jobs attach to a task (at most MAX_EVIDENCE_BYTES as canonical JSON,
MAX_EVIDENCE_DEPTH levels, finite numbers only). Two keys have a meaning:

- top-level scalars (`{"rewards_per_hour": 340, "z_score": 6.1, "reason": "burst"}`) are the task's facts, shown
  as a table;
- `"series": {"name": [number | null, ...], ...}` (up to MAX_SERIES series of up to MAX_POINTS points, equally
  long) with an optional `"x": [label, ...]` of the same length (times, dates, bucket names) is a time series,
  drawn as a line chart (`chart_spec`). Nested objects other than `series` are shown as JSON.

Enqueued twice with the same (queue, subject, evidence), a task is one task: `evidence_key` is the sha256 of the
evidence's canonical JSON (sorted keys, no spaces), so key order and spacing do not make two tasks.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

SUBJECT_TYPES = ("user", "item", "event")
STATUSES = ("open", "claimed", "resolved")
CONFIRM, DISMISS, LABEL = "confirm", "dismiss", "label"
DECISIONS = (CONFIRM, DISMISS, LABEL)
QUEUE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
MAX_SUBJECT_ID = 256
MAX_EVIDENCE_BYTES = 16_384
MAX_EVIDENCE_DEPTH = 6
MAX_SERIES = 8
MAX_POINTS = 1_000
PRIORITY_MIN, PRIORITY_MAX = -1_000, 1_000
MAX_NOTE = 2_000
MAX_DECISIONS_REQUIRED = 10
MIN_LEASE, MAX_LEASE = 60, 86_400
MAX_LABELS, MAX_LABEL = 9, 64
RESERVED_QUEUE_NAMES = ("audit", "tasks")  # page routes under /review/


def check_queue_name(name: Any) -> str:
    if not isinstance(name, str) or not QUEUE_NAME.match(name) or name in RESERVED_QUEUE_NAMES:
        raise Invalid("queue", "a queue name is 1 to 32 of a-z, 0-9, - and _, starting with a letter (not audit or tasks)")
    return name


class Invalid(ValueError):
    """A task or decision the rules refuse; `field` names what is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclass(frozen=True)
class TaskIn:
    queue: str
    subject_type: str
    subject_id: str
    evidence: dict[str, Any]
    evidence_key: str
    priority: int


@dataclass(frozen=True)
class QueueRules:
    decisions_required: int = 1
    lease_seconds: int = 900
    labels: tuple[str, ...] = ()  # a labeling queue takes these values; a queue without labels, confirm or dismiss

    def __post_init__(self) -> None:
        if not 1 <= self.decisions_required <= MAX_DECISIONS_REQUIRED:
            raise Invalid("decisions_required", f"a task needs 1 to {MAX_DECISIONS_REQUIRED} independent decisions")
        if not MIN_LEASE <= self.lease_seconds <= MAX_LEASE:
            raise Invalid("lease_seconds", f"a claim holds {MIN_LEASE} to {MAX_LEASE} seconds")
        if len(self.labels) > MAX_LABELS or len(set(self.labels)) != len(self.labels):
            raise Invalid("labels", f"up to {MAX_LABELS} distinct labels (one key each, 1 to {MAX_LABELS})")
        if any(not isinstance(v, str) or not v.strip() or len(v) > MAX_LABEL or v != v.strip() for v in self.labels):
            raise Invalid("labels", f"a label is 1 to {MAX_LABEL} characters, without surrounding spaces")
        if set(self.labels) & {CONFIRM, DISMISS}:
            raise Invalid("labels", "confirm and dismiss are the decisions of a queue without labels")

    @property
    def outcomes(self) -> tuple[str, ...]:
        """Every outcome a decision in this queue can have, in the order the buttons show them."""
        return self.labels or (CONFIRM, DISMISS)


@dataclass(frozen=True)
class DecisionIn:
    decision: str  # confirm, dismiss, label
    label: str | None
    note: str | None

    @property
    def outcome(self) -> str:
        """What the decision says: confirm, dismiss, or the label value."""
        return self.label if self.decision == LABEL else self.decision


# ---------------------------------------------------------------------------------------------- tasks


def validate_task(queue: Any, subject_type: Any, subject_id: Any, evidence: Any = None, priority: Any = 0) -> TaskIn:
    if not isinstance(queue, str) or not QUEUE_NAME.match(queue):
        raise Invalid("queue", "a queue name is 1-32 lower-case letters, digits, _ or -, starting with a letter")
    if subject_type not in SUBJECT_TYPES:
        raise Invalid("subject_type", f"must be one of {', '.join(SUBJECT_TYPES)}")
    if not isinstance(subject_id, str) or not 1 <= len(subject_id) <= MAX_SUBJECT_ID or not subject_id.isprintable():
        raise Invalid("subject_id", f"must be 1-{MAX_SUBJECT_ID} printable characters")
    if isinstance(priority, bool) or not isinstance(priority, int) or not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise Invalid("priority", f"must be an integer from {PRIORITY_MIN} to {PRIORITY_MAX} (higher is reviewed first)")
    evidence = {} if evidence is None else evidence
    key = evidence_key(evidence)  # checks the shape, depth, numbers and size
    if "series" in evidence or "x" in evidence:
        _check_series(evidence)
    return TaskIn(queue, subject_type, subject_id, evidence, key, priority)


def canonical_json(evidence: Any) -> str:
    _check_value(evidence, "evidence", 1)
    return json.dumps(evidence, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def evidence_key(evidence: Any) -> str:
    """sha256 (hex) of the evidence's canonical JSON: the same facts, however written, give the same key."""
    if not isinstance(evidence, dict):
        raise Invalid("evidence", "must be a JSON object")
    text = canonical_json(evidence)
    if len(text.encode()) > MAX_EVIDENCE_BYTES:
        raise Invalid("evidence", f"is larger than {MAX_EVIDENCE_BYTES} bytes as JSON")
    return hashlib.sha256(text.encode()).hexdigest()


def _check_value(value: Any, path: str, depth: int) -> None:
    if isinstance(value, dict):
        if depth > MAX_EVIDENCE_DEPTH:
            raise Invalid(path, f"nests deeper than {MAX_EVIDENCE_DEPTH} levels")
        for key, item in value.items():
            if not isinstance(key, str):
                raise Invalid(path, "object keys must be strings")
            _check_value(item, f"{path}.{key}", depth + 1)
    elif isinstance(value, list):
        if depth > MAX_EVIDENCE_DEPTH:
            raise Invalid(path, f"nests deeper than {MAX_EVIDENCE_DEPTH} levels")
        for index, item in enumerate(value):
            _check_value(item, f"{path}[{index}]", depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise Invalid(path, "numbers must be finite")
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise Invalid(path, f"{type(value).__name__} is not a JSON value")


def _check_series(evidence: dict) -> None:
    series = evidence.get("series")
    if not isinstance(series, dict) or not 1 <= len(series) <= MAX_SERIES:
        raise Invalid("evidence.series", f'must be an object of 1-{MAX_SERIES} series: {{"name": [numbers]}}')
    lengths = set()
    for name, points in series.items():
        if not isinstance(points, list) or not 1 <= len(points) <= MAX_POINTS:
            raise Invalid(f"evidence.series.{name}", f"must be a list of 1-{MAX_POINTS} numbers")
        if not all(p is None or (isinstance(p, (int, float)) and not isinstance(p, bool)) for p in points):
            raise Invalid(f"evidence.series.{name}", "points must be numbers (or null for a gap)")
        lengths.add(len(points))
    if len(lengths) > 1:
        raise Invalid("evidence.series", "every series must have the same number of points")
    x = evidence.get("x")
    if x is not None and (
        not isinstance(x, list) or len(x) not in lengths or not all(isinstance(v, (str, int, float)) for v in x)
    ):
        raise Invalid("evidence.x", "must be a list of labels (strings or numbers), one per point of the series")


def facts(evidence: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The evidence's top-level values other than the series, in the order they were sent."""
    return [(k, v) for k, v in evidence.items() if k not in ("series", "x")]


def chart_spec(evidence: Mapping[str, Any]) -> dict[str, Any] | None:
    """A line chart of the evidence's series (the shape js/charts.js draws), or None when there is none."""
    series = evidence.get("series")
    if not isinstance(series, dict) or not series:
        return None
    length = max(len(points) for points in series.values())
    labels = evidence.get("x") or list(range(1, length + 1))
    return {
        "type": "line",
        "labels": labels,
        "datasets": [{"label": name, "data": points, "pointRadius": 1} for name, points in series.items()],
        "y": {"beginAtZero": False},
    }


# ---------------------------------------------------------------------------------------------- leases


def lease_until(now: datetime, rules: QueueRules) -> datetime:
    return now + timedelta(seconds=rules.lease_seconds)


def lease_live(status: str, lease_expires_at: datetime | None, now: datetime) -> bool:
    """A claim holds until its lease expires; after that the task is back in the queue."""
    return status == "claimed" and lease_expires_at is not None and lease_expires_at > now


def effective_status(status: str, lease_expires_at: datetime | None, now: datetime) -> str:
    """The status as reviewers see it: an expired claim is open again (nothing needs to sweep it)."""
    if status == "claimed" and not lease_live(status, lease_expires_at, now):
        return "open"
    return status


def claimable(status: str, lease_expires_at: datetime | None, now: datetime) -> bool:
    return effective_status(status, lease_expires_at, now) == "open"


# ---------------------------------------------------------------------------------------------- decisions


def validate_decision(rules: QueueRules, decision: Any, label: Any = None, note: Any = None) -> DecisionIn:
    """A label queue takes one of its label values; any other queue takes confirm or dismiss."""
    if rules.labels:
        if decision != LABEL:
            raise Invalid("decision", f"this queue takes labels: decide 'label' with one of {', '.join(rules.labels)}")
        if label not in rules.labels:
            raise Invalid("label", f"must be one of {', '.join(rules.labels)}")
    else:
        if decision not in (CONFIRM, DISMISS):
            raise Invalid("decision", "must be confirm or dismiss")
        if label not in (None, ""):
            raise Invalid("label", "this queue takes no label")
        label = None
    if note is not None and not isinstance(note, str):
        raise Invalid("note", "must be text")
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_NOTE:
        raise Invalid("note", f"must be at most {MAX_NOTE} characters")
    return DecisionIn(decision, label, note)


def final_outcome(outcomes: Sequence[str], rules: QueueRules) -> str | None:
    """The task's outcome once `decisions_required` reviewers decided (None before): the majority.

    Ties: `dismiss` wins any tie it is part of, since confirming acts (a confirmed user is excluded from learning)
    and should take a majority; any other tie goes to the tied outcome reached first (`outcomes` in the order
    the decisions were made), so the rule needs nothing but the decisions themselves."""
    if len(outcomes) < rules.decisions_required or not outcomes:
        return None
    counts = Counter(outcomes)
    top = max(counts.values())
    tied = [o for o in counts if counts[o] == top]  # Counter keeps first-seen order
    if len(tied) > 1 and DISMISS in tied:
        return DISMISS
    return tied[0]


# ---------------------------------------------------------------------------------------------- agreement


def cohen_kappa(pairs: Sequence[tuple[Hashable, Hashable]]) -> float | None:
    """Cohen's kappa of two raters over the items in `pairs` ((first rater's category, second's) each).

    None when it is undefined: no items, or chance agreement of 1 (both raters used one and the same category
    for everything, so agreement beyond chance cannot be measured)."""
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(a == b for a, b in pairs) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    chance = sum(first[c] * second[c] for c in first) / (n * n)
    if chance >= 1:
        return None
    return (observed - chance) / (1 - chance)


def fleiss_kappa(ratings: Sequence[Mapping[Hashable, int]]) -> float | None:
    """Fleiss' kappa over subjects, each given as {category: raters who chose it}, every subject with the same
    number of raters (at least two). None when undefined (no subjects, or every rating in one category)."""
    if not ratings:
        return None
    n = sum(ratings[0].values())
    if n < 2 or any(sum(r.values()) != n for r in ratings):
        raise ValueError("Fleiss' kappa needs the same number (at least 2) of raters for every subject")
    subjects = len(ratings)
    totals: Counter = Counter()
    agreement = 0.0
    for r in ratings:
        totals.update(r)
        agreement += (sum(c * c for c in r.values()) - n) / (n * (n - 1))
    observed = agreement / subjects
    chance = sum((t / (subjects * n)) ** 2 for t in totals.values())
    if chance >= 1:
        return None
    return (observed - chance) / (1 - chance)


@dataclass(frozen=True)
class Agreement:
    tasks: int  # tasks decided by exactly `raters` reviewers
    raters: int
    method: str | None  # "cohen", "fleiss", or None when the queue takes one decision per task
    kappa: float | None
    observed: float | None  # share of agreeing pairs of decisions


def agreement(decided: Sequence[Sequence[str]], raters: int) -> Agreement:
    """Agreement over tasks that each took `raters` decisions (outcomes in the order they were made): Cohen's
    kappa for two (first decision against second), Fleiss' for more."""
    if raters < 2:
        return Agreement(0, raters, None, None, None)
    rows = [list(d) for d in decided if len(d) == raters]
    if not rows:
        return Agreement(0, raters, "cohen" if raters == 2 else "fleiss", None, None)
    pairs_agreeing = sum(sum(c * (c - 1) for c in Counter(r).values()) / (raters * (raters - 1)) for r in rows)
    observed = pairs_agreeing / len(rows)
    if raters == 2:
        return Agreement(len(rows), 2, "cohen", cohen_kappa([(r[0], r[1]) for r in rows]), observed)
    return Agreement(len(rows), raters, "fleiss", fleiss_kappa([Counter(r) for r in rows]), observed)
