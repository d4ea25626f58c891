"""Poll rules without an app: definitions, answers, rewards, counts, fatigue, sampling and uncertainty."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from feedback.polls import (
    AskRules,
    BadAnswer,
    Contact,
    Invalid,
    PollSpec,
    Window,
    answer_from_form,
    confidence,
    count_answers,
    decide_ask,
    is_unsure,
    normalise_origin,
    reward_for,
    sampled,
    validate_answer,
    validate_poll,
)

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
CHOICE = PollSpec(question="Which did you like?", kind="single_choice", options=("Pasta", "Curry", "Pizza"))


def fields(spec: PollSpec) -> set[str]:
    with pytest.raises(Invalid) as caught:
        validate_poll(spec)
    return {f.split("[")[0].split(".")[0] for f, _ in caught.value.problems}


def test_a_valid_poll_comes_back_stripped_with_browser_origins():
    spec = validate_poll(
        replace(
            CHOICE,
            question="  Which did you like?  ",
            options=(" Pasta", "Curry ", "Pizza"),
            allowed_origins=("https://Shop.example.com:443", "http://localhost:5000", "https://shop.example.com"),
            reward_map={"Pasta": 1, "Curry": 0.25},
        )
    )
    assert spec.question == "Which did you like?"
    assert spec.options == ("Pasta", "Curry", "Pizza")
    assert spec.allowed_origins == ("https://shop.example.com", "http://localhost:5000")
    assert spec.reward_map == {"Pasta": 1.0, "Curry": 0.25}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"question": ""}, "question"),
        ({"question": "   "}, "question"),
        ({"question": "x" * 501}, "question"),
        ({"kind": "poll"}, "kind"),
        ({"options": ("only one",)}, "options"),
        ({"options": tuple(f"o{i}" for i in range(21))}, "options"),
        ({"options": ("a", "A")}, "options"),
        ({"options": ("a", " ")}, "options"),
        ({"options": ("a", "x" * 101)}, "options"),
        ({"options": None}, "options"),
        ({"kind": "thumbs"}, "options"),  # options on a kind without them
        ({"sample_share": 0}, "sample_share"),
        ({"sample_share": 1.5}, "sample_share"),
        ({"sample_share": float("nan")}, "sample_share"),
        ({"sample_share": True}, "sample_share"),
        ({"starts_at": NOW, "ends_at": NOW}, "ends_at"),
        ({"starts_at": NOW, "ends_at": NOW - timedelta(hours=1)}, "ends_at"),
        ({"allowed_origins": ("https://shop.example.com/path",)}, "allowed_origins"),
        ({"allowed_origins": ("*",)}, "allowed_origins"),
        ({"allowed_origins": ("null",)}, "allowed_origins"),
        ({"allowed_origins": ("ftp://shop.example.com",)}, "allowed_origins"),
        ({"allowed_origins": ("https://user:pw@shop.example.com",)}, "allowed_origins"),
        ({"allowed_origins": ("https://*.example.com",)}, "allowed_origins"),
        ({"allowed_origins": ("https://shop.example.com?x=1",)}, "allowed_origins"),
        ({"reward_map": {"Sushi": 1.0}}, "reward_map"),
        ({"reward_map": {"Pasta": 1.5}}, "reward_map"),
        ({"reward_map": {"Pasta": -0.1}}, "reward_map"),
        ({"reward_map": {"Pasta": float("inf")}}, "reward_map"),
        ({"reward_map": {"Pasta": float("nan")}}, "reward_map"),
        ({"target": "user"}, "target"),
        ({"target": "item"}, "target_item_id"),
        ({"target_item_id": "pasta"}, "target_item_id"),
        ({"recontact_seconds": -1}, "recontact_seconds"),
        ({"max_probability": 0}, "max_probability"),
        ({"max_margin": -0.1}, "max_margin"),
        ({"uncertain_only": True, "target": "event"}, "uncertain_only"),
        ({"uncertain_only": True, "max_margin": 0.1}, "uncertain_only"),
    ],
)
def test_invalid_polls_are_refused_naming_the_field(change, field):
    assert field in fields(replace(CHOICE, **change))


@pytest.mark.parametrize(
    ("kind", "reward_map"),
    [("thumbs", {"sideways": 1.0}), ("rating", {"6": 1.0}), ("rating", {"0": 0.0}), ("text", {"great": 1.0})],
)
def test_reward_maps_name_only_answers_of_the_kind(kind, reward_map):
    assert "reward_map" in fields(PollSpec(question="q", kind=kind, reward_map=reward_map))


def test_every_problem_is_reported_at_once():
    assert fields(PollSpec(question="", kind="single_choice", options=("a",), sample_share=2)) == {
        "question",
        "options",
        "sample_share",
    }


@pytest.mark.parametrize(
    ("origin", "normal"),
    [
        ("https://EXAMPLE.com", "https://example.com"),
        ("https://example.com:443", "https://example.com"),
        ("http://example.com:80", "http://example.com"),
        ("http://example.com:8080", "http://example.com:8080"),
        ("https://[::1]:8443", "https://[::1]:8443"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("https://example.com/", None),
        ("https://example.com#", None),
        (" https://example.com", None),
        ("https://example.com:99999", None),
        ("https://exa mple.com", None),
        ("example.com", None),
    ],
)
def test_origins_are_exact_and_in_the_form_browsers_send(origin, normal):
    assert normalise_origin(origin) == normal


@pytest.mark.parametrize(
    ("kind", "answer", "stored"),
    [
        ("single_choice", "Curry", "Curry"),
        ("multiple_choice", ["Pizza", "Pasta"], ["Pasta", "Pizza"]),
        ("rating", 1, 1),
        ("rating", 5, 5),
        ("thumbs", "down", "down"),
        ("text", "  tasty  ", "tasty"),
    ],
)
def test_valid_answers(kind, answer, stored):
    assert validate_answer(kind, CHOICE.options, answer) == stored


@pytest.mark.parametrize(
    ("kind", "answer"),
    [
        ("single_choice", "Sushi"),
        ("single_choice", ["Pasta"]),
        ("single_choice", 1),
        ("multiple_choice", []),
        ("multiple_choice", "Pasta"),
        ("multiple_choice", ["Pasta", "Pasta"]),
        ("multiple_choice", ["Pasta", "Sushi"]),
        ("multiple_choice", ["Pasta", 1]),
        ("rating", 0),
        ("rating", 6),
        ("rating", 3.0),
        ("rating", "3"),
        ("rating", True),
        ("thumbs", "sideways"),
        ("thumbs", True),
        ("thumbs", ["up"]),
        ("text", ""),
        ("text", "   "),
        ("text", "x" * 2001),
        ("text", 42),
        ("text", None),
    ],
)
def test_invalid_answers_are_refused(kind, answer):
    with pytest.raises(BadAnswer):
        validate_answer(kind, CHOICE.options, answer)


def test_form_fields_become_json_answers():
    assert answer_from_form("rating", ["4"]) == 4
    assert answer_from_form("rating", ["4.5"]) == "4.5"  # then refused by validate_answer
    assert answer_from_form("multiple_choice", ["Pasta", "Curry"]) == ["Pasta", "Curry"]
    assert answer_from_form("thumbs", []) is None


@pytest.mark.parametrize(
    ("kind", "answer", "reward_map", "reward"),
    [
        ("thumbs", "up", None, 1.0),
        ("thumbs", "down", None, 0.0),
        ("thumbs", "down", {"down": 0.2}, 0.2),
        ("rating", 1, None, 0.0),
        ("rating", 3, None, 0.5),
        ("rating", 5, None, 1.0),
        ("rating", 4, {"4": 0.9}, 0.9),
        ("rating", 2, {"4": 0.9}, None),
        ("single_choice", "Pasta", None, None),
        ("single_choice", "Pasta", {"Pasta": 0.7}, 0.7),
        ("single_choice", "Curry", {"Pasta": 0.7}, None),
        ("multiple_choice", ["Pasta", "Curry", "Pizza"], {"Pasta": 1.0, "Curry": 0.5}, 0.75),
        ("text", "tasty", None, None),
    ],
)
def test_answers_become_rewards(kind, answer, reward_map, reward):
    assert reward_for(kind, answer, reward_map) == reward


def test_counts_list_every_value_and_skip_text():
    assert count_answers("rating", None, [5, 5, 1]) == {"1": 1, "2": 0, "3": 0, "4": 0, "5": 2}
    assert count_answers("thumbs", None, ["up"]) == {"up": 1, "down": 0}
    assert count_answers("multiple_choice", CHOICE.options, [["Pasta", "Pizza"], ["Pizza"]]) == {
        "Pasta": 1,
        "Curry": 0,
        "Pizza": 2,
    }
    assert count_answers("text", None, ["a", "b"]) == {}


RULES = AskRules(Window(), "tok", recontact=timedelta(days=7), quiet=timedelta(days=1))


@pytest.mark.parametrize(
    ("rules", "contact", "reason"),
    [
        (RULES, Contact(), None),
        (replace(RULES, window=Window(closed_at=NOW - timedelta(seconds=1))), Contact(), "closed"),
        (replace(RULES, window=Window(starts_at=NOW + timedelta(seconds=1))), Contact(), "not_started"),
        (replace(RULES, window=Window(ends_at=NOW)), Contact(), "ended"),
        (RULES, Contact(answered=True), "answered"),
        (replace(RULES, allow_multiple=True, recontact=timedelta(0)), Contact(answered=True), None),
        (RULES, Contact(last_this=NOW - timedelta(days=6)), "recontact"),
        (RULES, Contact(last_this=NOW - timedelta(days=8)), None),
        (RULES, Contact(last_other=NOW - timedelta(hours=23)), "quiet_period"),
        (RULES, Contact(last_other=NOW - timedelta(hours=25)), None),
        (replace(RULES, sample_share=1e-9), Contact(), "not_sampled"),
    ],
)
def test_fatigue_rules_say_why_not(rules, contact, reason):
    decision = decide_ask(rules, "alice", contact, NOW)
    assert (decision.ask, decision.reason) == (reason is None, reason)


def test_sampling_is_stable_and_close_to_the_share():
    chosen = [sampled("tok", f"user{i}", 0.3) for i in range(4000)]
    assert chosen == [sampled("tok", f"user{i}", 0.3) for i in range(4000)]
    assert 0.27 < sum(chosen) / len(chosen) < 0.33
    other = [sampled("other", f"user{i}", 0.3) for i in range(4000)]
    assert other != chosen  # polls draw independently
    assert all(sampled("tok", f"user{i}", 1.0) for i in range(100))


SLOTS = [{"position": 0, "item_id": "a", "probability": 0.4}, {"position": 2, "item_id": "b", "probability": 0.9}]
CANDIDATES = [{"id": "a", "q": 0.5}, {"id": "b", "q": 0.2}, {"id": "c", "q": 0.45}]


def test_confidence_reads_an_event_row():
    first = confidence(SLOTS, CANDIDATES)
    assert (first.item_id, first.probability) == ("a", 0.4)
    assert first.margin == pytest.approx(0.05)
    assert confidence(SLOTS, CANDIDATES, "b").probability == 0.9
    assert confidence(SLOTS, CANDIDATES, "zzz").item_id == "a"
    assert confidence(SLOTS, CANDIDATES[:1]).margin is None


@pytest.mark.parametrize(
    ("item_id", "max_probability", "max_margin", "unsure"),
    [
        (None, 0.5, None, True),  # 0.4 < 0.5
        (None, 0.4, None, False),  # not strictly below
        ("b", 0.5, None, False),
        ("b", None, 0.1, True),  # margin 0.05 < 0.1
        ("b", None, 0.04, False),
        ("b", 0.5, 0.01, False),
        (None, None, None, False),
    ],
)
def test_a_decision_is_unsure_below_either_threshold(item_id, max_probability, max_margin, unsure):
    assert is_unsure(confidence(SLOTS, CANDIDATES, item_id), max_probability, max_margin) is unsure
