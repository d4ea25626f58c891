"""Monitoring on the database: KPIs per model release, engagement drops and fraud-like users, drift between
windows, and the alerts they raise (and what they set off: a red model KPI takes the release out of serving and
asks for a retrain, a red drift asks for a retrain, a yellow KPI asks for an earlier KPI check). The rules
themselves live in feedback/ (kpis, anomalies, drift); this module gathers their inputs from the decision log, the
rewards, the interaction events and the poll answers, stores what they found, and raises alerts and review tasks.

Every function runs in the caller's session, takes `now` (tests move it) and returns plain values. Rewards of
excluded (confirmed-fraud) users are left out of every measure, as they are left out of learning."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func
from sqlmodel import Session, col, select

from app.models import (
    Alert,
    DriftReport,
    Event,
    ExcludedUser,
    Interaction,
    Item,
    JobRun,
    KpiSnapshot,
    PollAsk,
    PollResponse,
    ReviewTask,
    Reward,
    utcnow,
)
from app.services import audit, job_requests, releases, review, webhooks
from app.settings import Settings
from feedback import anomalies, drift, kpis
from feedback.review import validate_task

ALL = "*"  # the model_version of KPIs over every release
SYSTEM = "system:monitoring"
ANOMALIES = "anomalies"
MAX_CONTEXT_FEATURES = 50  # context keys beyond these (by frequency) are not compared
MAX_EVENTS = 200_000  # a window larger than this is measured on its most recent decisions
# A click early in a window on an item shown (impression or recommendation) this long before the window is not a
# click without an impression: a page shown at 11:59 is clicked at 12:01.
SHOWN_LOOKBACK = timedelta(hours=1)

# ---------------------------------------------------------------------------------------------- alerts


@dataclass(frozen=True)
class Raised:
    id: int
    created: bool


def raise_alert(
    s: Session,
    kind: str,
    subject_type: str,
    subject_id: str,
    severity: str,
    message: str,
    evidence: dict[str, Any] | None = None,
    *,
    detail: str = "",
    review_task_id: int | None = None,
    now: datetime | None = None,
) -> Raised:
    """An alert, unless the same one (kind, subject, detail) is still open: a check that finds the same
    problem on every run keeps one open alert, not one per run. A new alert is queued for the alert webhooks in
    the same transaction."""
    open_id = _open_alert(s, kind, subject_type, subject_id, detail)
    if open_id is not None:
        return Raised(open_id, False)
    alert = Alert(
        kind=kind,
        key=_alert_key(kind, subject_type, subject_id, detail),
        subject_type=subject_type,
        subject_id=subject_id[:256],
        severity=severity,
        message=message,
        evidence=evidence or {},
        review_task_id=review_task_id,
        created_at=now or utcnow(),
    )
    s.add(alert)
    s.flush()
    webhooks.enqueue_alert(s, alert)
    return Raised(alert.id, True)


def _alert_key(kind: str, subject_type: str, subject_id: str, detail: str = "") -> str:
    return ":".join(filter(None, (kind, subject_type, subject_id, detail)))[:400]


def _open_alert(s: Session, kind: str, subject_type: str, subject_id: str, detail: str = "") -> int | None:
    key = _alert_key(kind, subject_type, subject_id, detail)
    return s.exec(select(Alert.id).where(Alert.key == key, col(Alert.resolved_at).is_(None))).first()


def open_alerts(s: Session, limit: int = 200) -> list[Alert]:
    return list(s.exec(select(Alert).where(col(Alert.resolved_at).is_(None)).order_by(col(Alert.id).desc()).limit(limit)))


def resolve_alert(s: Session, alert_id: int, actor: str, now: datetime | None = None) -> Alert | None:
    """Mark the alert resolved (audited); None when there is no such open alert."""
    alert = s.get(Alert, alert_id)
    if alert is None or alert.resolved_at is not None:
        return None
    alert.resolved_at, alert.resolved_by = now or utcnow(), actor
    s.add(alert)
    s.flush()
    audit.record(
        s, actor, "resolve_alert", "alert", alert.id, {"resolved_at": None}, {"resolved_at": alert.resolved_at.isoformat()}, now
    )
    return alert


# ---------------------------------------------------------------------------------------------- shared reads


def _excluded(s: Session) -> set[str]:
    return set(s.exec(select(ExcludedUser.user_id)).all())


def _events(s: Session, since: datetime, until: datetime) -> list[Event]:
    query = (
        select(Event)
        .where(col(Event.created_at) >= since, col(Event.created_at) < until)
        .order_by(col(Event.created_at).desc())
        .limit(MAX_EVENTS)
    )
    return list(reversed(s.exec(query).all()))


def _client_rewards(s: Session, event_ids: Sequence[str], excluded: set[str]) -> list[Reward]:
    rows: list[Reward] = []
    ids = list(event_ids)
    for start in range(0, len(ids), 1000):  # bounded IN lists
        query = select(Reward).where(col(Reward.event_id).in_(ids[start : start + 1000]), Reward.source == "client")
        rows += [r for r in s.exec(query) if not r.excluded and r.user_id not in excluded]
    return rows


def _learned(s: Session, event_ids: Sequence[str], excluded: set[str]) -> list[Reward]:
    """The one learned row per settled slot (client reward or settlement)."""
    rows: list[Reward] = []
    ids = list(event_ids)
    for start in range(0, len(ids), 1000):
        query = select(Reward).where(col(Reward.event_id).in_(ids[start : start + 1000]), col(Reward.learn_value).is_not(None))
        rows += [r for r in s.exec(query) if not r.excluded and r.user_id not in excluded]
    return rows


def _shown(events: Iterable[Event], excluded: set[str]) -> Iterable[tuple[Event, str]]:
    for event in events:
        if event.user_id in excluded:
            continue
        for slot in event.slots:
            yield event, slot["item_id"]


def _q(event: Event, item_id: str) -> float | None:
    for candidate in event.candidates:
        if candidate.get("id") == item_id:
            return float(candidate.get("q", 0.0))
    return None


# ---------------------------------------------------------------------------------------------- KPIs

KPI_NAMES = (
    "ctr",
    "conversion",
    "mean_reward",
    "exploration_share",
    "poll_response_rate",
    "negative_hits",
    "missed_items",
    "auc",
    "f1",
)
DESCRIPTIONS = {
    "ctr": "shown slots with a positive client reward, per shown slot",
    "conversion": "shown slots with a client reward at least the conversion value, per shown slot",
    "mean_reward": "mean learned reward of the settled slots (client rewards and default settlements)",
    "exploration_share": "decisions whose first shown item was not the policy's own first choice",
    "poll_response_rate": "poll answers per poll shown (asks) for these decisions",
    "negative_hits": "poll answers about a recommended item that gave reward 0, per such answer",
    "missed_items": "purchases of an item not recommended to the buyer in the lookback before, per purchase (overall only)",
    "auc": "ROC AUC of the chosen item's Q-value against its outcome (learned reward or poll answer > 0); "
    "not judged on fewer labels than kpi_min_labels",
    "f1": "F1 of the Q-value as the prediction of a positive outcome, predicting positive for the top share of "
    "Q-values equal to the positive rate (ties with the threshold count as positive); not judged on fewer labels "
    "than kpi_min_labels",
}
MISSED_LOOKBACK = timedelta(days=7)


@dataclass(frozen=True)
class Kpi:
    value: float | None
    n: int  # the denominator
    colour: str


def _ratio(num: float, den: int) -> float | None:
    return num / den if den else None


def measure_kpis(
    s: Session,
    since: datetime,
    until: datetime,
    conversion_reward: float,
    bands: dict[str, kpis.Band],
    *,
    missed_lookback: timedelta = MISSED_LOOKBACK,
    min_labels: int = kpis.MIN_LABELS,
) -> dict[str, dict[str, Kpi]]:
    """{release label or ALL: {kpi: Kpi}} over the decisions logged in [since, until).

    A decision counts for the release that served when it was made (releases.label: "v3#2"; the learner's own
    version numbers move every few hundred rewards and would make meaningless groups); decisions before the first
    recorded release count under ALL only.

    Definitions (the KPI page shows them too):
    - ctr: shown slots with a positive client reward / shown slots;
    - conversion: shown slots with a client reward >= `conversion_reward` / shown slots;
    - mean_reward: mean `learn_value` of the settled slots (a slot nobody rewarded counts with its default);
    - exploration_share: decisions whose first slot is not `Event.policy_item_id` / decisions that have one;
    - poll_response_rate: poll answers / poll asks, for asks tied to these decisions (overall: all asks in the
      window, tied or not);
    - negative_hits: poll answers about a recommended item whose reward was 0 / poll answers about one;
    - missed_items (overall only): purchase events in the window whose item was not in a shown slot of a
      decision for the same user in the `missed_lookback` before the purchase / purchase events;
    - auc, f1: the chosen items' Q-values as predictions of a positive outcome (a learned reward > 0, or a poll
      answer about the item with reward > 0). F1 predicts positive for the top share of Q-values equal to the
      observed positive rate (the threshold is the P-th highest Q-value when P of the labels are positive, ties
      with it count as positive; feedback.kpis.f1_at_base_rate): Q-values are running mean rewards, so a fixed
      0.5 would call nothing positive at a click rate of a few percent. None while only one class was seen; on
      fewer than `min_labels` labels the value is reported with its n but its colour is "unknown" (a release
      minutes after its promotion has a handful of labels, and red takes it out of serving).
    Rewards, answers and purchases of excluded users count nowhere."""
    from sklearn.metrics import roc_auc_score  # here: imported with the app, scikit-learn cost every process 90 MB

    excluded = _excluded(s)
    events = _events(s, since, until)
    by_id = {e.id: e for e in events}
    found = releases.spans(s, since, until)
    release_of: dict[str, str] = {}
    for event in events:
        span = releases.release_at(found, event.created_at)
        if span is not None:
            release_of[event.id] = releases.label(span)
    served = set(release_of.values())
    groups = {ALL: None, **{label: label for label in map(releases.label, found) if label in served}}

    positive: set[tuple[str, str]] = set()
    converted: set[tuple[str, str]] = set()
    for r in _client_rewards(s, list(by_id), excluded):
        if r.value > 0:
            positive.add((r.event_id, r.item_id))
        if r.value >= conversion_reward:
            converted.add((r.event_id, r.item_id))
    learned = _learned(s, list(by_id), excluded)
    responses = [
        r
        for r in s.exec(select(PollResponse).where(col(PollResponse.created_at) >= since, col(PollResponse.created_at) < until))
        if r.respondent_id not in excluded
    ]
    asks = list(s.exec(select(PollAsk).where(col(PollAsk.asked_at) >= since, col(PollAsk.asked_at) < until)))

    def release(event_id: str | None) -> str | None:
        return release_of.get(event_id) if event_id else None

    out: dict[str, dict[str, Kpi]] = {}
    for group, label in groups.items():
        mine = [e for e in events if label is None or release_of.get(e.id) == label]
        shown = [(e.id, item) for e, item in _shown(mine, excluded)]
        values: dict[str, tuple[float | None, int]] = {
            "ctr": (_ratio(sum(k in positive for k in shown), len(shown)), len(shown)),
            "conversion": (_ratio(sum(k in converted for k in shown), len(shown)), len(shown)),
        }
        rewards = [r.learn_value for r in learned if label is None or release(r.event_id) == label]
        values["mean_reward"] = (float(np.mean(rewards)) if rewards else None, len(rewards))
        judged = [e for e in mine if e.policy_item_id and e.slots and e.user_id not in excluded]
        explored = sum(e.slots[0]["item_id"] != e.policy_item_id for e in judged)
        values["exploration_share"] = (_ratio(explored, len(judged)), len(judged))
        my_asks = [a for a in asks if label is None or release(a.event_id) == label]
        my_answers = [r for r in responses if label is None or release(r.event_id) == label]
        values["poll_response_rate"] = (_ratio(min(len(my_answers), len(my_asks)), len(my_asks)), len(my_asks))
        about_items = [r for r in my_answers if r.item_id and r.event_id in by_id and r.reward_value is not None]
        values["negative_hits"] = (_ratio(sum(r.reward_value == 0 for r in about_items), len(about_items)), len(about_items))
        if label is None:
            values["missed_items"] = missed_items(s, since, until, excluded, missed_lookback)
        scores, labels = [], []
        for r in [r for r in learned if r.event_id in by_id] + about_items:
            if label is not None and release(r.event_id) != label:
                continue
            q = _q(by_id[r.event_id], r.item_id)
            if q is not None:
                scores.append(q)
                labels.append(int((r.learn_value if isinstance(r, Reward) else r.reward_value) > 0))
        both = len(set(labels)) == 2
        values["auc"] = (float(roc_auc_score(labels, scores)) if both else None, len(labels))
        values["f1"] = (kpis.f1_at_base_rate(scores, labels), len(labels))
        out[group] = {name: Kpi(v, n, kpis.colour(name, v, n, bands, min_labels)) for name, (v, n) in values.items()}
    return out


def missed_items(
    s: Session, since: datetime, until: datetime, excluded: set[str], lookback: timedelta = MISSED_LOOKBACK
) -> tuple[float | None, int]:
    """(share of purchases missed, purchases): purchase events in [since, until) whose item no decision showed
    the buyer in the `lookback` before the purchase. Overall only: a purchase is not the answer to one release's
    decision, so splitting it by release would blame whichever model served at the time."""
    purchases = [
        p
        for p in s.exec(
            select(Interaction.user_id, Interaction.item_id, Interaction.ts)
            .where(
                Interaction.type == "purchase",
                col(Interaction.item_id).is_not(None),
                col(Interaction.ts) >= since,
                col(Interaction.ts) < until,
            )
            .order_by(col(Interaction.ts).desc())
            .limit(MAX_EVENTS)
        )
        if p.user_id not in excluded
    ]
    if not purchases:
        return None, 0
    shown_at: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    buyers = sorted({p.user_id for p in purchases})
    for start in range(0, len(buyers), 1000):  # bounded IN lists
        query = select(Event.user_id, Event.slots, Event.created_at).where(
            col(Event.user_id).in_(buyers[start : start + 1000]),
            col(Event.created_at) >= since - lookback,
            col(Event.created_at) < until,
        )
        for user, slots, at in s.exec(query):
            for slot in slots:
                shown_at[(user, slot["item_id"])].append(at)
    missed = sum(not any(p.ts - lookback <= at <= p.ts for at in shown_at.get((p.user_id, p.item_id), ())) for p in purchases)
    return missed / len(purchases), len(purchases)


def serving_release(s: Session, since: datetime, now: datetime) -> str | None:
    """The label of the release serving at `now` (None before the first one)."""
    found = releases.spans(s, since, now)
    return releases.label(found[-1]) if found and found[-1].end is None else None


@dataclass(frozen=True)
class KpiRun:
    stored: int  # KPI values stored
    alerts: list[int]  # new alerts
    actions: list[str]  # what the colours set off: "release v2#3: rollback to v1", "retrain requested", ...


def snapshot_kpis(s: Session, settings: Settings, now: datetime | None = None) -> KpiRun:
    """Measure and store the KPIs. Red raises an alert; red on a model KPI (feedback.kpis.MODEL_KPIS, judged on
    at least `kpi_min_labels` labels) of the release that serves also takes it out of serving
    (releases.take_out_of_serving: the learner rolls back or withdraws) and asks for a retrain, once per alert.
    Yellow on the serving release or overall asks for the next snapshot sooner (`kpi_yellow_seconds`)."""
    now = now or utcnow()
    since = now - timedelta(seconds=settings.kpi_window_seconds)
    bands = kpis.parse_bands(settings.kpi_bands)
    lookback = timedelta(seconds=settings.kpi_missed_lookback_seconds)
    measured = measure_kpis(
        s, since, now, settings.conversion_reward, bands, missed_lookback=lookback, min_labels=settings.kpi_min_labels
    )
    serving = serving_release(s, since, now)
    stored, alerts, actions, yellow = 0, [], [], []
    for label, values in measured.items():
        for name, kpi in values.items():
            s.add(KpiSnapshot(at=now, model_version=label, name=name, value=kpi.value, n=kpi.n, colour=kpi.colour))
            stored += 1
            if kpi.colour == "yellow" and label in (ALL, serving):
                yellow.append(f"{name} on {label}")
    s.flush()
    done = _take_out(s, serving, measured.get(serving, {}), actions) if serving else {}
    for label, values in measured.items():
        for name, kpi in values.items():
            if kpi.colour == "red":
                raised = _red_kpi(s, bands[name], name, label, kpi, done.get(name) if label == serving else None, now)
                if raised.created:
                    alerts.append(raised.id)
    s.flush()
    if yellow and (closer := _closer_check(s, settings, yellow, now)):
        actions.append(closer)
    return KpiRun(stored, alerts, actions)


def _take_out(s: Session, serving: str, values: dict[str, Kpi], actions: list[str]) -> dict[str, dict[str, Any]]:
    """Red model KPIs of the serving release that have no open alert yet: take the release out of serving and ask
    for a retrain, once for all of them (a later snapshot finding the same red waits for the learner). What was
    done, per KPI, for its alert."""
    red = [n for n in kpis.MODEL_KPIS if n in values and values[n].colour == "red"]
    red = [n for n in red if _open_alert(s, "kpi", "model", serving, n) is None]
    if not red:
        return {}
    reason = f"red {', '.join(red)} on {serving}"
    taken = releases.take_out_of_serving(s, serving, reason)
    retrain = job_requests.request_run(s, "retrain", reason)
    if taken:
        actions.append(f"release {serving}: {taken}")
    actions.append(f"retrain requested ({reason})")
    return {name: {"taken_out": taken or None, "retrain_run": retrain} for name in red}


def _red_kpi(s: Session, band: kpis.Band, name: str, label: str, kpi: Kpi, done: dict[str, Any] | None, now: datetime) -> Raised:
    who = "all model releases" if label == ALL else f"release {label}"
    side = "below" if band.higher_is_better else "above"
    message = f"{name} is {kpi.value:.3f} for {who}, {side} its red limit {band.red:g} (over {kpi.n})"
    evidence: dict[str, Any] = {"kpi": name, "value": kpi.value, "n": kpi.n, "green": band.green, "red": band.red}
    if done:
        taken = done["taken_out"]
        out = {"withdraw": "withdrawn to the fallback ranking"}.get(taken, f"taken out of serving ({taken})" if taken else "")
        message += f"; {out + ', ' if out else ''}retrain requested (job run {done['retrain_run']})"
        evidence |= done
    return raise_alert(s, "kpi", "model", label, "red", message, evidence, detail=name, now=now)


def _closer_check(s: Session, settings: Settings, yellow: list[str], now: datetime) -> str | None:
    """Ask for a kpi-snapshot run `kpi_yellow_seconds` from now, unless one is requested already, the schedule
    comes as soon, or this snapshot came less than that after the previous one (at most one closer check per
    `kpi_yellow_seconds`, whoever started it)."""
    every = settings.kpi_yellow_seconds or max(1, settings.kpi_seconds // 4)
    waiting = s.exec(select(JobRun.id).where(JobRun.job == "kpi-snapshot", JobRun.status == "requested")).first()
    series = (KpiSnapshot.name == KPI_NAMES[0], KpiSnapshot.model_version == ALL)  # every snapshot has it (indexed)
    previous = s.exec(select(func.max(KpiSnapshot.at)).where(*series, col(KpiSnapshot.at) < now)).one()
    if every >= settings.kpi_seconds or waiting is not None or (previous and now - previous < timedelta(seconds=every)):
        return None
    at = now + timedelta(seconds=every)
    job_requests.request_run(s, "kpi-snapshot", "yellow: " + ", ".join(yellow), not_before=at)
    return f"next KPI check at {at:%H:%M:%S} (yellow)"


@dataclass(frozen=True)
class Series:
    name: str
    model_version: str
    at: list[datetime]
    values: list[float | None]
    colour: str  # the latest snapshot's
    band: kpis.Band | None
    n: int  # the latest snapshot's


def kpi_versions(s: Session, since: datetime) -> list[str]:
    """The releases ("v3#2") with snapshots since `since`, ALL first, then the newest release first."""
    found = set(s.exec(select(KpiSnapshot.model_version).where(col(KpiSnapshot.at) >= since).distinct()).all())
    return [ALL, *sorted(found - {ALL}, key=_release_order, reverse=True)]


def _release_order(label: str) -> tuple[int, str]:
    number = label.rpartition("#")[2]
    return (int(number) if number.isdigit() else -1, label)


def kpi_series(s: Session, settings: Settings, since: datetime, model_version: str = ALL) -> list[Series]:
    bands = kpis.parse_bands(settings.kpi_bands)
    rows = s.exec(
        select(KpiSnapshot)
        .where(KpiSnapshot.model_version == model_version, col(KpiSnapshot.at) >= since)
        .order_by(col(KpiSnapshot.at))
    ).all()
    by_name: dict[str, list[KpiSnapshot]] = defaultdict(list)
    for row in rows:
        by_name[row.name].append(row)
    return [
        Series(
            name,
            model_version,
            [r.at for r in by_name[name]],
            [r.value for r in by_name[name]],
            by_name[name][-1].colour,
            bands.get(name),
            by_name[name][-1].n,
        )
        for name in KPI_NAMES
        if by_name.get(name)
    ]


# ---------------------------------------------------------------------------------------------- anomalies


@dataclass
class ScanResult:
    drops: list[str] = field(default_factory=list)  # "item:i3", "category:books", "overall"
    flagged: list[str] = field(default_factory=list)  # users who became review tasks
    alerts: list[int] = field(default_factory=list)
    users: int = 0


def _sig(value: float, digits: int = 2) -> float:
    """Rounded to `digits` significant figures: the evidence of the same behaviour gives the same task key."""
    if value == 0 or not math.isfinite(value):
        return 0.0
    return round(value, digits - 1 - int(math.floor(math.log10(abs(value)))))


Rates = dict[str, dict[str, list[float | None]]]  # group -> metric -> one value per hour


def hourly_rates(s: Session, since: datetime, hours: int, min_shown: int) -> tuple[list[datetime], Rates]:
    """Per hour from `since`, of every item ("item:<id>"), category ("category:<name>") and of everything
    ("overall"): the reward rate (shown slots with a positive client reward / shown slots) and, where apps send
    interaction events, the click rate (clicks / impressions); None for an hour with fewer than `min_shown` slots
    shown (impressions)."""
    until = since + timedelta(hours=hours)
    excluded = _excluded(s)
    events = _events(s, since, until)
    positive = {(r.event_id, r.item_id) for r in _client_rewards(s, [e.id for e in events], excluded) if r.value > 0}
    item_ids = {item for _, item in _shown(events, excluded)}
    categories = dict(s.exec(select(Item.id, Item.category).where(col(Item.id).in_(list(item_ids)))).all()) if item_ids else {}
    counts: dict[tuple[str, str], np.ndarray] = defaultdict(lambda: np.zeros((2, hours)))  # (metric, group) -> [hits, n]

    def groups(item: str | None, category: str | None) -> list[str]:
        return ["overall", f"category:{category or 'none'}"] + ([f"item:{item}"] if item else [])

    def hour_of(at: datetime) -> int:
        return min(int((at - since).total_seconds() // 3600), hours - 1)

    for event, item in _shown(events, excluded):
        for group in groups(item, categories.get(item)):
            counts[("reward rate", group)][:, hour_of(event.created_at)] += ((event.id, item) in positive, 1)
    seen = s.exec(
        select(Interaction.ts, Interaction.type, Interaction.item_id, Interaction.category, Interaction.user_id).where(
            col(Interaction.type).in_(("impression", "click")), col(Interaction.ts) >= since, col(Interaction.ts) < until
        )
    )
    for ts, kind, item, category, user in seen:
        if user not in excluded:
            for group in groups(item, category):
                counts[("click rate", group)][0 if kind == "click" else 1, hour_of(ts)] += 1
    rates: Rates = defaultdict(dict)
    for (metric, group), (hits, n) in counts.items():
        rates[group][metric] = [min(float(h / k), 1.0) if k >= min_shown else None for h, k in zip(hits, n)]
    return [since + timedelta(hours=h) for h in range(hours)], dict(rates)


def scan_drops(s: Session, settings: Settings, now: datetime, result: ScanResult) -> None:
    rules = anomalies.DropRules(method=settings.drop_method, limit=settings.drop_limit)
    end = now.replace(minute=0, second=0, microsecond=0)  # complete hours only
    since = end - timedelta(hours=settings.anomaly_hours)
    hours_at, rates = hourly_rates(s, since, settings.anomaly_hours, settings.drop_min_shown)
    for group in sorted(rates):
        dropped = {}
        for metric, series in sorted(rates[group].items(), reverse=True):  # reward rate first
            if series[-1] is None:
                continue  # nothing (or too little) shown in the last hour: not an engagement question
            verdict = anomalies.engagement_drop([v for v in series if v is not None], rules)
            if verdict is not None and verdict.alert:
                dropped[metric] = verdict
        if not dropped:
            continue
        metric, verdict = next(iter(dropped.items()))
        kind, _, subject = group.partition(":")
        evidence = {
            "x": [h.strftime("%m-%d %H:00") for h in hours_at],
            "series": {m: [None if v is None else _sig(v, 3) for v in series] for m, series in rates[group].items()},
            "group": group,
            "metric": metric,
            "baseline": _sig(verdict.baseline, 3),
            "latest": _sig(verdict.latest, 3),
            "score": _sig(verdict.score, 3),
            "hour": hours_at[-1].isoformat(),
        }
        task_id = None
        if kind == "item":  # review tasks are about users, items or events; categories and overall are alerts only
            task_id, _ = review.enqueue(s, validate_task(ANOMALIES, "item", subject, evidence, priority=10), SYSTEM, now=now)
        label = "overall" if kind == "overall" else f"{kind} {subject}"
        also = [m for m in dropped if m != metric]
        raised = raise_alert(
            s,
            "engagement_drop",
            kind,
            subject or "overall",
            "red",
            f"{metric} of {label} fell to {verdict.latest:.3f} in the hour from {hours_at[-1]:%H:00} "
            f"(baseline {verdict.baseline:.3f}, z {verdict.score:.1f})" + (f"; {', '.join(also)} fell too" if also else ""),
            evidence,
            detail=hours_at[-1].isoformat(),
            review_task_id=task_id,
            now=now,
        )
        result.drops.append(group)
        if raised.created:
            result.alerts.append(raised.id)


def unseen_clicks(
    s: Session, since: datetime, until: datetime, events: Sequence[Event], excluded: set[str]
) -> dict[str, list[tuple[datetime, str]]]:
    """Per user, the (time, item) of click events in [since, until) on an item the user had not been shown at or
    before the click's time: neither an impression event for (user, item) nor a recommendation showing it, from
    SHOWN_LOOKBACK before the window on (`events` are the window's recommendations; earlier ones are read here).
    A person clicks what a page showed them; a click bot clicks item URLs it was never served. Such a click
    answers no shown slot, so it is never also a reward of one. A window with more than MAX_EVENTS clicks keeps
    its newest: fraud shows in the newest."""
    newest = s.exec(
        select(Interaction.user_id, Interaction.item_id, Interaction.ts)
        .where(
            Interaction.type == "click",
            col(Interaction.item_id).is_not(None),
            col(Interaction.ts) >= since,
            col(Interaction.ts) < until,
        )
        .order_by(col(Interaction.ts).desc())
        .limit(MAX_EVENTS)
    ).all()
    clicks = [(user, item, ts) for user, item, ts in reversed(newest) if user not in excluded]
    seen: dict[tuple[str, str], datetime] = {}  # the first time the user was shown the item

    def shown(user: str, item: str, at: datetime) -> None:
        if at < seen.get((user, item), until):
            seen[(user, item)] = at

    for event, item in _shown(events, excluded):
        shown(event.user_id, item, event.created_at)
    users = sorted({user for user, _, _ in clicks})
    for start in range(0, len(users), 1000):  # bounded IN lists
        chunk = users[start : start + 1000]
        impressions = (
            select(Interaction.user_id, Interaction.item_id, func.min(Interaction.ts))
            .where(
                Interaction.type == "impression",
                col(Interaction.user_id).in_(chunk),
                col(Interaction.item_id).is_not(None),
                col(Interaction.ts) >= since - SHOWN_LOOKBACK,
                col(Interaction.ts) < until,
            )
            .group_by(Interaction.user_id, Interaction.item_id)
        )
        for user, item, at in s.exec(impressions):
            shown(user, item, at)
        earlier = select(Event.user_id, Event.slots, Event.created_at).where(
            col(Event.user_id).in_(chunk), col(Event.created_at) >= since - SHOWN_LOOKBACK, col(Event.created_at) < since
        )
        for user, slots, at in s.exec(earlier):
            for slot in slots:
                shown(user, slot["item_id"], at)
    out: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for user, item, ts in clicks:
        if not seen.get((user, item), until) <= ts:
            out[user].append((ts, item))
    return dict(out)


def user_behaviour(s: Session, since: datetime, until: datetime) -> tuple[list[str], np.ndarray]:
    """Users active in [since, until) (shown recommendations or clicking; not excluded) and their behaviour in
    feedback.anomalies.BEHAVIOUR order. A user's clicks are the positive client rewards of shown slots plus the
    clicks without an impression (see unseen_clicks): clicks per active minute, clicks without an impression,
    positive rewards per shown slot, distinct items clicked, burstiness of the click times."""
    excluded = _excluded(s)
    events = _events(s, since, until)
    shown: dict[str, int] = defaultdict(int)
    times: dict[str, list[float]] = defaultdict(list)
    for event, _ in _shown(events, excluded):
        shown[event.user_id] += 1
        times[event.user_id].append(event.created_at.timestamp())
    rewarded: dict[str, int] = defaultdict(int)
    click_times: dict[str, list[float]] = defaultdict(list)
    items: dict[str, set[str]] = defaultdict(set)
    for r in _client_rewards(s, [e.id for e in events], excluded):
        if r.value > 0:
            rewarded[r.user_id] += 1
            click_times[r.user_id].append(r.received_at.timestamp())
            items[r.user_id].add(r.item_id)
    unseen = unseen_clicks(s, since, until, events, excluded)
    for user, clicks in unseen.items():
        click_times[user] += [ts.timestamp() for ts, _ in clicks]
        items[user].update(item for _, item in clicks)
    users = sorted(set(shown) | set(unseen))
    rows = []
    for user in users:
        stamps = times[user] + click_times[user]
        minutes = max((max(stamps) - min(stamps)) / 60, 1.0)
        rows.append(
            [
                len(click_times[user]) / minutes,
                float(len(unseen.get(user, ()))),
                rewarded[user] / shown[user] if shown[user] else 0.0,
                float(len(items[user])),
                anomalies.burstiness(click_times[user]),
            ]
        )
    return users, np.asarray(rows, dtype=float).reshape(len(users), len(anomalies.BEHAVIOUR))


def scan_users(s: Session, settings: Settings, now: datetime, result: ScanResult) -> None:
    users, behaviour = user_behaviour(s, now - timedelta(seconds=settings.fraud_window_seconds), now)
    result.users = len(users)
    flags = anomalies.fraud_like(users, behaviour, contamination=settings.fraud_contamination, min_users=settings.fraud_min_users)
    flags = [f for f in flags if -f.score >= settings.fraud_min_score]
    if not flags:
        return
    medians = dict(zip(anomalies.BEHAVIOUR, np.median(behaviour, axis=0)))
    for flag in flags:
        pending = s.exec(
            select(ReviewTask.id).where(
                ReviewTask.queue == ANOMALIES,
                ReviewTask.subject_type == "user",
                ReviewTask.subject_id == flag.user_id,
                col(ReviewTask.status) != "resolved",
            )
        ).first()
        if pending is not None:
            continue  # already waiting for a reviewer
        # The task's evidence is the user's own behaviour alone (rounded), so the same behaviour is the same
        # task: enqueue answers the existing one, and a user a reviewer dismissed for it is not flagged again.
        seen = {k: _sig(v) for k, v in flag.features.items()}
        task = validate_task(ANOMALIES, "user", flag.user_id, {"behaviour": seen}, priority=20)
        task_id, created = review.enqueue(s, task, SYSTEM, now=now)
        if created:
            evidence = {"behaviour": seen, "population_median": {k: _sig(float(v)) for k, v in medians.items()}}
            result.flagged.append(flag.user_id)
            raised = raise_alert(
                s,
                "fraud_like",
                "user",
                flag.user_id,
                "yellow",
                f"user {flag.user_id} behaves unlike the other {len(users) - 1} active users (outlier score "
                f"{flag.score:.3f}); sent to the anomalies queue",
                evidence,
                detail=task.evidence_key[:16],
                review_task_id=task_id,
                now=now,
            )
            if raised.created:
                result.alerts.append(raised.id)


def scan_anomalies(s: Session, settings: Settings, now: datetime | None = None) -> ScanResult:
    now = now or utcnow()
    result = ScanResult()
    scan_drops(s, settings, now, result)
    scan_users(s, settings, now, result)
    s.flush()
    return result


# ---------------------------------------------------------------------------------------------- drift


def drift_rules(settings: Settings) -> drift.DriftRules:
    return drift.DriftRules(
        psi_yellow=settings.drift_psi_yellow,
        psi_red=settings.drift_psi_red,
        ks_yellow=settings.drift_ks_yellow,
        ks_red=settings.drift_ks_red,
        min_samples=settings.drift_min_samples,
    )


def window_features(s: Session, since: datetime, until: datetime) -> dict[str, list]:
    """What drift compares, from the decisions logged in [since, until): each context field ("context.<key>":
    numbers, or strings for anything else), the chosen (first) item's Q-value ("score") and every shown slot's
    probability ("probability"), each decision's reward rate ("reward_rate": shown slots with a positive client
    reward / shown slots) and the poll answers' rewards ("poll_answer")."""
    excluded = _excluded(s)
    events = [e for e in _events(s, since, until) if e.user_id not in excluded]
    positive = {(r.event_id, r.item_id) for r in _client_rewards(s, [e.id for e in events], excluded) if r.value > 0}
    out: dict[str, list] = defaultdict(list)
    for event in events:
        for key, value in (event.context or {}).items():
            number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            out[f"context.{key}"].append(float(value) if number else str(value))
        if event.slots:
            q = _q(event, event.slots[0]["item_id"])
            if q is not None:
                out["score"].append(q)
            out["probability"] += [float(slot["probability"]) for slot in event.slots]
            out["reward_rate"].append(sum((event.id, slot["item_id"]) in positive for slot in event.slots) / len(event.slots))
    answers = s.exec(
        select(PollResponse.reward_value, PollResponse.respondent_id).where(
            col(PollResponse.created_at) >= since,
            col(PollResponse.created_at) < until,
            col(PollResponse.reward_value).is_not(None),
        )
    )
    out["poll_answer"] = [float(v) for v, who in answers if who not in excluded]
    contexts = sorted((k for k in out if k.startswith("context.")), key=lambda k: -len(out[k]))
    for key in contexts[MAX_CONTEXT_FEATURES:]:
        del out[key]
    for key in contexts[:MAX_CONTEXT_FEATURES]:
        if not all(isinstance(v, float) for v in out[key]):  # mixed numbers and strings: compared as categories
            out[key] = [str(v) for v in out[key]]
    return dict(out)


def scan_drift(s: Session, settings: Settings, now: datetime | None = None) -> tuple[list[DriftReport], list[int], int | None]:
    """Compare the current window with the reference window before it, store one report per feature, raise an
    alert per red feature, and ask for a retrain when a feature turned red (one without an open alert yet: a drift
    that stays red after the retrain does not ask again every scan). (reports, new alert ids, requested run id)"""
    now = now or utcnow()
    current_start = now - timedelta(seconds=settings.drift_current_seconds)
    reference_start = current_start - timedelta(seconds=settings.drift_reference_seconds)
    reference = window_features(s, reference_start, current_start)
    current = window_features(s, current_start, now)
    rules = drift_rules(settings)
    compared = []
    for feature in sorted(set(reference) | set(current)):
        ref, cur = reference.get(feature, []), current.get(feature, [])
        if ref and cur and isinstance(ref[0], str) != isinstance(cur[0], str):
            ref, cur = [str(v) for v in ref], [str(v) for v in cur]
        compared.append((feature, drift.compare(ref, cur, rules)))
    turned = [f for f, found in compared if found.colour == "red" and _open_alert(s, "drift", "feature", f) is None]
    retrain = job_requests.request_run(s, "retrain", f"drift red: {', '.join(turned)}") if turned else None
    reports, alerts = [], []
    for feature, found in compared:
        report = DriftReport(
            at=now,
            feature=feature[:128],
            psi=found.psi,
            ks=found.ks,
            ks_p=found.ks_p,
            colour=found.colour,
            reference_start=reference_start,
            reference_end=current_start,
            current_start=current_start,
            current_end=now,
            reference_n=found.reference_n,
            current_n=found.current_n,
        )
        s.add(report)
        reports.append(report)
        if found.colour == "red":
            ks = f", KS {found.ks:.3f} (p {found.ks_p:.2g})" if found.ks is not None else ""
            asked = f"; retrain requested (job run {retrain})" if feature in turned else ""
            raised = raise_alert(
                s,
                "drift",
                "feature",
                feature,
                "red",
                f"{feature} drifted: PSI {found.psi:.3f}{ks}, current {found.current_n} against reference "
                f"{found.reference_n}{asked}",
                {
                    "psi": found.psi,
                    "ks": found.ks,
                    "ks_p": found.ks_p,
                    "reference_n": found.reference_n,
                    "current_n": found.current_n,
                    "retrain_run": retrain if feature in turned else None,
                },
                now=now,
            )
            if raised.created:
                alerts.append(raised.id)
    s.flush()
    return reports, alerts, retrain


def latest_drift(s: Session) -> list[DriftReport]:
    """The most recent drift-scan run's reports."""
    at = s.exec(select(DriftReport.at).order_by(col(DriftReport.at).desc()).limit(1)).first()
    if at is None:
        return []
    return list(s.exec(select(DriftReport).where(DriftReport.at == at).order_by(DriftReport.feature)))


# ---------------------------------------------------------------------------------------------- job runs


def recent_runs(s: Session, job: str, limit: int = 10) -> list[JobRun]:
    return list(s.exec(select(JobRun).where(JobRun.job == job).order_by(col(JobRun.id).desc()).limit(limit)))
