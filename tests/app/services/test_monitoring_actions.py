"""What KPI colours set off: red on a model KPI of the serving release takes it out of serving and asks for a
retrain; yellow asks for the next KPI snapshot sooner."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from app.models import Alert, JobRun, KpiSnapshot, ModelRequest, ModelVersion
from app.services import monitoring
from tests.app.services.test_monitoring import NOW, decision, release, reward, session, settings, store


def misjudged(version: str, at) -> list:
    """Four decisions whose Q-values rank the outcomes backwards: AUC 0 and F1 0, both red."""
    rows = []
    for n, (q, value) in enumerate(((0.9, 0.0), (0.8, 0.0), (0.2, 1.0), (0.1, 1.0))):
        event = decision(f"u{n}", ["i1"], at + timedelta(minutes=n), version=version, qs={"i1": q})
        rows += [event, reward(event, "i1", value)]
    return rows


def keep_model(app, version: str) -> None:
    with session(app) as s:
        s.add(ModelVersion(version=version, archive=b"kept", source="learner"))
        s.commit()


def requests(app) -> list[tuple[str, str, str]]:
    with session(app) as s:
        return [(r.action, r.version, r.detail) for r in s.exec(select(ModelRequest).order_by(ModelRequest.id))]


def runs(app, job: str) -> list[JobRun]:
    with session(app) as s:
        return list(s.exec(select(JobRun).where(JobRun.job == job).order_by(JobRun.id)))


def test_red_auc_on_the_serving_release_rolls_back_and_asks_for_a_retrain_once(bare):
    keep_model(bare, "v1")
    release(bare, "v1", NOW - timedelta(hours=3), "initial")
    serving = release(bare, "v2", NOW - timedelta(hours=2))
    store(bare, *misjudged("v9", NOW - timedelta(minutes=30)))
    config = settings(bare, kpi_window_seconds=3600, kpi_min_labels=4)
    with session(bare) as s:
        run = monitoring.snapshot_kpis(s, config, now=NOW)
        s.commit()
    reason = f"red auc, f1 on {serving}"
    assert requests(bare) == [("rollback", "v1", reason)]
    [retrain] = runs(bare, "retrain")
    assert (retrain.status, retrain.trigger) == ("requested", reason)
    assert run.actions == [f"release {serving}: rollback to v1", f"retrain requested ({reason})"]
    with session(bare) as s:
        alerts = {a.key: a for a in s.exec(select(Alert))}
    auc = alerts[f"kpi:model:{serving}:auc"]
    assert auc.message == (
        f"auc is 0.000 for release {serving}, below its red limit 0.75 (over 4); "
        f"taken out of serving (rollback to v1), retrain requested (job run {retrain.id})"
    )
    assert auc.evidence["taken_out"] == "rollback to v1" and auc.evidence["retrain_run"] == retrain.id
    assert alerts[f"kpi:model:{serving}:f1"].evidence["taken_out"] == "rollback to v1"
    assert "taken_out" not in alerts["kpi:model:*:auc"].evidence  # overall mixes releases: reported, not acted on

    with session(bare) as s:  # the learner has not rolled back yet: the same red waits for it
        again = monitoring.snapshot_kpis(s, config, now=NOW + timedelta(minutes=15))
        s.commit()
    assert again.actions == [] and again.alerts == [] and len(requests(bare)) == 1 and len(runs(bare, "retrain")) == 1


def test_without_an_earlier_good_release_red_withdraws_to_the_fallback_ranking(bare):
    serving = release(bare, "v2", NOW - timedelta(hours=2), "initial")
    store(bare, *misjudged("v2", NOW - timedelta(minutes=30)))
    with session(bare) as s:
        monitoring.snapshot_kpis(s, settings(bare, kpi_window_seconds=3600, kpi_min_labels=4), now=NOW)
        s.commit()
        alert = s.exec(select(Alert).where(Alert.key == f"kpi:model:{serving}:auc")).one()
    assert requests(bare) == [("withdraw", "fallback", f"red auc, f1 on {serving}")]
    assert "; withdrawn to the fallback ranking, retrain requested (job run" in alert.message


def test_red_on_a_release_that_no_longer_serves_takes_nothing_out(bare):
    old = release(bare, "v1", NOW - timedelta(hours=3), "initial")
    store(bare, *misjudged("v1", NOW - timedelta(minutes=50)))
    release(bare, "v2", NOW - timedelta(minutes=10))
    with session(bare) as s:
        run = monitoring.snapshot_kpis(s, settings(bare, kpi_window_seconds=3600, kpi_min_labels=4), now=NOW)
        s.commit()
        assert s.exec(select(Alert).where(Alert.key == f"kpi:model:{old}:auc")).one().evidence.get("taken_out") is None
    assert run.actions == [] and requests(bare) == [] and runs(bare, "retrain") == []


def test_red_auc_on_fewer_labels_than_kpi_min_labels_is_reported_and_takes_nothing_out(bare):
    serving = release(bare, "v2", NOW - timedelta(minutes=15), "initial")
    store(bare, *misjudged("v2", NOW - timedelta(minutes=10)))  # 4 labels, 15 minutes after the release
    with session(bare) as s:
        run = monitoring.snapshot_kpis(s, settings(bare, kpi_window_seconds=3600), now=NOW)  # kpi_min_labels 200
        s.commit()
        auc = s.exec(select(KpiSnapshot).where(KpiSnapshot.name == "auc", KpiSnapshot.model_version == serving)).one()
        assert (auc.value, auc.n, auc.colour) == (0.0, 4, "unknown")
        assert not [a.key for a in s.exec(select(Alert)) if a.key.endswith((":auc", ":f1"))]  # nor for all releases
    assert run.actions == [] and requests(bare) == [] and runs(bare, "retrain") == []


def yellow_log(app) -> str:
    """Conversion 2 in 16 shown slots (0.125): yellow between 0.10 and 0.15; nothing else has a verdict."""
    label = release(app, "v1", NOW - timedelta(hours=3), "initial")
    rows = []
    for n in range(8):
        event = decision(f"u{n}", ["i1", "i2"], NOW - timedelta(minutes=n + 1))
        rows += [event] + ([reward(event, "i1", 1.0)] if n < 2 else [])
    store(app, *rows)
    return label


def test_yellow_asks_for_the_next_snapshot_sooner(bare):
    label = yellow_log(bare)
    config = settings(bare, kpi_window_seconds=3600)  # kpi_seconds 900: a closer check after 225 s
    with session(bare) as s:
        run = monitoring.snapshot_kpis(s, config, now=NOW)
        s.commit()
        assert monitoring.snapshot_kpis(s, config, now=NOW + timedelta(seconds=30)).actions == []  # one is waiting
        s.commit()
    [closer] = runs(bare, "kpi-snapshot")
    assert (closer.status, closer.trigger) == ("requested", f"yellow: conversion on *, conversion on {label}")
    assert closer.started_at == NOW + timedelta(seconds=225)  # not before then
    assert run.actions == ["next KPI check at 12:33:45 (yellow)"] and run.alerts == []

    with session(bare) as s:
        s.get(JobRun, closer.id).status = "ok"  # the scheduler ran it (too early: a snapshot 40 s after the last)
        s.commit()
        assert monitoring.snapshot_kpis(s, config, now=NOW + timedelta(seconds=40)).actions == []
        s.commit()
        later = monitoring.snapshot_kpis(s, config, now=NOW + timedelta(seconds=300))
        s.commit()
    assert later.actions == ["next KPI check at 12:38:45 (yellow)"]
    assert [r.status for r in runs(bare, "kpi-snapshot")] == ["ok", "requested"]


def test_the_closer_check_follows_its_setting_and_green_asks_for_none(bare):
    yellow_log(bare)
    with session(bare) as s:
        monitoring.snapshot_kpis(s, settings(bare, kpi_window_seconds=3600, kpi_yellow_seconds=900), now=NOW)
        s.commit()
    assert runs(bare, "kpi-snapshot") == []  # no sooner than the schedule: nothing to ask
    with session(bare) as s:
        monitoring.snapshot_kpis(s, settings(bare, kpi_window_seconds=3600, kpi_yellow_seconds=60), now=NOW)
        s.commit()
    assert [r.started_at for r in runs(bare, "kpi-snapshot")] == [NOW + timedelta(seconds=60)]
    with session(bare) as s:
        s.delete(s.exec(select(JobRun)).one())
        s.commit()
        green = settings(bare, kpi_window_seconds=3600, kpi_bands="conversion=0.1:0.05")
        assert monitoring.snapshot_kpis(s, green, now=NOW).actions == []
        s.commit()
    assert runs(bare, "kpi-snapshot") == []
