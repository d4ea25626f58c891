"""Monitoring: KPIs, engagement drops, fraud-like users and drift, on small logs written straight to the database."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import numpy as np
import pytest
from pydantic import ValidationError
from sqlmodel import Session, select

from app.models import (
    Alert,
    AuditEntry,
    DriftReport,
    Event,
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
from app.services import monitoring, releases
from app.settings import Settings
from bandit.features import Candidate, Shared

NOW = datetime.fromisoformat("2026-11-27T12:30:00+00:00")


def decision(
    user: str,
    items: list[str],
    at: datetime,
    *,
    version: str = "v1",
    context: dict | None = None,
    policy: str | None = None,
    qs: dict[str, float] | None = None,
) -> Event:
    """A logged decision showing `items` (first slot first), as the recommender logs one."""
    context = context if context is not None else {"device": "mobile"}
    qs = qs or {}
    candidates = [Candidate(i, "books", (), 0.5, qs.get(i, 0.5)) for i in items]
    return Event(
        id=uuid.uuid4().hex,
        user_id=user,
        context=context,
        shared=Shared.at(user, context, at).to_dict(),
        candidates=[c.to_dict() for c in candidates],
        slots=[{"position": n, "item_id": i, "probability": 0.8 if n == 0 else 0.1} for n, i in enumerate(items)],
        segment="all",
        model_version=version,
        policy_item_id=policy if policy is not None else items[0],
        created_at=at,
    )


def reward(event: Event, item: str, value: float, at: datetime | None = None, learn: bool = True) -> Reward:
    return Reward(
        event_id=event.id,
        item_id=item,
        user_id=event.user_id,
        value=value,
        learn_value=value if learn else None,
        received_at=at or event.created_at + timedelta(seconds=5),
    )


def store(app, *rows) -> None:
    with Session(app.extensions["db_engine"], expire_on_commit=False) as s:
        events = [r for r in rows if isinstance(r, Event)]
        s.add_all(events)
        s.flush()
        s.add_all([r for r in rows if not isinstance(r, Event)])
        s.commit()


def settings(app, **changes) -> Settings:
    return app.config["FEEDLOOP"].model_copy(update=changes)


def session(app) -> Session:
    return Session(app.extensions["db_engine"])


# ---------------------------------------------------------------------------------------------- KPIs


def release(app, version: str, at: datetime, kind: str = "promotion") -> str:
    """Record a release as the learner does; its KPI label ("v2#3")."""
    with session(app) as s:
        release_id = releases.record(s, version, kind, at=at)
        s.commit()
    return f"{version}#{release_id}"


def kpi_log(app) -> tuple[str, str]:
    """Release 1 (v1): 2 decisions × 2 slots, one click (0.3) and one purchase (1.0); the second decision explored.
    Release 2 (v2): 1 decision × 2 slots, nothing. Poll: 2 asks on release 1's decisions, 1 answer rejecting a
    recommended item. The decisions carry the learner's own version numbers (v7, v8), which KPIs do not group by."""
    first = release(app, "v1", NOW - timedelta(hours=3), "initial")
    second = release(app, "v2", NOW - timedelta(minutes=25))
    at = NOW - timedelta(minutes=30)
    a = decision("u1", ["i1", "i2"], at, version="v7", qs={"i1": 0.9, "i2": 0.2})
    b = decision("u2", ["i3", "i4"], at, version="v8", policy="i4", qs={"i3": 0.1, "i4": 0.7})
    c = decision("u3", ["i1", "i2"], at + timedelta(minutes=10), version="v8")
    store(
        app,
        a,
        b,
        c,
        reward(a, "i1", 1.0),
        reward(a, "i2", 0.3, learn=False),
        reward(b, "i3", 0.0),
        Reward(event_id=c.id, item_id="i1", user_id="u3", source="settlement", value=0.0, learn_value=0.0),
    )
    with session(app) as s:
        s.add(PollAsk(poll_id=_poll(s), respondent_id="u1", event_id=a.id, asked_at=at))
        s.add(PollAsk(poll_id=_poll(s), respondent_id="u2", event_id=b.id, asked_at=at))
        s.add(
            PollResponse(
                poll_id=_poll(s), respondent_id="u2", answer="down", event_id=b.id, item_id="i3", reward_value=0.0, created_at=at
            )
        )
        s.commit()
    return first, second


def _poll(s: Session) -> int:
    from app.models import Poll

    poll = s.exec(select(Poll)).first()
    if poll is None:
        poll = Poll(public_token=uuid.uuid4().hex, question="Good pick?", kind="thumbs", created_by="user:1")
        s.add(poll)
        s.flush()
    return poll.id


def test_kpis_follow_their_definitions_per_release(bare):
    first, second = kpi_log(bare)
    with session(bare) as s:
        measured = monitoring.measure_kpis(s, NOW - timedelta(hours=1), NOW, 1.0, monitoring.kpis.DEFAULT_BANDS)
    assert list(measured) == [monitoring.ALL, first, second]
    v1, v2, overall = measured[first], measured[second], measured[monitoring.ALL]
    assert (v1["ctr"].value, v1["ctr"].n) == (0.5, 4)  # i1 and i2 of decision a
    assert v1["conversion"].value == 0.25 and v1["conversion"].colour == "green"
    assert v1["mean_reward"].value == pytest.approx(0.5)  # learned: 1.0 and 0.0
    assert v1["exploration_share"].value == 0.5  # decision b showed i3 while the policy chose i4
    assert v1["poll_response_rate"].value == 0.5
    assert v1["negative_hits"].value == 1.0 and v1["negative_hits"].colour == "red"
    # Q 0.9 → reward 1 (learned), Q 0.1 → reward 0 (learned) and the poll's 0: perfectly ranked, but on 3 labels
    assert (v1["auc"].value, v1["auc"].n, v1["auc"].colour) == (1.0, 3, "unknown")
    assert (v1["f1"].value, v1["f1"].colour) == (1.0, "unknown")
    assert (v2["ctr"].value, v2["conversion"].colour, v2["negative_hits"].value) == (0.0, "red", None)
    assert overall["ctr"].value == pytest.approx(2 / 6)
    assert overall["negative_hits"].colour == "red"
    assert overall["mean_reward"].n == 3
    assert "missed_items" not in v1 and overall["missed_items"] == monitoring.Kpi(None, 0, "unknown")  # no purchases


def test_model_kpis_are_judged_from_kpi_min_labels_labels(bare):
    first, _ = kpi_log(bare)
    with session(bare) as s:
        measured = monitoring.measure_kpis(s, NOW - timedelta(hours=1), NOW, 1.0, monitoring.kpis.DEFAULT_BANDS, min_labels=3)
    assert measured[first]["auc"].colour == measured[first]["f1"].colour == "green"
    assert measured[first]["negative_hits"].colour == "red"  # not a model KPI: judged on any number
    assert Settings(home=bare.config["FEEDLOOP"].home).kpi_min_labels == 200


def low_ctr_log(app, seed: int, ranked: bool) -> str:
    """400 decisions of one release at a click rate of about 5%; the chosen item's Q-value is a running mean reward
    (every one below 0.5), higher for the clicked items when `ranked`, unrelated to them otherwise."""
    label = release(app, "v1", NOW - timedelta(hours=3), "initial")
    rng = np.random.default_rng(seed)
    rows = []
    for n in range(400):
        clicked = rng.random() < 0.05
        q = float(rng.uniform(0.0, 0.1)) + (0.08 if ranked and clicked else 0.0)
        event = decision(f"u{n}", ["i1"], NOW - timedelta(minutes=50, seconds=-5 * n), qs={"i1": q})
        rows += [event, reward(event, "i1", 1.0 if clicked else 0.0)]
    store(app, *rows)
    return label


@pytest.mark.parametrize(("ranked", "colour"), [(True, "green"), (False, "red")])
def test_f1_on_low_click_rates_tells_a_ranking_model_from_a_random_one(bare, ranked, colour):
    label = low_ctr_log(bare, seed=11, ranked=ranked)
    with session(bare) as s:
        f1 = monitoring.measure_kpis(s, NOW - timedelta(hours=1), NOW, 1.0, monitoring.kpis.DEFAULT_BANDS)[label]["f1"]
    assert f1.n == 400 and f1.colour == colour
    assert f1.value >= 0.5 if ranked else f1.value < 0.15  # at Q >= 0.5 both were 0


def test_decisions_before_the_first_release_count_overall_only(bare):
    early = decision("u1", ["i1"], NOW - timedelta(minutes=50))
    late = decision("u2", ["i1"], NOW - timedelta(minutes=10))
    store(bare, early, late, reward(early, "i1", 1.0))
    label = release(bare, "v0", NOW - timedelta(minutes=30), "initial")
    with session(bare) as s:
        measured = monitoring.measure_kpis(s, NOW - timedelta(hours=1), NOW, 1.0, monitoring.kpis.DEFAULT_BANDS)
    assert list(measured) == [monitoring.ALL, label]
    assert (measured[monitoring.ALL]["ctr"].value, measured[monitoring.ALL]["ctr"].n) == (0.5, 2)
    assert (measured[label]["ctr"].value, measured[label]["ctr"].n) == (0.0, 1)


def test_a_snapshot_stores_every_kpi_and_a_red_one_alerts_once(bare):
    first, second = kpi_log(bare)
    config = settings(bare, kpi_window_seconds=3600)
    with session(bare) as s:
        run = monitoring.snapshot_kpis(s, config, now=NOW)
        s.commit()
        again = monitoring.snapshot_kpis(s, config, now=NOW + timedelta(minutes=15))
        s.commit()
        # every KPI overall, and every one but missed_items (overall only) for each release
        assert run.stored == again.stored == 3 * len(monitoring.KPI_NAMES) - 2
        assert run.alerts and again.alerts == []  # still open: not raised again
        keys = sorted(a.key for a in s.exec(select(Alert)))
        assert f"kpi:model:{first}:negative_hits" in keys and f"kpi:model:{second}:conversion" in keys
        assert f"kpi:model:{first}:conversion" not in keys
        assert "releases" in s.exec(select(Alert).where(Alert.key == "kpi:model:*:negative_hits")).one().message
        series = {x.name: x for x in monitoring.kpi_series(s, config, NOW - timedelta(days=1))}
        assert series["ctr"].values == [pytest.approx(2 / 6)] * 2 and series["negative_hits"].colour == "red"
        assert series["negative_hits"].band.red == 0.05 and series["ctr"].band is None
        assert (
            s.exec(select(KpiSnapshot).where(KpiSnapshot.name == "auc", KpiSnapshot.model_version == second)).first().value
            is None
        )
        assert monitoring.kpi_versions(s, NOW - timedelta(days=1)) == [monitoring.ALL, second, first]


def test_configured_bands_change_the_colours(bare):
    first, _ = kpi_log(bare)
    config = settings(bare, kpi_window_seconds=3600, kpi_bands="conversion=0.5:0.3,negative_hits=1:1")
    with session(bare) as s:
        monitoring.snapshot_kpis(s, config, now=NOW)
        colours = {r.name: r.colour for r in s.exec(select(KpiSnapshot).where(KpiSnapshot.model_version == first))}
    assert colours["conversion"] == "red" and colours["negative_hits"] == "green" and colours["ctr"] == "unknown"
    with pytest.raises(ValidationError, match="unknown KPI"):
        Settings(home=bare.config["FEEDLOOP"].home, kpi_bands="ctr=0.1:0.05")
    with pytest.raises(ValidationError, match="good side"):
        Settings(home=bare.config["FEEDLOOP"].home, kpi_bands="auc=0.5:0.9")


def purchase(user: str, item: str, at: datetime, kind: str = "purchase") -> Interaction:
    return Interaction(type=kind, user_id=user, item_id=item, ts=at)


def test_missed_items_are_purchases_of_items_not_recommended_to_the_buyer_before(bare):
    from app.models import ExcludedUser

    store(
        bare,
        decision("u1", ["i1", "i5"], NOW - timedelta(minutes=40)),
        decision("u1", ["i2"], NOW - timedelta(days=2)),  # before the window, inside the 7-day lookback
        decision("u3", ["i3"], NOW - timedelta(minutes=5)),  # shown after u3 bought it
        decision("u4", ["i4"], NOW - timedelta(days=10)),  # beyond the lookback
        purchase("u1", "i1", NOW - timedelta(minutes=30)),  # recommended: not missed
        purchase("u1", "i2", NOW - timedelta(minutes=30)),  # recommended two days ago: not missed
        purchase("u2", "i1", NOW - timedelta(minutes=30)),  # shown to u1, not to u2: missed
        purchase("u3", "i3", NOW - timedelta(minutes=20)),  # missed
        purchase("u4", "i4", NOW - timedelta(minutes=20)),  # missed
        purchase("bot", "i9", NOW - timedelta(minutes=20)),  # excluded user: not counted
        purchase("u5", "i7", NOW - timedelta(minutes=20), kind="click"),  # not a purchase
        purchase("u5", "i7", NOW - timedelta(hours=2)),  # before the window
        ExcludedUser(user_id="bot", reason="confirmed"),
    )
    config = settings(bare, kpi_window_seconds=3600)
    with session(bare) as s:
        monitoring.snapshot_kpis(s, config, now=NOW)
        s.commit()
        row = s.exec(select(KpiSnapshot).where(KpiSnapshot.name == "missed_items")).one()  # overall only
        assert (row.model_version, row.value, row.n, row.colour) == (monitoring.ALL, 0.6, 5, "red")
        alert = s.exec(select(Alert).where(Alert.key == "kpi:model:*:missed_items")).one()
        assert alert.message == "missed_items is 0.600 for all model releases, above its red limit 0.1 (over 5)"
        tight = monitoring.measure_kpis(
            s, NOW - timedelta(hours=1), NOW, 1.0, monitoring.kpis.DEFAULT_BANDS, missed_lookback=timedelta(hours=1)
        )
    assert tight[monitoring.ALL]["missed_items"].value == 0.8  # the purchase recommended two days ago is missed too


def test_resolving_an_alert_is_audited_and_lets_it_be_raised_again(bare):
    with session(bare) as s:
        first = monitoring.raise_alert(s, "drift", "feature", "score", "red", "score drifted", now=NOW)
        assert monitoring.raise_alert(s, "drift", "feature", "score", "red", "again", now=NOW) == monitoring.Raised(
            first.id, False
        )
        assert monitoring.resolve_alert(s, first.id, "user:7", now=NOW).resolved_by == "user:7"
        assert monitoring.resolve_alert(s, first.id, "user:7", now=NOW) is None  # not open any more
        assert monitoring.open_alerts(s) == []
        assert monitoring.raise_alert(s, "drift", "feature", "score", "red", "again", now=NOW).created
        entry = s.exec(select(AuditEntry).where(AuditEntry.action == "resolve_alert")).one()
        assert (entry.actor, entry.subject_id) == ("user:7", str(first.id))


# ---------------------------------------------------------------------------------------------- drops


def traffic(rng, hours: int, end: datetime, *, drop_item: str | None = None, per_hour: int = 30) -> list:
    """Hourly traffic on items i0-i3 (category books, i3 in toys) with a reward rate of about 0.5; in the last
    hour `drop_item` is never rewarded."""
    rows: list = []
    start = end - timedelta(hours=hours)
    for h in range(hours):
        for n in range(per_hour):
            at = start + timedelta(hours=h, minutes=n * 60 // per_hour)
            items = [f"i{k}" for k in rng.permutation(4)[:3]]
            event = decision(f"u{rng.integers(40)}", items, at)
            rows.append(event)
            for item in items:
                dropped = h == hours - 1 and item == drop_item
                if not dropped and rng.random() < 0.5:
                    rows.append(reward(event, item, 1.0))
    return rows


def catalogue(app) -> None:
    with session(app) as s:
        s.add_all([Item(id=f"i{k}", title=f"Item {k}", category="toys" if k == 3 else "books") for k in range(4)])
        s.commit()


def test_an_injected_engagement_drop_alerts_and_reaches_the_queue(bare):
    catalogue(bare)
    end = NOW.replace(minute=0)
    store(bare, *traffic(np.random.default_rng(3), 24, end, drop_item="i3"))
    config = settings(bare, anomaly_hours=24, drop_min_shown=5, fraud_min_users=1000)
    with session(bare) as s:
        found = monitoring.scan_anomalies(s, config, now=NOW)
        s.commit()
        assert "item:i3" in found.drops and "category:toys" in found.drops
        assert "overall" not in found.drops and "item:i0" not in found.drops
        task = s.exec(select(ReviewTask).where(ReviewTask.subject_type == "item")).one()
        assert (task.queue, task.subject_id) == ("anomalies", "i3")
        assert task.evidence["series"]["reward rate"][-1] == 0.0 and len(task.evidence["x"]) == 24
        alerts = {a.subject_id: a for a in s.exec(select(Alert).where(Alert.kind == "engagement_drop"))}
        assert alerts["i3"].review_task_id == task.id and "toys" in alerts
        assert monitoring.scan_anomalies(s, config, now=NOW).alerts == []  # the same drop: no second alert or task
        assert len(s.exec(select(ReviewTask)).all()) == 1


def interactions(rng, hours: int, end: datetime, *, drop_item: str | None = None) -> list:
    """Hourly impression and click events on i0-i3 (click rate about 0.3); in the last hour `drop_item` gets
    impressions but no clicks."""
    rows = []
    start = end - timedelta(hours=hours)
    for h in range(hours):
        for n in range(200):
            at = start + timedelta(hours=h, seconds=n * 18)
            item = f"i{n % 4}"
            category = "toys" if item == "i3" else "books"
            rows.append(Interaction(type="impression", user_id=f"u{n}", item_id=item, category=category, ts=at, received_at=at))
            if rng.random() < 0.3 and not (h == hours - 1 and item == drop_item):
                rows.append(Interaction(type="click", user_id=f"u{n}", item_id=item, category=category, ts=at, received_at=at))
    return rows


def test_a_click_rate_drop_from_interaction_events_alerts_with_both_series(bare):
    catalogue(bare)
    end = NOW.replace(minute=0)
    store(bare, *traffic(np.random.default_rng(3), 24, end), *interactions(np.random.default_rng(5), 24, end, drop_item="i2"))
    config = settings(bare, anomaly_hours=24, drop_min_shown=5, fraud_min_users=1000)
    with session(bare) as s:
        found = monitoring.scan_anomalies(s, config, now=NOW)
        s.commit()
        assert found.drops == ["item:i2"]
        task = s.exec(select(ReviewTask).where(ReviewTask.subject_type == "item")).one()
        assert task.evidence["metric"] == "click rate" and task.evidence["series"]["click rate"][-1] == 0.0
        assert task.evidence["series"]["reward rate"][-1] > 0  # rewards held up: only the clicks fell
        alert = s.exec(select(Alert).where(Alert.kind == "engagement_drop")).one()
        assert alert.message.startswith("click rate of item i2 fell to 0.000")


def test_steady_engagement_raises_nothing(bare):
    catalogue(bare)
    store(bare, *traffic(np.random.default_rng(4), 24, NOW.replace(minute=0)))
    config = settings(bare, anomaly_hours=24, drop_min_shown=5, fraud_min_users=1000)
    with session(bare) as s:
        assert monitoring.scan_anomalies(s, config, now=NOW).drops == []
        assert s.exec(select(Alert)).all() == []


# ---------------------------------------------------------------------------------------------- fraud


def population(seed: int, users: int = 60, fraud: bool = True, end: datetime = NOW) -> list:
    """Ordinary users: a few visits over the day, rewarded now and then at human pace. The fraud user: a
    visit every minute for an hour, rewarding everything it is shown within a second."""
    rng = np.random.default_rng(seed)
    rows: list = []
    for u in range(users):
        for _ in range(int(rng.integers(2, 7))):
            at = end - timedelta(seconds=float(rng.uniform(600, 80_000)))
            items = [f"i{k}" for k in rng.permutation(20)[:3]]
            event = decision(f"user{u}", items, at)
            rows.append(event)
            for item in items:
                if rng.random() < 0.15:
                    rows.append(reward(event, item, 1.0, at + timedelta(seconds=float(rng.uniform(5, 600)))))
    if fraud:
        for minute in range(60):
            at = end - timedelta(hours=2) + timedelta(minutes=minute)
            items = [f"i{k}" for k in rng.permutation(20)[:3]]
            event = decision("bot", items, at)
            rows.append(event)
            rows += [reward(event, item, 1.0, at + timedelta(milliseconds=300 * (n + 1))) for n, item in enumerate(items)]
    return rows


def flagged_users(app, config) -> list[str]:
    with session(app) as s:
        found = monitoring.scan_anomalies(s, config, now=NOW)
        s.commit()
        return found.flagged


def test_an_injected_fraud_like_user_reaches_the_queue_and_ordinary_users_do_not(bare):
    store(bare, *population(seed=1))
    config = settings(bare, anomaly_hours=24)
    assert flagged_users(bare, config) == ["bot"]
    with session(bare) as s:
        task = s.exec(select(ReviewTask).where(ReviewTask.subject_type == "user")).one()
        assert (task.queue, task.subject_id, task.created_by) == ("anomalies", "bot", "system:monitoring")
        assert task.evidence["behaviour"]["reward_rate"] == 1.0
        assert task.evidence["behaviour"]["clicks_without_impression"] == 0.0  # its app reports no click events
        alert = s.exec(select(Alert).where(Alert.kind == "fraud_like")).one()
        assert alert.review_task_id == task.id and alert.evidence["population_median"]["reward_rate"] < 0.5
    assert flagged_users(bare, config) == []  # still waiting for a reviewer: not enqueued again


def test_a_dismissed_user_is_not_flagged_again_for_the_same_evidence(bare):
    store(bare, *population(seed=2))
    config = settings(bare, anomaly_hours=24)
    assert flagged_users(bare, config) == ["bot"]
    with session(bare) as s:
        task = s.exec(select(ReviewTask).where(ReviewTask.subject_id == "bot")).one()
        task.status, task.decision, task.resolved_at = "resolved", "dismiss", utcnow()
        s.add(task)
        s.commit()
    assert flagged_users(bare, config) == []
    with session(bare) as s:
        assert len(s.exec(select(ReviewTask)).all()) == 1


def test_excluded_users_are_left_out_and_a_small_population_gets_no_verdict(bare):
    from app.models import ExcludedUser

    store(bare, *population(seed=3))
    with session(bare) as s:
        s.add(ExcludedUser(user_id="bot", reason="confirmed"))
        s.commit()
    assert flagged_users(bare, settings(bare, anomaly_hours=24)) == []
    with session(bare) as s:
        users, _ = monitoring.user_behaviour(s, NOW - timedelta(days=1), NOW)
        assert "bot" not in users and len(users) == 60
    assert flagged_users(bare, settings(bare, anomaly_hours=24, fraud_min_users=100)) == []


def test_clicks_without_an_impression_are_counted_per_user(bare):
    at = NOW - timedelta(hours=1)
    shown = decision("a", ["i3"], at)
    store(
        bare,
        shown,
        purchase("a", "i1", at, kind="impression"),
        purchase("a", "i1", at + timedelta(seconds=5), kind="click"),  # after its impression
        purchase("a", "i2", at + timedelta(seconds=6), kind="click"),  # never shown
        purchase("a", "i3", at + timedelta(seconds=7), kind="click"),  # shown by a recommendation
        purchase("a", "i4", at + timedelta(seconds=8), kind="click"),  # its impression came later
        purchase("a", "i4", at + timedelta(seconds=9), kind="impression"),
        purchase("b", "i1", at + timedelta(seconds=9), kind="click"),  # a's impression is not b's
        purchase("c", "i5", NOW - timedelta(days=2), kind="impression"),  # before the window
        purchase("c", "i5", at, kind="click"),
    )
    with session(bare) as s:
        events = list(s.exec(select(Event)))
        unseen = monitoring.unseen_clicks(s, NOW - timedelta(days=1), NOW, events, set())
        assert {user: sorted(item for _, item in clicks) for user, clicks in unseen.items()} == {
            "a": ["i2", "i4"],
            "b": ["i1"],
            "c": ["i5"],
        }
        users, rows = monitoring.user_behaviour(s, NOW - timedelta(days=1), NOW)
    column = monitoring.anomalies.BEHAVIOUR.index("clicks_without_impression")
    assert users == ["a", "b", "c"] and list(rows[:, column]) == [2.0, 1.0, 1.0]  # b and c clicked, never shown


def test_a_busy_window_keeps_its_newest_clicks(bare, monkeypatch):
    monkeypatch.setattr(monitoring, "MAX_EVENTS", 2)
    at = NOW - timedelta(hours=1)
    store(
        bare,
        purchase("a", "i1", at, kind="impression"),
        purchase("a", "z1", at + timedelta(seconds=1), kind="click"),  # dropped: the oldest clicks go first
        purchase("a", "z2", at + timedelta(seconds=2), kind="click"),
        purchase("a", "i1", at + timedelta(seconds=3), kind="click"),  # kept, and its impression still counts
        purchase("a", "z3", at + timedelta(seconds=4), kind="click"),
    )
    with session(bare) as s:
        unseen = monitoring.unseen_clicks(s, NOW - timedelta(days=1), NOW, [], set())
    assert unseen == {"a": [(at + timedelta(seconds=4), "z3")]}


def test_an_item_shown_just_before_the_window_and_clicked_in_it_was_seen(bare):
    since = NOW - timedelta(hours=1)
    earlier = decision("a", ["i1"], since - timedelta(minutes=2))  # a recommendation before the window
    store(
        bare,
        earlier,
        purchase("a", "i1", since + timedelta(minutes=1), kind="click"),
        purchase("a", "i2", since - timedelta(minutes=30), kind="impression"),  # an impression before the window
        purchase("a", "i2", since + timedelta(minutes=2), kind="click"),
        purchase("a", "i3", since - timedelta(hours=3), kind="impression"),  # beyond SHOWN_LOOKBACK (an hour)
        purchase("a", "i3", since + timedelta(minutes=3), kind="click"),
        purchase("b", "i1", since + timedelta(minutes=4), kind="click"),  # shown to a, not to b
    )
    with session(bare) as s:
        unseen = monitoring.unseen_clicks(s, since, NOW, [], set())
    assert {user: [item for _, item in clicks] for user, clicks in unseen.items()} == {"a": ["i3"], "b": ["i1"]}


def clicks(rows: list, seed: int) -> list:
    """The click events an app reports beside the recommendations' rewards: one per positive reward, and now
    and then a click on an item found some other way (search, a link), with no impression recorded."""
    rng = np.random.default_rng(seed)
    events = {r.id: r for r in rows if isinstance(r, Event)}
    out = [purchase(r.user_id, r.item_id, r.received_at, kind="click") for r in rows if isinstance(r, Reward) and r.value > 0]
    for event in events.values():
        if rng.random() < 0.1:
            out.append(purchase(event.user_id, f"x{rng.integers(1000)}", event.created_at + timedelta(minutes=2), kind="click"))
    return out


def test_a_click_fraud_user_clicking_items_it_was_never_shown_is_flagged(bare):
    """An ordinary-looking user (a few visits a day) whose app reports 120 clicks on items it was never shown."""
    rows = population(seed=4, fraud=False)
    rng = np.random.default_rng(9)
    for visit in range(4):
        at = NOW - timedelta(hours=3 * visit + 1)
        rows.append(decision("clicker", [f"i{k}" for k in rng.permutation(20)[:3]], at))
    unseen = [purchase("clicker", f"z{n}", NOW - timedelta(hours=5, seconds=-29 * n), kind="click") for n in range(120)]
    store(bare, *rows, *clicks(rows, seed=4), *unseen)
    assert flagged_users(bare, settings(bare, anomaly_hours=24)) == ["clicker"]
    with session(bare) as s:
        task = s.exec(select(ReviewTask).where(ReviewTask.subject_type == "user")).one()
        assert task.subject_id == "clicker" and task.evidence["behaviour"]["clicks_without_impression"] == 120.0


def test_ordinary_users_are_rarely_flagged():
    """The false-positive rate of the detector on ordinary simulated users (no database: the behaviour rows as
    user_behaviour computes them), over several populations, each with a reward bot and a click bot in it."""
    flagged = total = 0
    for seed in range(8):
        users, rows = _simulated_behaviour(seed)
        flags = [f for f in monitoring.anomalies.fraud_like(users, rows, contamination=0.01) if -f.score >= 0.8]
        flagged += sum(f.user_id not in ("bot", "clicker") for f in flags)
        total += len(users) - 2
        assert {"bot", "clicker"} <= {f.user_id for f in flags}
    assert flagged / total <= 0.005  # measured: 0 of 1,600


def _simulated_behaviour(seed: int) -> tuple[list[str], np.ndarray]:
    """200 ordinary users (a few visits a day, a click on 15% of what they are shown, and now and then a click on
    an item found some other way); a bot rewarding everything it is shown within a second, every minute for an
    hour; a clicker visiting like everybody else whose app reports 120 clicks on items it was never shown."""
    rng = np.random.default_rng(seed)
    users, rows = [], []

    def behaviour(visits: int, unseen: int, spread: float = 80_000) -> list[float]:
        shown = 3 * visits
        rewarded = int(rng.binomial(shown, 0.15))
        times = np.sort(np.concatenate([rng.uniform(0, 80_000, rewarded), rng.uniform(0, spread, unseen)]))
        clicks = len(times)
        span = max((times[-1] - times[0]) / 60 if clicks > 1 else 0, 1.0) if clicks else 1.0
        minutes = max(span, rng.uniform(10, 1300))
        distinct = len(set(rng.integers(0, 20, rewarded))) + unseen
        return [clicks / minutes, float(unseen), rewarded / shown, distinct, monitoring.anomalies.burstiness(times)]

    for u in range(200):
        visits = int(rng.integers(2, 7))
        users.append(f"user{u}")
        rows.append(behaviour(visits, int(rng.binomial(visits, 0.1))))
    users.append("clicker")
    rows.append(behaviour(4, 120, spread=3600))
    users.append("bot")
    times = np.array([m * 60 + 0.3 * n for m in range(60) for n in range(1, 4)])
    rows.append([180 / 60, 0.0, 1.0, 20.0, monitoring.anomalies.burstiness(times)])
    return users, np.asarray(rows)


# ---------------------------------------------------------------------------------------------- drift


def drift_log(app, shift: float, end: datetime = NOW) -> None:
    """300 decisions in each of two hours: the earlier hour is the reference, the later one current; `age` moves
    by `shift` standard deviations and `device` stays the same."""
    rng = np.random.default_rng(7)
    rows = []
    for window, offset in (("reference", 2), ("current", 1)):
        for n in range(300):
            at = end - timedelta(hours=offset) + timedelta(seconds=12 * n + 1)
            age = float(rng.normal(30 + (shift * 5 if window == "current" else 0), 5))
            device = "mobile" if n % 3 else "desktop"
            rows.append(
                decision(
                    f"u{n}", ["i1", "i2"], at, context={"age": age, "device": device}, qs={"i1": float(rng.uniform(0.2, 0.8))}
                )
            )
    store(app, *rows)


def test_a_synthetic_shift_turns_drift_red_alerts_and_asks_for_a_retrain(bare):
    drift_log(bare, shift=2.0)
    config = settings(bare, drift_current_seconds=3600, drift_reference_seconds=3600)
    with session(bare) as s:
        reports, alerts, retrain = monitoring.scan_drift(s, config, now=NOW)
        s.commit()
        run = s.get(JobRun, retrain)
        assert (run.job, run.status, run.trigger) == ("retrain", "requested", "drift red: context.age")
        alert = s.exec(select(Alert)).one()
        assert f"retrain requested (job run {retrain})" in alert.message and alert.evidence["retrain_run"] == retrain
        by_feature = {r.feature: r for r in reports}
        assert by_feature["context.age"].colour == "red" and by_feature["context.age"].ks > 0.5
        assert by_feature["context.device"].colour == "green" and by_feature["context.device"].ks is None
        assert by_feature["score"].colour != "red" and by_feature["probability"].colour == "green"  # noise: PSI ~0.1
        assert (by_feature["poll_answer"].colour, by_feature["reward_rate"].colour) == ("insufficient", "green")
        assert (by_feature["context.age"].reference_n, by_feature["context.age"].current_n) == (300, 300)
        assert [a.subject_id for a in s.exec(select(Alert))] == ["context.age"] and len(alerts) == 1
        assert [r.feature for r in monitoring.latest_drift(s)] == sorted(by_feature)
        assert len(s.exec(select(DriftReport)).all()) == len(reports)
        # the next scan finds the same red with its alert still open: no second alert, no second retrain
        s.exec(select(JobRun)).one().status = "ok"  # the retrain ran
        s.commit()
        assert monitoring.scan_drift(s, config, now=NOW)[1:] == ([], None)
        assert len(s.exec(select(JobRun)).all()) == 1


def test_no_shift_stays_green(bare):
    drift_log(bare, shift=0.0)
    config = settings(bare, drift_current_seconds=3600, drift_reference_seconds=3600)
    with session(bare) as s:
        reports, alerts, retrain = monitoring.scan_drift(s, config, now=NOW)
        assert s.exec(select(JobRun)).all() == []
    assert alerts == [] and retrain is None and {r.colour for r in reports} <= {"green", "yellow", "insufficient"}
