"""Configuring review queues: independent decisions per task, claim length, labels; every change audited."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from app.models import AuditEntry, ReviewQueue
from tests.helpers import bare_app


def queue(config, name: str) -> ReviewQueue | None:
    app = bare_app(config)
    try:
        with Session(app.extensions["db_engine"]) as s:
            return s.get(ReviewQueue, name)
    finally:
        app.extensions["db_engine"].dispose()


def test_the_two_shipped_queues_are_listed(ready):
    listing = ready("queues", "list").output
    assert "anomalies\t1 decision(s) a task\tclaims hold 900 s\tconfirm/dismiss\t0 unresolved" in listing
    assert "labeling\t1 decision(s) a task\tclaims hold 900 s\trelevant,somewhat,irrelevant" in listing


def test_a_queue_can_ask_for_two_decisions_and_its_change_is_audited(ready, config):
    ready("queues", "set", "labeling", "--decisions", "2", "--lease-seconds", "600")
    labeling = queue(config, "labeling")
    assert (labeling.decisions_required, labeling.lease_seconds) == (2, 600)
    assert labeling.labels == ["relevant", "somewhat", "irrelevant"]  # untouched
    app = bare_app(config)
    with Session(app.extensions["db_engine"]) as s:
        (entry,) = s.exec(select(AuditEntry).where(AuditEntry.action == "configure_queue")).all()
    assert entry.before["decisions_required"] == 1 and entry.after["decisions_required"] == 2 and entry.actor == "cli"
    app.extensions["db_engine"].dispose()


def test_a_new_queue_with_labels(ready, config):
    ready("queues", "set", "quality", "--description", "Is the item's text right?", "--labels", "good, wrong title, spam")
    assert queue(config, "quality").labels == ["good", "wrong title", "spam"]
    ready("queues", "set", "quality", "--no-labels")
    assert queue(config, "quality").labels is None


@pytest.mark.parametrize(
    "args",
    [
        ["labeling", "--decisions", "0"],
        ["labeling", "--decisions", "11"],
        ["labeling", "--lease-seconds", "5"],
        ["labeling", "--labels", "a,a"],
        ["labeling", "--labels", "confirm,b"],
        ["labeling", "--labels", ",".join("abcdefghij")],
        ["audit"],
        ["Bad Name"],
        ["labeling", "--labels", "a", "--no-labels"],
    ],
)
def test_settings_the_rules_refuse_change_nothing(ready, config, args):
    result = ready("queues", "set", *args, ok=False)
    assert "Traceback" not in result.output and result.output.strip()
    labeling = queue(config, "labeling")
    assert (labeling.decisions_required, labeling.lease_seconds) == (1, 900)
    assert labeling.labels == ["relevant", "somewhat", "irrelevant"]
