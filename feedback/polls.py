"""Poll rules: what a poll may ask, which answers it takes, what an answer is worth to the learner, and whom to
ask when (survey fatigue, sampling, and asking only where the bandit was unsure).

Plain values in, plain values out: the service layer reads and writes the rows. Every check reports all that is
wrong at once, so that a form can show each problem beside its field.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

KINDS = ("single_choice", "multiple_choice", "rating", "thumbs", "text")
CHOICE_KINDS = ("single_choice", "multiple_choice")
TARGETS = ("none", "event", "item")
THUMBS = ("up", "down")
RATINGS = (1, 2, 3, 4, 5)

MAX_QUESTION = 500
MAX_OPTION = 100
MIN_OPTIONS, MAX_OPTIONS = 2, 20
MAX_TEXT = 2000
MAX_ITEM_ID = 256
MAX_ORIGINS = 20
MAX_RECONTACT_SECONDS = 10 * 365 * 86400

_HOST = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Invalid(ValueError):
    """What is wrong, as (field, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("; ".join(f"{f}: {m}" for f, m in problems))
        self.problems = problems


@dataclass(frozen=True)
class PollSpec:
    question: str
    kind: str
    options: tuple[str, ...] | None = None
    target: str = "none"
    target_item_id: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    sample_share: float = 1.0
    allowed_origins: tuple[str, ...] = ()
    allow_multiple: bool = False
    recontact_seconds: int = 30 * 86400
    reward_map: Mapping[str, float] | None = None
    uncertain_only: bool = False
    max_probability: float | None = None
    max_margin: float | None = None


def validate_poll(spec: PollSpec) -> PollSpec:
    """The poll with its text stripped and its origins in the form browsers send, or `Invalid`."""
    problems: list[tuple[str, str]] = []
    question = spec.question.strip() if isinstance(spec.question, str) else ""
    if not 1 <= len(question) <= MAX_QUESTION:
        problems.append(("question", f"write a question of 1 to {MAX_QUESTION} characters"))
    options = _check_options(spec, problems)
    if spec.target not in TARGETS:
        problems.append(("target", f"target must be one of {', '.join(TARGETS)}"))
    if spec.target == "item":
        if not isinstance(spec.target_item_id, str) or not 1 <= len(spec.target_item_id) <= MAX_ITEM_ID:
            problems.append(("target_item_id", "an item-targeted poll names its item (1 to 256 characters)"))
    elif spec.target_item_id is not None:
        problems.append(("target_item_id", "only a poll with target 'item' names an item"))
    if spec.starts_at is not None and spec.ends_at is not None and not spec.starts_at < spec.ends_at:
        problems.append(("ends_at", "the poll must end after it starts"))
    if not _number(spec.sample_share) or not 0 < spec.sample_share <= 1:
        problems.append(("sample_share", "the share of respondents asked lies in (0, 1]"))
    origins = _check_origins(spec.allowed_origins, problems)
    if not isinstance(spec.recontact_seconds, int) or isinstance(spec.recontact_seconds, bool):
        problems.append(("recontact_seconds", "a whole number of seconds"))
    elif not 0 <= spec.recontact_seconds <= MAX_RECONTACT_SECONDS:
        problems.append(("recontact_seconds", f"between 0 and {MAX_RECONTACT_SECONDS} seconds"))
    reward_map = _check_reward_map(spec.kind, options, spec.reward_map, problems)
    _check_uncertainty(spec, problems)
    if problems:
        raise Invalid(problems)
    return replace(spec, question=question, options=options, allowed_origins=origins, reward_map=reward_map)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_options(spec: PollSpec, problems: list) -> tuple[str, ...] | None:
    if spec.kind not in KINDS:
        problems.append(("kind", f"kind must be one of {', '.join(KINDS)}"))
        return None
    if spec.kind not in CHOICE_KINDS:
        if spec.options:
            problems.append(("options", f"a {spec.kind} poll takes no options"))
        return None
    raw = list(spec.options or ())
    if not all(isinstance(o, str) for o in raw):
        problems.append(("options", "options are text"))
        return None
    options = tuple(o.strip() for o in raw)
    if not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        problems.append(("options", f"give {MIN_OPTIONS} to {MAX_OPTIONS} options"))
    if any(not o or len(o) > MAX_OPTION for o in options):
        problems.append(("options", f"each option has 1 to {MAX_OPTION} characters"))
    if len({o.casefold() for o in options}) != len(options):
        problems.append(("options", "options must differ from one another"))
    return options


def normalise_origin(origin: str) -> str | None:
    """`scheme://host[:port]` in lower case without its default port (as browsers send Origin), or None."""
    if not isinstance(origin, str) or len(origin) > 300 or origin != origin.strip():
        return None
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in _DEFAULT_PORTS or parts.username is not None or parts.password is not None:
        return None
    if parts.path or parts.query or parts.fragment or origin.endswith(("?", "#")) or not host:
        return None
    if parts.netloc.rpartition("@")[2].startswith("["):
        try:
            host = f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError:
            return None
    elif not _HOST.match(host):
        return None
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != _DEFAULT_PORTS[scheme] else "")


def _check_origins(origins: Iterable[str], problems: list) -> tuple[str, ...]:
    out: list[str] = []
    for index, origin in enumerate(origins or ()):
        normal = normalise_origin(origin)
        if normal is None:
            problems.append((f"allowed_origins[{index}]", "an origin is scheme://host[:port] with http or https, no path"))
        elif normal not in out:
            out.append(normal)
    if len(out) > MAX_ORIGINS:
        problems.append(("allowed_origins", f"at most {MAX_ORIGINS} origins"))
    return tuple(out)


def answer_keys(kind: str, options: Sequence[str] | None) -> tuple[str, ...]:
    """The answers a reward map may name, as text (JSON object keys)."""
    if kind in CHOICE_KINDS:
        return tuple(options or ())
    if kind == "rating":
        return tuple(str(r) for r in RATINGS)
    if kind == "thumbs":
        return THUMBS
    return ()


def _check_reward_map(kind: str, options, reward_map, problems: list) -> dict[str, float] | None:
    if reward_map is None:
        return None
    if kind == "text":
        problems.append(("reward_map", "a text answer has no reward"))
        return None
    keys = answer_keys(kind, options)
    out = {}
    for key, value in dict(reward_map).items():
        if key not in keys:
            problems.append((f"reward_map.{key}", f"not an answer of this poll ({', '.join(keys)})"))
        elif not _number(value) or not 0 <= value <= 1:
            problems.append((f"reward_map.{key}", "a reward is a finite number in [0, 1]"))
        else:
            out[key] = float(value)
    return out


def _check_uncertainty(spec: PollSpec, problems: list) -> None:
    if spec.max_probability is not None and (not _number(spec.max_probability) or not 0 < spec.max_probability <= 1):
        problems.append(("max_probability", "a probability in (0, 1]"))
    if spec.max_margin is not None and (not _number(spec.max_margin) or spec.max_margin < 0):
        problems.append(("max_margin", "a margin of 0 or more"))
    if spec.uncertain_only:
        if spec.target != "event":
            problems.append(("uncertain_only", "only a poll about recommendation events can wait for unsure ones"))
        if spec.max_probability is None and spec.max_margin is None:
            problems.append(("uncertain_only", "set max_probability, max_margin or both"))


# Answers


class BadAnswer(ValueError):
    pass


def validate_answer(kind: str, options: Sequence[str] | None, answer: Any) -> Any:
    """The answer as stored (text stripped), or `BadAnswer` saying what this poll takes."""
    if kind == "single_choice":
        if not isinstance(answer, str) or answer not in (options or ()):
            raise BadAnswer(f"answer one of the options: {', '.join(options or ())}")
        return answer
    if kind == "multiple_choice":
        if not isinstance(answer, list) or not answer:
            raise BadAnswer("answer a non-empty list of options")
        if not all(isinstance(a, str) and a in (options or ()) for a in answer):
            raise BadAnswer(f"every answer is one of the options: {', '.join(options or ())}")
        if len(set(answer)) != len(answer):
            raise BadAnswer("each option at most once")
        return [o for o in options if o in answer]  # the poll's order: equal answers look equal
    if kind == "rating":
        if isinstance(answer, bool) or not isinstance(answer, int) or answer not in RATINGS:
            raise BadAnswer("answer a whole number from 1 to 5")
        return answer
    if kind == "thumbs":
        if answer not in THUMBS or not isinstance(answer, str):
            raise BadAnswer('answer "up" or "down"')
        return answer
    if kind == "text":
        text = answer.strip() if isinstance(answer, str) else ""
        if not 1 <= len(text) <= MAX_TEXT:
            raise BadAnswer(f"answer with 1 to {MAX_TEXT} characters of text")
        return text
    raise BadAnswer(f"unknown poll kind {kind!r}")


def answer_from_form(kind: str, values: Sequence[str]) -> Any:
    """A form's fields as the JSON answer would be: a list for several choices, a number for a rating."""
    if kind == "multiple_choice":
        return list(values)
    value = values[0] if values else None
    if kind == "rating" and isinstance(value, str) and re.fullmatch(r"[1-5]", value):
        return int(value)
    return value


def reward_for(kind: str, answer: Any, reward_map: Mapping[str, float] | None) -> float | None:
    """What an answer is worth to the learner, in [0, 1], or None (text, or a choice the map leaves out).

    A map overrides the kind's default: thumbs up 1.0 and down 0.0, rating r (r - 1) / 4; choices have no
    default; several choices are worth the mean of those the map names."""
    if kind == "text":
        return None
    if reward_map is not None:
        if kind == "multiple_choice":
            values = [reward_map[a] for a in answer if a in reward_map]
            return math.fsum(values) / len(values) if values else None
        return reward_map.get(str(answer))
    if kind == "thumbs":
        return 1.0 if answer == "up" else 0.0
    if kind == "rating":
        return (answer - 1) / 4
    return None


def count_answers(kind: str, options: Sequence[str] | None, answers: Iterable[Any]) -> dict[str, int]:
    """Answers per value, every possible value listed (in the poll's order); text answers are not counted."""
    if kind == "text":
        for _ in answers:
            pass
        return {}
    counts = dict.fromkeys(answer_keys(kind, options), 0)
    for answer in answers:
        for value in answer if kind == "multiple_choice" else [answer]:
            key = str(value)
            if key in counts:
                counts[key] += 1
    return counts


# Whom to ask


@dataclass(frozen=True)
class Window:
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    closed_at: datetime | None = None


def open_problem(window: Window, now: datetime) -> str | None:
    """Why the poll takes no answer now ("closed", "not_started", "ended"), or None."""
    if window.closed_at is not None and window.closed_at <= now:
        return "closed"
    if window.starts_at is not None and now < window.starts_at:
        return "not_started"
    if window.ends_at is not None and now >= window.ends_at:
        return "ended"
    return None


@dataclass(frozen=True)
class Contact:
    """What a respondent has seen lately: the newest ask or answer of any other poll, of this poll, and
    whether they answered this one already."""

    last_other: datetime | None = None
    last_this: datetime | None = None
    answered: bool = False


@dataclass(frozen=True)
class AskRules:
    window: Window
    public_token: str
    sample_share: float = 1.0
    allow_multiple: bool = False
    recontact: timedelta = timedelta(days=30)
    quiet: timedelta = timedelta(days=1)


@dataclass(frozen=True)
class AskDecision:
    ask: bool
    reason: str | None = None  # why not: closed, not_started, ended, answered, not_sampled, recontact, quiet_period


def decide_ask(rules: AskRules, respondent_id: str, contact: Contact, now: datetime) -> AskDecision:
    """Whether to show the poll to this respondent now. The quiet period spans every poll (a respondent asked
    about anything lately is left alone); the recontact period is this poll's own."""
    problem = open_problem(rules.window, now)
    if problem is not None:
        return AskDecision(False, problem)
    if contact.answered and not rules.allow_multiple:
        return AskDecision(False, "answered")
    if not sampled(rules.public_token, respondent_id, rules.sample_share):
        return AskDecision(False, "not_sampled")
    if contact.last_this is not None and now - contact.last_this < rules.recontact:
        return AskDecision(False, "recontact")
    if contact.last_other is not None and now - contact.last_other < rules.quiet:
        return AskDecision(False, "quiet_period")
    return AskDecision(True)


def sampled(public_token: str, respondent_id: str, share: float) -> bool:
    """A stable draw: the same respondent is always in (or out of) a poll's sample, whichever worker asks, and
    different polls draw independently (the token is hashed with the respondent)."""
    if share >= 1:
        return True
    digest = hashlib.sha256(f"{public_token}\x00{respondent_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


# Where the bandit was unsure


@dataclass(frozen=True)
class Confidence:
    """How sure a logged decision was of an item: its probability, and the margin between the two best
    candidate scores (None when fewer than two candidates)."""

    probability: float | None
    margin: float | None
    item_id: str | None = None
    scores: tuple[float, ...] = field(default=(), repr=False)


def confidence(slots: Sequence[Mapping], candidates: Sequence[Mapping], item_id: str | None = None) -> Confidence:
    """From an Event row's `slots` ([{"item_id", "probability"}]) and `candidates` ([{"id", "q", ...}]).

    The probability is the named item's slot probability (the first slot's when no item is named). The
    decision does not store the model's per-candidate predictions, so the scores are the candidates' stored
    Q-values (the running mean reward per item and segment the policy reads as its `q` feature); the margin
    is the gap between the two highest."""
    slot = next((sl for sl in slots if sl.get("item_id") == item_id), None) if item_id is not None else None
    slot = slot or (slots[0] if slots else None)
    probability = float(slot["probability"]) if slot is not None and slot.get("probability") is not None else None
    scores = tuple(sorted((float(c.get("q", 0.0)) for c in candidates), reverse=True))
    margin = scores[0] - scores[1] if len(scores) >= 2 else None
    return Confidence(probability, margin, slot["item_id"] if slot is not None else None, scores)


def is_unsure(conf: Confidence, max_probability: float | None, max_margin: float | None) -> bool:
    """Unsure when the item's probability is below max_probability or the score margin below max_margin."""
    if max_probability is not None and conf.probability is not None and conf.probability < max_probability:
        return True
    return max_margin is not None and conf.margin is not None and conf.margin < max_margin
