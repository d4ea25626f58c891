"""The review pages: who may open and post what (anonymous, app key, reviewer, other reviewer, admin), CSRF on
every post, claiming and deciding with and without htmx, redundancy with kappa shown, and the audit log."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import update
from sqlmodel import Session, func, select

from app import db
from app.models import AuditEntry, ExcludedUser, ReviewDecision, ReviewQueue, ReviewTask
from app.services.review import enqueue
from feedback.review import validate_task
from tests.helpers import csrf_token, make_user, new_key, sign_in

EVIDENCE = {"rewards_per_hour": 340, "z_score": 6.12, "series": {"rewards": [3, 4, 5, 90]}, "x": ["09", "10", "11", "12"]}


@pytest.fixture
def site(bare):
    for email, role in [("ada@example.org", "admin"), ("rita@example.org", "reviewer"), ("ravi@example.org", "reviewer")]:
        make_user(bare, email, role)
    return bare


def add(app, queue="anomalies", subject="mallory", evidence=None, subject_type="user", priority=0) -> int:
    with db.write_session(app.extensions["db_engine"]) as s:
        return enqueue(s, validate_task(queue, subject_type, subject, evidence or EVIDENCE, priority), "key:1")[0]


def person(app, email: str):
    client = app.test_client()
    sign_in(client, email)
    return client


def token(client) -> str:
    return csrf_token(client, "/review/")


def post(client, url: str, htmx: bool = False, **data):
    data.setdefault("csrf_token", token(client))
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(url, data=data, headers=headers)


def claim(client, queue="anomalies") -> int:
    response = post(client, f"/review/{queue}/claim")
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return int(response.headers["Location"].rsplit("/", 1)[1])


def count(app, model) -> int:
    with Session(app.extensions["db_engine"]) as s:
        return s.exec(select(func.count()).select_from(model)).one()


def test_anonymous_visitors_and_app_keys_get_no_page(site):
    task = add(site)
    client = site.test_client()
    key = {"Authorization": f"Bearer {new_key(site)}"}
    for url in ["/review/", "/review/anomalies", f"/review/tasks/{task}", "/review/audit"]:
        for headers in ({}, key):
            response = client.get(url, headers=headers)
            assert response.status_code == 302 and response.headers["Location"].startswith("/login"), url
        assert client.get(url, headers={"HX-Request": "true"}).status_code == 401
    csrf = csrf_token(client)  # an anonymous session's own token: the refusal is for the person, not the token
    for url in ["/review/anomalies/claim", f"/review/tasks/{task}/decide", f"/review/tasks/{task}/release"]:
        assert client.post(url, data={"csrf_token": csrf, "decision": "confirm"}).status_code == 401, url
        assert client.post(url, data={"decision": "confirm"}, headers=key).status_code == 400, url  # no token
    assert count(site, ReviewDecision) == 0


def test_a_reviewer_claims_sees_the_evidence_and_decides(site):
    task = add(site)
    rita = person(site, "rita@example.org")
    index = rita.get("/review/").get_data(as_text=True)
    assert 'href="/review/anomalies"' in index and "one decision per task" in index
    assert claim(rita) == task
    page = rita.get(f"/review/tasks/{task}").get_data(as_text=True)
    assert "mallory" in page and "340" in page and "6.12" in page
    chart = re.search(r"data-chart='([^']+)'", page).group(1)
    assert '"rewards"' in chart and '"12"' in chart
    assert 'data-shortcut="c"' in page and "<kbd>c</kbd>" in page and "<kbd>d</kbd>" in page and "<kbd>n</kbd>" in page
    assert "js/review.js" in page and not re.search(r"<script(?![^>]*\bsrc=)", page)  # no inline script
    response = post(rita, f"/review/tasks/{task}/decide", decision="confirm", note="click farm")
    assert response.status_code == 303 and response.headers["Location"] == "/review/anomalies"  # nothing left
    with Session(site.extensions["db_engine"]) as s:
        assert s.get(ReviewTask, task).decision == "confirm"
        assert s.get(ExcludedUser, "mallory") is not None
    assert "Nothing left to claim" in rita.get("/review/anomalies").get_data(as_text=True)


def test_another_reviewer_can_neither_open_nor_decide_a_held_task(site):
    task = add(site)
    rita, ravi, ada = (person(site, f"{n}@example.org") for n in ("rita", "ravi", "ada"))
    claim(rita)
    assert ravi.get(f"/review/tasks/{task}").status_code == 403
    assert post(ravi, f"/review/tasks/{task}/decide", decision="dismiss").status_code == 403
    assert post(ravi, f"/review/tasks/{task}/release").status_code == 403
    refused = post(ravi, f"/review/tasks/{task}/decide", htmx=True, decision="dismiss")
    assert refused.status_code == 403 and refused.headers["HX-Redirect"] == "/review/anomalies"  # htmx swaps no 403
    assert "only the reviewer holding this task" in ravi.get("/review/anomalies").get_data(as_text=True)  # the reason
    admin_view = ada.get(f"/review/tasks/{task}").get_data(as_text=True)
    assert "mallory" in admin_view and 'data-shortcut="c"' not in admin_view  # admins read, but hold no claim
    assert post(ada, f"/review/tasks/{task}/decide", decision="dismiss").status_code == 403
    assert count(site, ReviewDecision) == 0
    assert ravi.get("/review/tasks/999999").status_code == 404
    assert "mallory" not in ravi.get("/review/anomalies").get_data(as_text=True)  # not theirs, not listed


def test_decision_posts_need_the_csrf_token(site):
    task = add(site)
    rita = person(site, "rita@example.org")
    claim(rita)
    assert rita.post(f"/review/tasks/{task}/decide", data={"decision": "confirm"}).status_code == 400
    assert (
        rita.post(f"/review/tasks/{task}/decide", data={"decision": "confirm"}, headers={"HX-Request": "true"}).status_code == 400
    )
    assert rita.post("/review/anomalies/claim", data={}).status_code == 400
    assert count(site, ReviewDecision) == 0
    ok = rita.post(f"/review/tasks/{task}/decide", data={"decision": "confirm"}, headers={"X-CSRFToken": token(rita)})
    assert ok.status_code == 303  # the token in the header, as htmx sends it


def test_with_htmx_a_decision_swaps_in_the_next_task_then_the_queue(site):
    first, second = add(site, subject="u1", priority=5), add(site, subject="u2")
    rita = person(site, "rita@example.org")
    response = post(rita, "/review/anomalies/claim", htmx=True)
    assert response.status_code == 200 and response.headers["HX-Push-Url"] == f"/review/tasks/{first}"
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="work">') and "<html" not in html
    response = post(rita, f"/review/tasks/{first}/decide", htmx=True, decision="dismiss")
    assert response.headers["HX-Push-Url"] == f"/review/tasks/{second}"
    assert f"Task {first}: dismiss, resolved as dismiss." in response.get_data(as_text=True)
    response = post(rita, f"/review/tasks/{second}/decide", htmx=True, decision="dismiss")
    assert response.headers["HX-Push-Url"] == "/review/anomalies"
    assert "Nothing left for you to claim" in response.get_data(as_text=True)


def test_an_invalid_decision_is_refused_and_stores_nothing(site):
    task = add(site)
    rita = person(site, "rita@example.org")
    claim(rita)
    for data in [
        {"decision": "label", "label": "relevant"},
        {"decision": "approve"},
        {"decision": "confirm", "note": "x" * 2001},
    ]:
        response = post(rita, f"/review/tasks/{task}/decide", **data)
        assert response.status_code == 422, data
    assert count(site, ReviewDecision) == 0


def test_release_puts_the_task_back_for_others(site):
    task = add(site)
    rita, ravi = person(site, "rita@example.org"), person(site, "ravi@example.org")
    claim(rita)
    assert post(rita, f"/review/tasks/{task}/release").status_code == 303
    assert claim(ravi) == task


def test_two_reviewers_per_task_resolve_it_and_the_queue_shows_kappa(site):
    with db.write_session(site.extensions["db_engine"]) as s:
        s.execute(update(ReviewQueue).where(ReviewQueue.name == "labeling").values(decisions_required=2))
    rita, ravi = person(site, "rita@example.org"), person(site, "ravi@example.org")
    votes = [("relevant", "relevant"), ("irrelevant", "irrelevant"), ("relevant", "somewhat"), ("somewhat", "somewhat")]
    for n, (a, b) in enumerate(votes):
        task = add(site, "labeling", f"i{n}", {"probability": 0.3 + n / 10}, "item")
        assert claim(rita, "labeling") == task
        page = rita.get(f"/review/tasks/{task}").get_data(as_text=True)
        assert 'data-shortcut="1"' in page and "<kbd>3</kbd>" in page
        post(rita, f"/review/tasks/{task}/decide", decision="label", label=a)
        with Session(site.extensions["db_engine"]) as s:
            assert s.get(ReviewTask, task).status == "open"  # one decision of two
        assert claim(ravi, "labeling") == task
        assert "rita@example.org" not in ravi.get(f"/review/tasks/{task}").get_data(as_text=True)  # independent
        post(ravi, f"/review/tasks/{task}/decide", decision="label", label=b)
        with Session(site.extensions["db_engine"]) as s:
            assert s.get(ReviewTask, task).status == "resolved"
    # first rater: relevant 2, irrelevant 1, somewhat 1; second: relevant 1, irrelevant 1, somewhat 2
    # p_o = 3/4, p_e = (2*1 + 1*1 + 1*2) / 16 = 5/16, kappa = (12/16 - 5/16) / (11/16) = 7/11 = 0.64
    for url in ["/review/", "/review/labeling"]:
        html = person(site, "ada@example.org").get(url).get_data(as_text=True)
        assert "κ = 0.64" in html and "Cohen, 4 tasks" in html and "75% of pairs agree" in html, url


def test_queue_filters_answer_a_fragment_to_htmx(site):
    add(site, subject="u1")
    add(site, subject="i1", subject_type="item")
    ada = person(site, "ada@example.org")
    full = ada.get("/review/anomalies?subject_type=item").get_data(as_text=True)
    assert "<html" in full and "i1" in full and "u1</code>" not in full
    fragment = ada.get("/review/anomalies?status=open", headers={"HX-Request": "true", "HX-Target": "tasks"})
    html = fragment.get_data(as_text=True)
    assert html.startswith('<div id="tasks">') and "u1" in html and "i1" in html
    assert ada.get("/review/anomalies?status=nonsense&subject_type=__class__").status_code == 200  # ignored
    assert ada.get("/review/nonexistent").status_code == 404


def test_markup_in_subjects_and_evidence_is_escaped(site):
    task = add(site, subject="<script>alert(1)</script>", evidence={"why": "<img src=x onerror=alert(1)>"})
    ada = person(site, "ada@example.org")
    claim(ada)
    html = ada.get(f"/review/tasks/{task}").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html


def test_the_audit_log_is_for_admins_and_shows_who_decided_what(site):
    task = add(site)
    rita, ada = person(site, "rita@example.org"), person(site, "ada@example.org")
    claim(rita)
    post(rita, f"/review/tasks/{task}/decide", decision="dismiss", note="seasonal")
    assert rita.get("/review/audit").status_code == 403
    html = ada.get("/review/audit?actor=rita@example.org").get_data(as_text=True)
    assert "rita@example.org" in html and "decide" in html and "claim" in html and "seasonal" in html
    assert "enqueue" not in html  # by the key, filtered out
    assert "No entry matches" in ada.get("/review/audit?actor=ravi@example.org").get_data(as_text=True)
    assert ada.post("/review/audit", data={"csrf_token": token(ada)}).status_code == 405  # nothing edits it
    entries = count(site, AuditEntry)
    assert entries == 3  # enqueue, claim, decide
