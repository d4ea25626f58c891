"""Poll pages: the public embed (fatigue, framing, its own form token instead of the session's CSRF token, plain and
htmx posts) and the admin pages (roles, CSRF, inline errors, snippet, results, exports)."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace

import pytest
from sqlmodel import Session, select

from app import db
from app.models import PollResponse
from app.services import polls
from feedback.polls import PollSpec
from tests.helpers import bare_app, csrf_token, log_decision, make_user, sign_in, stored_rewards

SHOP = "https://shop.example.com"
THUMBS = PollSpec(question="Was this useful?", kind="thumbs", allowed_origins=(SHOP,), recontact_seconds=0)


def make_poll(app, spec: PollSpec = THUMBS):
    with app.app_context(), db.write_session() as s:
        return polls.create_poll(s, spec, "user:1")


def responses(app) -> list[PollResponse]:
    with Session(app.extensions["db_engine"]) as s:
        return list(s.exec(select(PollResponse)).all())


def form_of(page: str) -> dict:
    return dict(re.findall(r'name="(form_token|respondent_id)" value="([^"]*)"', page))


# The embed


def test_the_embed_shows_the_poll_framed_only_by_its_origins(bare):
    poll = make_poll(bare)
    page = bare.test_client().get(f"/p/{poll.public_token}?respondent_id=alice")
    assert page.status_code == 200
    assert "Was this useful?" in page.text and 'value="up"' in page.text
    policy = page.headers["Content-Security-Policy"]
    assert f"frame-ancestors {SHOP}" in policy and "script-src 'self'" in policy
    assert "<script>" not in page.text and "style=" not in page.text


def test_an_unknown_poll_is_404(bare):
    assert bare.test_client().get("/p/nosuchtoken?respondent_id=a").status_code == 404


def test_the_embed_answers_204_when_the_respondent_should_not_be_asked(bare):
    client, poll, other = bare.test_client(), make_poll(bare), make_poll(bare)
    assert client.get(f"/p/{poll.public_token}?respondent_id=alice").status_code == 200
    quiet = client.get(f"/p/{other.public_token}?respondent_id=alice")
    assert quiet.status_code == 204 and quiet.data == b""


def test_without_a_respondent_id_the_page_sets_its_own_cookie(bare):
    client, poll = bare.test_client(), make_poll(bare)
    page = client.get(f"/p/{poll.public_token}")
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("feedloop_respondent=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    respondent = form_of(page.text)["respondent_id"]
    assert len(respondent) >= 20
    again = client.get(f"/p/{poll.public_token}")  # the cookie names the same respondent
    assert form_of(again.text)["respondent_id"] == respondent and "Set-Cookie" not in again.headers


def test_the_cookie_is_secure_under_https(config):
    app = bare_app({**config, "public_url": "https://feedloop.example.com"})
    poll = make_poll(app)
    assert "Secure" in app.test_client().get(f"/p/{poll.public_token}").headers["Set-Cookie"]
    app.extensions["db_engine"].dispose()


def test_a_plain_form_post_answers_with_a_thank_you_page(bare):
    client, poll = bare.test_client(), make_poll(bare)
    fields = form_of(client.get(f"/p/{poll.public_token}?respondent_id=alice").text)
    done = client.post(f"/p/{poll.public_token}", data={**fields, "answer": "up"})
    assert done.status_code == 200 and "Thank you" in done.text and "<html" in done.text
    assert f"frame-ancestors {SHOP}" in done.headers["Content-Security-Policy"]
    assert [(r.respondent_id, r.answer) for r in responses(bare)] == [("alice", "up")]
    replay = client.post(f"/p/{poll.public_token}", data={**fields, "answer": "down"})
    assert replay.status_code == 409 and "already" in replay.text
    assert len(responses(bare)) == 1


def test_an_htmx_post_gets_the_thank_you_fragment(bare):
    client, poll = bare.test_client(), make_poll(bare, replace(THUMBS, kind="rating"))
    fields = form_of(client.get(f"/p/{poll.public_token}?respondent_id=alice").text)
    done = client.post(f"/p/{poll.public_token}", data={**fields, "answer": "4"}, headers={"HX-Request": "true"})
    assert done.status_code == 200 and "Thank you" in done.text and "<html" not in done.text
    assert responses(bare)[0].answer == 4


@pytest.mark.parametrize("answer", [None, "9", "x", "4.5"])
def test_an_invalid_form_answer_shows_the_form_again_and_stores_nothing(bare, answer):
    client, poll = bare.test_client(), make_poll(bare, replace(THUMBS, kind="rating"))
    fields = form_of(client.get(f"/p/{poll.public_token}?respondent_id=alice").text)
    data = {**fields, **({"answer": answer} if answer is not None else {})}
    refused = client.post(f"/p/{poll.public_token}", data=data)
    assert refused.status_code == 422 and 'role="alert"' in refused.text and 'name="form_token"' in refused.text
    assert responses(bare) == []


@pytest.mark.parametrize(
    "tamper",
    [
        lambda f: {"respondent_id": f["respondent_id"]},  # no token
        lambda f: {**f, "form_token": f["form_token"][:-2] + "xx"},  # forged signature
        lambda f: {**f, "respondent_id": "mallory"},  # another respondent than the token's
    ],
)
def test_a_post_without_a_valid_form_token_is_400_and_stores_nothing(bare, tamper):
    client, poll = bare.test_client(), make_poll(bare)
    fields = form_of(client.get(f"/p/{poll.public_token}?respondent_id=alice").text)
    refused = client.post(f"/p/{poll.public_token}", data={**tamper(fields), "answer": "up"})
    assert refused.status_code == 400
    assert responses(bare) == []


def test_a_form_token_is_bound_to_its_poll(bare):
    client, first, second = bare.test_client(), make_poll(bare), make_poll(bare)
    fields = form_of(client.get(f"/p/{first.public_token}?respondent_id=alice").text)
    assert client.post(f"/p/{second.public_token}", data={**fields, "answer": "up"}).status_code == 400
    assert responses(bare) == []


def test_an_expired_form_token_is_refused(bare, monkeypatch):
    from app.pages import embed

    client, poll = bare.test_client(), make_poll(bare)
    fields = form_of(client.get(f"/p/{poll.public_token}?respondent_id=alice").text)
    monkeypatch.setattr(embed, "FORM_MAX_AGE", -1)
    assert client.post(f"/p/{poll.public_token}", data={**fields, "answer": "up"}).status_code == 400
    assert responses(bare) == []


def test_an_embedded_answer_about_an_event_becomes_its_reward(bare):
    logged = log_decision(bare, k=2)
    client, poll = bare.test_client(), make_poll(bare, replace(THUMBS, target="event"))
    assert client.get(f"/p/{poll.public_token}?respondent_id=alice").status_code == 204  # no event: nothing to ask
    page = client.get(f"/p/{poll.public_token}?respondent_id=alice&event_id={logged.event_id}&item_id=i1")
    assert client.post(f"/p/{poll.public_token}", data={**form_of(page.text), "answer": "up"}).status_code == 200
    (reward,) = stored_rewards(bare)
    assert (reward.event_id, reward.item_id, reward.value) == (logged.event_id, "i1", 1.0)


def test_the_embed_is_rate_limited_per_respondent(config):
    app = bare_app({**config, "respondent_rate_limit": "2/minute"})
    client, poll = app.test_client(), make_poll(app, replace(THUMBS, allow_multiple=True))
    statuses = [client.get(f"/p/{poll.public_token}?respondent_id=alice").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert client.get(f"/p/{poll.public_token}?respondent_id=bob").status_code == 200
    app.extensions["db_engine"].dispose()


def test_the_embed_escapes_the_question_and_options(bare):
    poll = make_poll(
        bare,
        PollSpec(question="<script>alert(1)</script>?", kind="single_choice", options=("<b>a</b>", "b"), allowed_origins=(SHOP,)),
    )
    page = bare.test_client().get(f"/p/{poll.public_token}?respondent_id=a").text
    assert "<script>alert" not in page and "&lt;script&gt;" in page and "<b>a</b>" not in page


# Admin pages


@pytest.fixture
def people(bare):
    make_user(bare, "admin@example.com", "admin")
    make_user(bare, "reviewer@example.com", "reviewer")
    return bare


def signed_in(app, email: str):
    client = app.test_client()
    sign_in(client, email)
    return client


PAGES = ["/polls/", "/polls/new", "/polls/{id}", "/polls/{id}/results", "/polls/{id}/export?format=csv"]


@pytest.mark.parametrize("path", PAGES)
def test_admin_pages_are_for_admins_only(people, path):
    poll = make_poll(people)
    url = path.format(id=poll.id)
    anonymous = people.test_client().get(url)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    assert signed_in(people, "reviewer@example.com").get(url).status_code == 403
    assert signed_in(people, "admin@example.com").get(url).status_code == 200


def test_posts_are_refused_to_anonymous_and_reviewers(people):
    poll = make_poll(people)
    anonymous = people.test_client()
    assert anonymous.post(f"/polls/{poll.id}/close", data={"csrf_token": csrf_token(anonymous)}).status_code == 401
    reviewer = signed_in(people, "reviewer@example.com")
    token = csrf_token(reviewer, "/")
    assert reviewer.post(f"/polls/{poll.id}/close", data={"csrf_token": token}).status_code == 403
    assert reviewer.post("/polls/new", data={"csrf_token": token, "question": "q", "kind": "thumbs"}).status_code == 403


def test_unknown_polls_are_404(people):
    admin = signed_in(people, "admin@example.com")
    for url in ("/polls/999", "/polls/999/results", "/polls/999/export"):
        assert admin.get(url).status_code == 404


FORM = {"question": "Was it tasty?", "kind": "thumbs", "target": "none", "sample_share": "1", "recontact_days": "30"}


def test_an_admin_creates_a_poll_on_the_page(people):
    admin = signed_in(people, "admin@example.com")
    token = csrf_token(admin, "/polls/new")
    data = {**FORM, "csrf_token": token, "allowed_origins": f"{SHOP}\nhttp://localhost:8000", "reward_map": "up = 1\ndown = 0.1"}
    created = admin.post("/polls/new", data=data)
    assert created.status_code == 302
    page = admin.get(created.headers["Location"]).text
    with Session(people.extensions["db_engine"]) as s:
        (poll,) = [row.poll for row in polls.list_polls(s)]
    assert (poll.question, poll.created_by, poll.reward_map) == ("Was it tasty?", "user:1", {"up": 1.0, "down": 0.1})
    assert poll.allowed_origins == [SHOP, "http://localhost:8000"]
    assert f"http://localhost/p/{poll.public_token}?respondent_id=USER_ID" in page
    assert "&lt;iframe" in page and "answers from unsure events" in page


def test_the_create_form_needs_its_csrf_token(people):
    admin = signed_in(people, "admin@example.com")
    assert admin.post("/polls/new", data=FORM).status_code == 400
    with Session(people.extensions["db_engine"]) as s:
        assert polls.list_polls(s) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"question": ""}, "This field is required"),
        ({"kind": "single_choice", "options": "only one"}, "give 2 to 20 options"),
        ({"allowed_origins": "https://shop.example.com/page"}, "an origin is scheme://host"),
        ({"reward_map": "sideways = 1"}, "not an answer of this poll"),
        ({"reward_map": "up: 1"}, "write &#39;answer = reward&#39;"),
        ({"sample_share": "2"}, "Number must be between"),
        ({"target": "item", "target_item_id": "nope"}, "no item with id"),
    ],
)
def test_form_errors_are_shown_beside_their_fields(people, change, message):
    admin = signed_in(people, "admin@example.com")
    refused = admin.post("/polls/new", data={**FORM, "csrf_token": csrf_token(admin, "/polls/new"), **change})
    assert refused.status_code == 422
    assert 'class="error"' in refused.text and message in refused.text, refused.text[-3000:]
    with Session(people.extensions["db_engine"]) as s:
        assert polls.list_polls(s) == []


def test_an_admin_closes_a_poll(people):
    poll = make_poll(people)
    admin = signed_in(people, "admin@example.com")
    assert admin.post(f"/polls/{poll.id}/close").status_code == 400  # no CSRF token
    closed = admin.post(f"/polls/{poll.id}/close", data={"csrf_token": csrf_token(admin, f"/polls/{poll.id}")})
    assert closed.status_code == 302
    assert "Closed" in admin.get(f"/polls/{poll.id}").text
    assert people.test_client().get(f"/p/{poll.public_token}?respondent_id=a").status_code == 204


def answer(app, poll, respondent, value):
    with app.app_context(), db.write_session() as s:
        polls.answer(s, poll, respondent, value, rules=polls_rules(app))


def polls_rules(app):
    from app.services.rewards import reward_rules

    return reward_rules(app.config["FEEDLOOP"])


def test_results_show_counts_a_chart_and_the_response_rate(people):
    poll = make_poll(people, replace(THUMBS, kind="rating"))
    for who, value in (("a", 5), ("b", 5), ("c", 2)):
        answer(people, poll, who, value)
    page = signed_in(people, "admin@example.com").get(f"/polls/{poll.id}/results").text
    chart = json.loads(re.search(r"data-chart='([^']+)'", page).group(1).replace("&#34;", '"').replace("&quot;", '"'))
    assert (
        chart["type"] == "bar"
        and chart["labels"] == ["1", "2", "3", "4", "5"]
        and chart["datasets"][0]["data"] == [0, 1, 0, 0, 2]
    )
    assert "chart.umd.min.js" in page and "response rate" in page


def test_csv_export_is_an_attachment_with_formulas_defused(people):
    poll = make_poll(people, PollSpec(question="Why?", kind="text", allow_multiple=True))
    for who, text in (("a", '=HYPERLINK("http://evil")'), ("@b", "+1"), ("c", "plain, with a comma"), ("d", "-2")):
        answer(people, poll, who, text)
    export = signed_in(people, "admin@example.com").get(f"/polls/{poll.id}/export?format=csv")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    assert export.headers["Content-Disposition"] == f'attachment; filename="poll-{poll.id}-answers.csv"'
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [r["answer"] for r in rows] == ['\'=HYPERLINK("http://evil")', "'+1", "plain, with a comma", "'-2"]
    assert rows[1]["respondent_id"] == "'@b"


def test_jsonl_export_has_one_answer_per_line(people):
    poll = make_poll(people, replace(THUMBS, allow_multiple=True))
    for who in ("a", "b", "c"):
        answer(people, poll, who, "up")
    admin = signed_in(people, "admin@example.com")
    export = admin.get(f"/polls/{poll.id}/export?format=jsonl")
    assert export.headers["Content-Disposition"].startswith("attachment;")
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert [(line["respondent_id"], line["answer"]) for line in lines] == [("a", "up"), ("b", "up"), ("c", "up")]
    assert admin.get(f"/polls/{poll.id}/export?format=xlsx").status_code == 400
