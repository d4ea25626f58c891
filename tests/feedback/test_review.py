"""Reviewer queue rules, without an app: tasks, evidence keys, leases, decisions, outcomes and agreement."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from feedback.review import (
    MAX_EVIDENCE_BYTES,
    MAX_NOTE,
    Invalid,
    QueueRules,
    agreement,
    chart_spec,
    claimable,
    cohen_kappa,
    effective_status,
    evidence_key,
    facts,
    final_outcome,
    fleiss_kappa,
    lease_live,
    lease_until,
    validate_decision,
    validate_task,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ANOMALIES = QueueRules(decisions_required=1)
LABELING = QueueRules(decisions_required=3, labels=("relevant", "somewhat", "irrelevant"))


def test_a_valid_task_keeps_its_values_and_gets_an_evidence_key():
    task = validate_task("anomalies", "user", "u-42", {"rewards_per_hour": 340}, 5)
    assert (task.queue, task.subject_type, task.subject_id, task.priority) == ("anomalies", "user", "u-42", 5)
    assert len(task.evidence_key) == 64
    assert validate_task("labeling", "item", "i1").evidence == {}


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("Anomalies", "user", "u"), "queue"),
        (("", "user", "u"), "queue"),
        (("a" * 33, "user", "u"), "queue"),
        ((7, "user", "u"), "queue"),
        (("anomalies", "account", "u"), "subject_type"),
        (("anomalies", "user", ""), "subject_id"),
        (("anomalies", "user", "x" * 257), "subject_id"),
        (("anomalies", "user", "line\nbreak"), "subject_id"),
        (("anomalies", "user", 42), "subject_id"),
        (("anomalies", "user", "u", [1, 2]), "evidence"),
        (("anomalies", "user", "u", "text"), "evidence"),
        (("anomalies", "user", "u", {"z": float("nan")}), "evidence.z"),
        (("anomalies", "user", "u", {"z": float("inf")}), "evidence.z"),
        (("anomalies", "user", "u", {}, 1001), "priority"),
        (("anomalies", "user", "u", {}, -1001), "priority"),
        (("anomalies", "user", "u", {}, 1.5), "priority"),
        (("anomalies", "user", "u", {}, True), "priority"),
    ],
)
def test_invalid_tasks_are_refused_naming_the_field(args, field):
    with pytest.raises(Invalid) as exc:
        validate_task(*args)
    assert exc.value.field == field


def test_evidence_is_bounded_in_size_and_depth():
    with pytest.raises(Invalid, match="larger than"):
        validate_task("anomalies", "user", "u", {"blob": "x" * MAX_EVIDENCE_BYTES})
    deep: dict = {"v": 1}
    for _ in range(6):
        deep = {"d": deep}
    with pytest.raises(Invalid, match="deeper"):
        validate_task("anomalies", "user", "u", deep)
    validate_task("anomalies", "user", "u", {"a": {"b": {"c": {"d": {"e": 1}}}}})  # five levels are fine


def test_the_evidence_key_ignores_key_order_and_spacing_but_not_values():
    a = evidence_key({"z": 6.1, "series": {"r": [1, 2]}, "why": "burst"})
    b = evidence_key({"why": "burst", "series": {"r": [1, 2]}, "z": 6.1})
    assert a == b
    assert evidence_key({"z": 6.2}) != evidence_key({"z": 6.1})
    assert evidence_key({}) == "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"  # sha256("{}")


@pytest.mark.parametrize(
    "evidence",
    [
        {"series": []},
        {"series": {}},
        {"series": {"r": []}},
        {"series": {"r": ["1"]}},
        {"series": {"r": [True]}},
        {"series": {"r": [1, 2], "s": [1]}},
        {"series": {"r": [1, 2]}, "x": ["a"]},
        {"series": {"r": [1, 2]}, "x": "ab"},
        {"series": {f"s{n}": [1] for n in range(9)}},
    ],
)
def test_a_malformed_series_is_refused(evidence):
    with pytest.raises(Invalid):
        validate_task("anomalies", "user", "u", evidence)


def test_a_series_becomes_a_line_chart_and_the_rest_are_facts():
    evidence = {"z_score": 6.1, "series": {"rewards": [3, 4, None, 90]}, "x": ["09:00", "10:00", "11:00", "12:00"]}
    validate_task("anomalies", "user", "u", evidence)
    spec = chart_spec(evidence)
    assert spec["type"] == "line" and spec["labels"] == ["09:00", "10:00", "11:00", "12:00"]
    assert spec["datasets"] == [{"label": "rewards", "data": [3, 4, None, 90], "pointRadius": 1}]
    assert facts(evidence) == [("z_score", 6.1)]
    assert chart_spec({"series": {"a": [1, 2, 3]}})["labels"] == [1, 2, 3]
    assert chart_spec({"z_score": 1}) is None


def test_a_claim_holds_until_its_lease_expires_then_the_task_is_open_again():
    until = lease_until(NOW, QueueRules(lease_seconds=900))
    assert until == NOW + timedelta(minutes=15)
    assert lease_live("claimed", until, NOW + timedelta(minutes=14, seconds=59))
    assert not lease_live("claimed", until, until)
    assert effective_status("claimed", until, NOW) == "claimed" and not claimable("claimed", until, NOW)
    assert effective_status("claimed", until, until + timedelta(seconds=1)) == "open"
    assert claimable("claimed", until, until) and claimable("open", None, NOW)
    assert effective_status("resolved", None, NOW) == "resolved" and not claimable("resolved", None, NOW)


def test_decisions_a_queue_accepts():
    assert validate_decision(ANOMALIES, "confirm").outcome == "confirm"
    assert validate_decision(ANOMALIES, "dismiss", "", "  ").note is None
    assert validate_decision(LABELING, "label", "somewhat", "close call").outcome == "somewhat"
    assert ANOMALIES.outcomes == ("confirm", "dismiss") and LABELING.outcomes == LABELING.labels


@pytest.mark.parametrize(
    ("rules", "decision", "label", "note", "field"),
    [
        (ANOMALIES, "approve", None, None, "decision"),
        (ANOMALIES, "label", "relevant", None, "decision"),
        (ANOMALIES, "confirm", "relevant", None, "label"),
        (LABELING, "confirm", None, None, "decision"),
        (LABELING, "label", "great", None, "label"),
        (LABELING, "label", None, None, "label"),
        (ANOMALIES, "confirm", None, "x" * (MAX_NOTE + 1), "note"),
        (ANOMALIES, "confirm", None, 5, "note"),
    ],
)
def test_decisions_a_queue_refuses(rules, decision, label, note, field):
    with pytest.raises(Invalid) as exc:
        validate_decision(rules, decision, label, note)
    assert exc.value.field == field


def test_a_task_resolves_after_the_required_decisions_by_majority():
    two = QueueRules(decisions_required=2)
    assert final_outcome(["confirm"], two) is None
    assert final_outcome(["confirm", "confirm"], two) == "confirm"
    assert final_outcome(["somewhat", "relevant", "relevant"], LABELING) == "relevant"
    assert final_outcome(["confirm"], ANOMALIES) == "confirm"


def test_ties_go_to_dismiss_else_to_the_outcome_reached_first():
    two = QueueRules(decisions_required=2)
    assert final_outcome(["confirm", "dismiss"], two) == "dismiss"
    assert final_outcome(["dismiss", "confirm"], two) == "dismiss"
    four = QueueRules(decisions_required=4, labels=("a", "b", "c"))
    assert final_outcome(["b", "a", "a", "b"], four) == "b"
    assert final_outcome(["c", "a", "b"], QueueRules(decisions_required=3, labels=("a", "b", "c"))) == "c"


def test_cohen_kappa_of_the_textbook_example():
    # Wikipedia, "Cohen's kappa": 50 grant proposals, 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no: p_o 0.7, p_e 0.5
    pairs = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10 + [("no", "no")] * 15
    assert cohen_kappa(pairs) == pytest.approx(0.4)


def test_cohen_kappa_edges():
    assert cohen_kappa([]) is None
    assert cohen_kappa([("a", "a")] * 5) is None  # one category throughout: chance agreement is 1
    assert cohen_kappa([("a", "a"), ("b", "b")]) == pytest.approx(1.0)
    assert cohen_kappa([("a", "b"), ("b", "a")]) == pytest.approx(-1.0)


# Fleiss (1971) as worked on Wikipedia ("Fleiss' kappa"): 10 subjects, 14 raters, 5 categories; P̄ = 0.378,
# P̄e = 0.213, κ = 0.210.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_of_the_worked_example():
    ratings = [{c: n for c, n in enumerate(row) if n} for row in FLEISS_TABLE]
    assert fleiss_kappa(ratings) == pytest.approx(0.20993, abs=1e-5)


def test_fleiss_kappa_edges():
    assert fleiss_kappa([]) is None
    assert fleiss_kappa([{"a": 3}, {"a": 3}]) is None
    assert fleiss_kappa([{"a": 3}, {"b": 3}]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        fleiss_kappa([{"a": 3}, {"a": 2}])


def test_agreement_uses_cohen_for_two_and_fleiss_for_more():
    two = agreement([["yes", "yes"]] * 20 + [["yes", "no"]] * 5 + [["no", "yes"]] * 10 + [["no", "no"]] * 15, 2)
    assert (two.method, two.tasks, two.kappa, two.observed) == ("cohen", 50, pytest.approx(0.4), pytest.approx(0.7))
    rows = [[c for c, n in enumerate(row) for _ in range(n)] for row in FLEISS_TABLE]
    many = agreement(rows + [[0, 1]], 14)  # a task with other than 14 decisions is left out
    assert (many.method, many.tasks, many.kappa) == ("fleiss", 10, pytest.approx(0.20993, abs=1e-5))
    assert many.observed == pytest.approx(0.378, abs=1e-3)
    assert agreement([["confirm"]], 1).method is None
    assert agreement([], 3).kappa is None


def test_fleiss_agrees_with_cohen_observed_agreement_for_two_raters():
    rows = [["a", "a"], ["a", "b"], ["b", "b"], ["b", "b"]]
    result = agreement(rows, 2)
    assert result.observed == pytest.approx(0.75)
    assert fleiss_kappa([Counter(r) for r in rows]) is not None
