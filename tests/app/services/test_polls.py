"""Polls in the database: asks and fatigue, answers and the rewards they become, results and exports."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlmodel import Session, select, update

from app import db
from app.models import Event, Item, PollAsk, PollResponse, Reward, Webhook, WebhookDelivery, utcnow
from app.services import polls
from app.services.learner import Learner
from app.services.rewards import RewardIn, reward_rules, store_rewards
from feedback.polls import Invalid, PollSpec
from tests.helpers import log_decision, stored_rewards

THUMBS = PollSpec(question="Was this useful?", kind="thumbs", recontact_seconds=0)
QUIET = timedelta(days=1)


def make_poll(app, spec: PollSpec = THUMBS):
    with app.app_context(), db.write_session() as s:
        return polls.create_poll(s, spec, "key:1")


def ask(app, poll, respondent="alice", **kwargs):
    with app.app_context(), db.write_session() as s:
        return polls.should_ask(s, poll, respondent, quiet=QUIET, **kwargs)


def answer(app, poll, value, respondent="alice", **kwargs):
    with app.app_context(), db.write_session() as s:
        return polls.answer(s, poll, respondent, value, rules=reward_rules(app.config["FEEDLOOP"]), **kwargs)


def rows(app, model):
    with Session(app.extensions["db_engine"]) as s:
        return list(s.exec(select(model)).all())


def test_a_poll_gets_an_unguessable_token_and_keeps_its_definition(bare):
    poll = make_poll(bare, replace(THUMBS, allowed_origins=("https://Shop.example.com",)))
    assert len(poll.public_token) >= 22
    with Session(bare.extensions["db_engine"]) as s:
        assert polls.poll_by_token(s, poll.public_token).id == poll.id
        assert polls.get_poll(s, poll.id).allowed_origins == ["https://shop.example.com"]
        assert polls.poll_by_token(s, "nope") is None
    assert make_poll(bare).public_token != poll.public_token


def test_an_invalid_poll_is_refused_and_not_stored(bare):
    with pytest.raises(Invalid):
        make_poll(bare, replace(THUMBS, question=""))
    with pytest.raises(polls.PollError) as caught:
        make_poll(bare, replace(THUMBS, target="item", target_item_id="missing"))
    assert caught.value.status == 404
    assert rows(bare, polls.Poll) == []


def test_asks_are_recorded_and_the_fatigue_rules_apply(bare):
    first, second = make_poll(bare, replace(THUMBS, recontact_seconds=3600)), make_poll(bare)
    assert ask(bare, first) == polls.Asked(True)
    assert ask(bare, first).reason == "recontact"
    assert ask(bare, second).reason == "quiet_period"  # asked about another poll a moment ago
    assert ask(bare, second, respondent="bob").ask
    assert len(rows(bare, PollAsk)) == 2


def test_a_respondent_in_a_quiet_period_may_still_answer_what_they_were_shown(bare):
    shown, other = make_poll(bare), make_poll(bare)
    assert ask(bare, shown).ask
    assert ask(bare, other).reason == "quiet_period"
    assert answer(bare, shown, "up").answer == "up"
    assert ask(bare, shown).reason == "answered"


def test_an_answer_is_taken_once_unless_the_poll_allows_more(bare):
    once, many = make_poll(bare), make_poll(bare, replace(THUMBS, allow_multiple=True))
    answer(bare, once, "up")
    with pytest.raises(polls.PollError) as caught:
        answer(bare, once, "down")
    assert (caught.value.status, caught.value.code) == (409, "already_answered")
    answer(bare, many, "up")
    answer(bare, many, "down")
    assert sorted(r.answer for r in rows(bare, PollResponse)) == ["down", "up", "up"]


def test_the_database_refuses_a_second_answer_that_slips_past_the_check(bare, monkeypatch):
    poll = make_poll(bare)
    answer(bare, poll, "up")
    monkeypatch.setattr(polls, "_answered", lambda *args: False)  # two workers checked at the same time
    with pytest.raises(polls.PollError) as caught:
        answer(bare, poll, "down")
    assert caught.value.code == "already_answered"
    assert len(rows(bare, PollResponse)) == 1


@pytest.mark.parametrize("value", ["sideways", 1, None, ["up"], "x" * 3000])
def test_an_invalid_answer_stores_nothing(bare, value):
    poll = make_poll(bare)
    with pytest.raises(polls.PollError) as caught:
        answer(bare, poll, value)
    assert caught.value.status == 422
    assert rows(bare, PollResponse) == []


def test_a_closed_or_ended_poll_takes_no_answer(bare):
    poll = make_poll(bare)
    with bare.app_context(), db.write_session() as s:
        closed = polls.close_poll(s, poll.id)
    with pytest.raises(polls.PollError) as caught:
        answer(bare, closed, "up")
    assert caught.value.status == 410
    assert ask(bare, closed).reason == "closed"
    later = make_poll(bare, replace(THUMBS, starts_at=utcnow() + timedelta(hours=1)))
    with pytest.raises(polls.PollError) as caught:
        answer(bare, later, "up")
    assert caught.value.code == "poll_not_started"
    assert rows(bare, PollResponse) == []


def test_an_answer_about_an_event_becomes_its_reward_and_is_learned_once(bare):
    logged = log_decision(bare, k=3)
    poll = make_poll(bare, replace(THUMBS, target="event"))
    done = answer(bare, poll, "up", event_id=logged.event_id, item_id="i1")
    assert done.reward_value == 1.0
    (reward,) = stored_rewards(bare)
    assert (reward.event_id, reward.item_id, reward.value, reward.reward_key) == (
        logged.event_id,
        "i1",
        1.0,
        f"poll:{done.response_id}",
    )
    assert reward.learn_value == 1.0
    learner = Learner(bare.config["FEEDLOOP"], bare.extensions["db_engine"])
    assert learner.step() == 1
    assert learner.step() == 0


def test_an_answer_after_the_apps_own_reward_is_stored_not_learned_again(bare):
    logged = log_decision(bare, k=2)
    with bare.app_context(), db.write_session() as s:
        store_rewards(s, reward_rules(bare.config["FEEDLOOP"]), [RewardIn(logged.event_id, 0.0, "i0")])
    poll = make_poll(bare, replace(THUMBS, target="event"))
    answer(bare, poll, "up", event_id=logged.event_id)  # the first shown item
    client, from_poll = stored_rewards(bare)
    assert (client.learn_value, from_poll.learn_value, from_poll.value) == (0.0, None, 1.0)


@pytest.mark.parametrize(
    ("event", "item", "status", "code"),
    [("0" * 32, None, 404, "unknown_event"), (None, "i9", 422, "item_not_shown")],
)
def test_an_answer_about_an_unknown_event_or_unshown_item_stores_nothing(bare, event, item, status, code):
    logged = log_decision(bare, k=2)
    poll = make_poll(bare, replace(THUMBS, target="event"))
    with pytest.raises(polls.PollError) as caught:
        answer(bare, poll, "up", event_id=event or logged.event_id, item_id=item)
    assert (caught.value.status, caught.value.code) == (status, code)
    assert rows(bare, PollResponse) == [] and stored_rewards(bare) == []


def test_an_event_poll_needs_its_event(bare):
    poll = make_poll(bare, replace(THUMBS, target="event"))
    assert ask(bare, poll) == polls.Asked(False, "event_required")
    with pytest.raises(polls.PollError) as caught:
        answer(bare, poll, "up")
    assert caught.value.code == "event_required"


def test_an_answer_about_an_expired_event_is_kept_without_a_reward(bare):
    logged = log_decision(bare, k=1)
    with Session(bare.extensions["db_engine"]) as s:
        s.exec(update(Event).values(created_at=utcnow() - timedelta(days=3)))
        s.commit()
    poll = make_poll(bare, replace(THUMBS, target="event"))
    done = answer(bare, poll, "up", event_id=logged.event_id)
    assert (done.reward_value, done.reward_refused) == (None, "event_expired")
    assert rows(bare, PollResponse)[0].reward_value is None and stored_rewards(bare) == []


def test_an_item_poll_answer_is_a_relevance_label_for_the_item(bare):
    with Session(bare.extensions["db_engine"]) as s:
        s.add(Item(id="pasta", title="Pasta"))
        s.commit()
    poll = make_poll(bare, PollSpec(question="How good?", kind="rating", target="item", target_item_id="pasta"))
    done = answer(bare, poll, 4)
    assert done.reward_value == 0.75
    (row,) = rows(bare, PollResponse)
    assert (row.item_id, row.reward_value) == ("pasta", 0.75)
    assert stored_rewards(bare) == []
    with pytest.raises(polls.PollError):
        answer(bare, poll, 4, respondent="bob", item_id="pizza")


def unsure_event(app, probability: float) -> str:
    logged = log_decision(app, k=2)
    with Session(app.extensions["db_engine"]) as s:
        event = s.get(Event, logged.event_id)
        slots = [dict(sl, probability=probability) for sl in event.slots]
        s.exec(update(Event).where(Event.id == logged.event_id).values(slots=slots))
        s.commit()
    return logged.event_id


def test_an_uncertain_only_poll_is_asked_where_the_bandit_was_unsure(bare):
    spec = replace(THUMBS, target="event", uncertain_only=True, max_probability=0.5)
    poll = make_poll(bare, spec)
    sure, unsure = unsure_event(bare, 0.9), unsure_event(bare, 0.2)
    assert ask(bare, poll, event_id=sure).reason == "model_sure"
    asked = ask(bare, poll, event_id=unsure)
    assert asked.ask and asked.uncertain
    assert rows(bare, PollAsk)[0].uncertain
    assert answer(bare, poll, "up", event_id=unsure).uncertain
    answer(bare, poll, "down", respondent="bob", event_id=sure)
    with Session(bare.extensions["db_engine"]) as s:
        result = polls.results(s, polls.get_poll(s, poll.id))
    assert (result.responses, result.unsure_responses) == (2, 1)


def test_results_count_answers_asks_and_the_response_rate(bare):
    poll = make_poll(bare, PollSpec(question="Rate it", kind="rating"))
    for who in ("a", "b", "c", "d"):
        assert ask(bare, poll, respondent=who).ask
    answer(bare, poll, 5, respondent="a")
    answer(bare, poll, 5, respondent="b")
    answer(bare, poll, 2, respondent="z")  # answered through the API without an ask
    with Session(bare.extensions["db_engine"]) as s:
        result = polls.results(s, polls.get_poll(s, poll.id))
    assert result.counts == {"1": 0, "2": 1, "3": 0, "4": 0, "5": 2}
    assert (result.responses, result.asks, result.asked_respondents, result.response_rate) == (3, 4, 4, 0.5)
    assert result.mean_reward is None  # not tied to events or items: no reward


def test_text_results_list_answers_without_counts(bare):
    poll = make_poll(bare, PollSpec(question="Why?", kind="text"))
    answer(bare, poll, "  too spicy  ")
    with Session(bare.extensions["db_engine"]) as s:
        result = polls.results(s, polls.get_poll(s, poll.id))
    assert result.counts == {} and result.responses == 1
    assert [t.text for t in result.latest_text] == ["too spicy"]


def test_export_streams_every_answer_in_order(bare):
    poll = make_poll(bare, replace(THUMBS, allow_multiple=True))
    for n in range(5):
        answer(bare, poll, "up" if n % 2 else "down", respondent=f"r{n}")
    exported = list(polls.export_rows(bare.extensions["db_engine"], poll.id, batch=2))
    assert [r["respondent_id"] for r in exported] == [f"r{n}" for n in range(5)]
    assert set(exported[0]) == set(polls.EXPORT_FIELDS)


def test_an_answer_and_its_webhook_deliveries_are_stored_together(bare):
    poll = make_poll(bare)
    with Session(bare.extensions["db_engine"]) as s:
        s.add(Webhook(url="https://hooks.example.com/in", secret="s" * 32, created_by="user:1"))
        s.commit()
    answer(bare, poll, "up")
    with pytest.raises(polls.PollError):
        answer(bare, poll, "up")  # the replay adds no delivery either
    (delivery,) = rows(bare, WebhookDelivery)
    assert '"answer":"up"' in delivery.body
    assert len(rows(bare, Reward)) == 0
