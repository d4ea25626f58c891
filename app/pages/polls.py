"""Polls for admins: the list, a form to create one, each poll's page (settings, the embed snippet, close) and its
results (counts, a chart, the response rate, CSV and JSON Lines downloads)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from flask import Response, abort, current_app, flash, redirect, render_template, request, stream_with_context, url_for
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    DecimalField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from app import db
from app.models import Poll, utcnow
from app.pages import ADMINS, pages
from app.pages.embed import embed_url
from app.services import polls
from app.web import actor
from feedback.polls import KINDS, MAX_QUESTION, TARGETS, Invalid, PollSpec, open_problem

bp = pages("polls", __name__, roles=ADMINS, url_prefix="/polls")

KIND_LABELS = {
    "thumbs": "Thumbs up / down",
    "rating": "Rating 1-5",
    "single_choice": "One choice",
    "multiple_choice": "Several choices",
    "text": "Free text",
}
TARGET_LABELS = {"none": "Nothing in particular", "event": "A recommendation (event)", "item": "One item"}


class PollForm(FlaskForm):
    question = TextAreaField("Question", validators=[DataRequired(), Length(max=MAX_QUESTION)])
    kind = SelectField("Kind", choices=[SelectChoice(k, KIND_LABELS[k]) for k in KINDS], default="thumbs")
    options = TextAreaField("Options (one per line; the choice kinds only)")
    target = SelectField("About", choices=[SelectChoice(t, TARGET_LABELS[t]) for t in TARGETS], default="none")
    target_item_id = StringField("Item id (for a poll about one item)", validators=[Optional(), Length(max=256)])
    starts_at = DateTimeLocalField("Starts (UTC, optional)", validators=[Optional()])
    ends_at = DateTimeLocalField("Ends (UTC, optional)", validators=[Optional()])
    sample_share = DecimalField("Share of respondents asked", default=1, places=None, validators=[NumberRange(0, 1)])
    allowed_origins = TextAreaField("Sites that may embed it (one origin per line, e.g. https://shop.example.com)")
    allow_multiple = BooleanField("A respondent may answer more than once")
    recontact_days = IntegerField(
        "Do not show it to the same respondent again for (days)", default=30, validators=[NumberRange(0, 3650)]
    )
    reward_map = TextAreaField("Rewards (one 'answer = reward' per line; empty: thumbs up 1, down 0, rating r → (r−1)/4)")
    uncertain_only = BooleanField("Ask only about recommendations where the bandit was unsure")
    max_probability = DecimalField("Unsure below this probability", places=None, validators=[Optional()])
    max_margin = DecimalField("Unsure below this score margin", places=None, validators=[Optional()])


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None else None


def _float(value) -> float | None:
    return float(value) if value is not None else None


def spec_from(form: PollForm) -> PollSpec:
    """The form as a poll definition; a reward line that is not `answer = number` is reported on its field."""
    rewards: dict[str, float] = {}
    for line in _lines(form.reward_map.data):
        answer, sep, value = line.rpartition("=")
        try:
            rewards[answer.strip()] = float(value)
        except ValueError:
            raise Invalid([("reward_map", f"write 'answer = reward' on each line, not {line!r}")]) from None
        if not sep:
            raise Invalid([("reward_map", f"write 'answer = reward' on each line, not {line!r}")])
    options = _lines(form.options.data)
    return PollSpec(
        question=form.question.data or "",
        kind=form.kind.data,
        options=tuple(options) if options else None,
        target=form.target.data,
        target_item_id=form.target_item_id.data.strip() or None if form.target_item_id.data else None,
        starts_at=_utc(form.starts_at.data),
        ends_at=_utc(form.ends_at.data),
        sample_share=float(form.sample_share.data),
        allowed_origins=tuple(_lines(form.allowed_origins.data)),
        allow_multiple=form.allow_multiple.data,
        recontact_seconds=form.recontact_days.data * 86400,
        reward_map=rewards or None,
        uncertain_only=form.uncertain_only.data,
        max_probability=_float(form.max_probability.data),
        max_margin=_float(form.max_margin.data),
    )


FORM_FIELD = {"recontact_seconds": "recontact_days"}


def _show_problems(form: PollForm, problems: list[tuple[str, str]]) -> None:
    for name, message in problems:
        field = FORM_FIELD.get(name, name.split("[")[0].split(".")[0])
        getattr(form, field, form.question).errors.append(message)


@bp.get("/")
def index():
    return render_template("polls/index.html", polls=polls.list_polls(db.session()), status=status, kinds=KIND_LABELS)


@bp.route("/new", methods=["GET", "POST"])
def create():
    form = PollForm()
    if form.validate_on_submit():
        try:
            spec = spec_from(form)
            with db.write_session() as s:
                poll = polls.create_poll(s, spec, actor())
        except Invalid as exc:
            _show_problems(form, exc.problems)
        except polls.PollError as exc:
            form.target_item_id.errors.append(exc.message)
        else:
            flash("Poll created. Paste the snippet below into your app's page.", "success")
            return redirect(url_for("polls.detail", poll_id=poll.id))
    status_code = 422 if request.method == "POST" else 200
    return render_template("polls/create.html", form=form), status_code


def found(poll_id: int) -> Poll:
    poll = polls.get_poll(db.session(), poll_id)
    if poll is None:
        abort(404)
    return poll


def status(poll: Poll) -> str:
    problem = open_problem(polls.window(poll), utcnow())
    return {None: "open", "not_started": "scheduled"}.get(problem, problem)


@bp.get("/<int:poll_id>")
def detail(poll_id: int):
    poll = found(poll_id)
    results = polls.results(db.session(), poll)
    query = "?respondent_id=USER_ID" + ("&event_id=EVENT_ID&item_id=ITEM_ID" if poll.target == "event" else "")
    snippet = (
        f'<iframe src="{embed_url(poll.public_token)}{query}" title="{poll.question[:80]}" '
        f'width="100%" height="{_height(poll)}" loading="lazy"></iframe>'
    )
    return render_template(
        "polls/detail.html",
        poll=poll,
        results=results,
        snippet=snippet,
        status=status(poll),
        kinds=KIND_LABELS,
        targets=TARGET_LABELS,
    )


def _height(poll: Poll) -> int:
    """Roughly what the embed needs without scrolling."""
    rows = {"thumbs": 1, "rating": 2, "text": 4}.get(poll.kind, len(poll.options or ()))
    return 150 + 40 * rows


@bp.post("/<int:poll_id>/close")
def close(poll_id: int):
    found(poll_id)
    with db.write_session() as s:
        polls.close_poll(s, poll_id)
    flash("Poll closed: it takes no more answers.", "success")
    return redirect(url_for("polls.detail", poll_id=poll_id))


@bp.get("/<int:poll_id>/results")
def results(poll_id: int):
    poll = found(poll_id)
    r = polls.results(db.session(), poll)
    chart = {
        "type": "bar",
        "labels": list(r.counts),
        "datasets": [{"label": "answers", "data": list(r.counts.values()), "backgroundColor": "#1095c1"}],
        "y": {"ticks": {"precision": 0}},
    }
    return render_template("polls/results.html", poll=poll, results=r, chart=chart, status=status(poll))


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str | int | float:
    """A cell a spreadsheet shows as text: one starting with = + - @ (or a tab or carriage return) would be run
    as a formula (CSV injection), so it gets a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return value
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return "'" + text if text.startswith(FORMULA_START) else text


def _csv(rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(polls.EXPORT_FIELDS)
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([csv_cell(row[name]) for name in polls.EXPORT_FIELDS])
        yield buffer.getvalue()


def _jsonl(rows) -> str:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n"


@bp.get("/<int:poll_id>/export")
def export(poll_id: int):
    """Every answer, streamed: ?format=csv (the default) or jsonl."""
    poll = found(poll_id)
    kind = request.args.get("format", "csv")
    if kind not in ("csv", "jsonl"):
        abort(400, description="format is csv or jsonl")
    rows = polls.export_rows(current_app.extensions["db_engine"], poll.id)
    body, mimetype = (_csv(rows), "text/csv") if kind == "csv" else (_jsonl(rows), "application/x-ndjson")
    response = Response(stream_with_context(body), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="poll-{poll.id}-answers.{kind}"'
    return response
