"""/review: reviewers work through the queues (claim the next task, decide, move on) and admins read the audit
log. Every URL serves the full page, or to htmx the fragment the page itself includes, so the markup exists
once and every page works without JavaScript.

Who sees what: a reviewer opens only the tasks they hold or have decided (and sees only their own decision, so
that the k decisions a queue asks for stay independent); an admin opens any task and sees every decision; both
decide only a task they hold with a live claim (the service refuses anyone else, which answers 403 here)."""

from __future__ import annotations

from typing import NoReturn

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from app import db
from app.pages import REVIEWERS, admins_only, pages
from app.services import audit
from app.services import review as service
from app.services.review import ReviewError, TaskView
from feedback.review import STATUSES, SUBJECT_TYPES, chart_spec, facts

bp = pages("review", __name__, roles=REVIEWERS, url_prefix="/review")


def _htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def _queue_stats(name: str) -> service.QueueStats:
    stats = next((q for q in service.queue_stats(db.session()) if q.name == name), None)
    if stats is None:
        abort(404, f"no review queue {name!r}")
    return stats


@bp.get("/")
def index():
    return render_template("review/index.html", queues=service.queue_stats(db.session()))


@bp.get("/<name>")
def queue(name: str):
    stats = _queue_stats(name)
    status = request.args.get("status") if request.args.get("status") in STATUSES else None
    subject_type = request.args.get("subject_type") if request.args.get("subject_type") in SUBJECT_TYPES else None
    after = request.args.get("after", type=int)
    tasks, cursor = service.list_tasks(
        db.session(),
        queue=name,
        status=status,
        subject_type=subject_type,
        after=after if after and after > 0 else None,
        reviewer=None if current_user.is_admin else current_user.id,
    )
    context = dict(
        stats=stats,
        tasks=tasks,
        cursor=cursor,
        status=status,
        subject_type=subject_type,
        held=service.held_task(db.session(), name, current_user.id),
        statuses=STATUSES,
        subject_types=SUBJECT_TYPES,
    )
    if _htmx() and request.headers.get("HX-Target") == "tasks":
        return render_template("review/_tasks.html", **context)
    return render_template("review/queue.html", **context)


@bp.post("/<name>/claim")
def claim(name: str):
    _queue_stats(name)
    with db.write_session() as s:
        task = service.claim_next(s, name, current_user.id)
    return _show_next(name, task, None)


def _show_next(name: str, task: TaskView | None, message: str | None):
    """After a claim or a decision: the task now held, or the queue when nothing is left to claim."""
    if not _htmx():
        if message:
            flash(message)
        if task is None:
            flash(f"Nothing left to claim in {name}.")
            return redirect(url_for("review.queue", name=name), 303)
        return redirect(url_for("review.task", task_id=task.id), 303)
    if task is None:
        response = make_response(render_template("review/_empty.html", stats=_queue_stats(name), message=message))
        response.headers["HX-Push-Url"] = url_for("review.queue", name=name)
        return response
    response = make_response(render_template("review/_task.html", message=message, **_task_context(task)))
    response.headers["HX-Push-Url"] = url_for("review.task", task_id=task.id)
    return response


def _visible_task(task_id: int) -> TaskView:
    """The task, if the signed-in person may open it (404 when it does not exist, 403 when not theirs)."""
    task = service.get_task(db.session(), task_id)
    if task is None:
        abort(404, f"no review task {task_id}")
    mine = task.claimed_by == current_user.id or service.has_decided(db.session(), task_id, current_user.id)
    if not (current_user.is_admin or mine):
        abort(403, "this task is not yours: claim the next task of its queue instead")
    return task


def _task_context(task: TaskView, error: str | None = None) -> dict:
    rules = service.queue_rules(db.session(), task.queue)
    return dict(
        task=task,
        rules=rules,
        facts=facts(task.evidence),
        chart=chart_spec(task.evidence),
        holder=task.claimed_by == current_user.id,
        decisions=service.decisions(db.session(), task.id, None if current_user.is_admin else current_user.id),
        error=error,
    )


@bp.get("/tasks/<int:task_id>")
def task(task_id: int):
    context = _task_context(_visible_task(task_id))
    return render_template("review/_task.html" if _htmx() else "review/task.html", message=None, **context)


def _refuse_claim(task_id: int, message: str) -> NoReturn:
    """403. htmx swaps nothing on a 403, so a key press would seem to do nothing: it is sent to the queue instead,
    with the reason (a claim that expired while the page was open, most often)."""
    if _htmx():
        flash(f"Task {task_id}: {message}", "error")
        queue_name = service.get_task(db.session(), task_id).queue
        abort(make_response("", 403, {"HX-Redirect": url_for("review.queue", name=queue_name)}))
    abort(403, message)


@bp.post("/tasks/<int:task_id>/decide")
def decide(task_id: int):
    form = request.form
    try:
        with db.write_session() as s:
            done = service.decide(s, task_id, current_user.id, form.get("decision"), form.get("label"), form.get("note"))
    except ReviewError as exc:
        if exc.code == "not_found":
            abort(404, exc.message)
        if exc.code == "not_holder":
            _refuse_claim(task_id, exc.message)
        context = _task_context(_visible_task(task_id), error=exc.message)
        return render_template("review/_task.html" if _htmx() else "review/task.html", message=None, **context), 422
    message = f"Task {task_id}: {done.outcome}" + (f", resolved as {done.task.decision}" if done.resolved else "")
    if done.excluded_user:
        message += f"; user {done.excluded_user} no longer teaches the model"
    with db.write_session() as s:
        following = service.claim_next(s, done.task.queue, current_user.id)
    return _show_next(done.task.queue, following, message + ".")


@bp.post("/tasks/<int:task_id>/release")
def release(task_id: int):
    if service.get_task(db.session(), task_id) is None:
        abort(404, f"no review task {task_id}")
    try:
        with db.write_session() as s:
            service.release(s, task_id, current_user.id)
    except ReviewError as exc:
        _refuse_claim(task_id, exc.message)
    queue_name = service.get_task(db.session(), task_id).queue
    if _htmx():
        response = make_response(render_template("review/_empty.html", stats=_queue_stats(queue_name), message="Released."))
        response.headers["HX-Push-Url"] = url_for("review.queue", name=queue_name)
        return response
    flash(f"Task {task_id} is back in the queue.")
    return redirect(url_for("review.queue", name=queue_name), 303)


@bp.get("/audit", endpoint="audit")
@admins_only
def audit_log():
    actor = request.args.get("actor", "").strip()[:254]
    subject_type = request.args.get("subject_type", "").strip()[:16] or None
    subject_id = request.args.get("subject_id", "").strip()[:256] or None
    before = request.args.get("before", type=int)
    page = audit.entries(
        db.session(),
        actor=audit.actor_of(db.session(), actor) if actor else None,
        subject_type=subject_type,
        subject_id=subject_id,
        before_id=before if before and before > 0 else None,
    )
    filters = {"actor": actor, "subject_type": subject_type or "", "subject_id": subject_id or ""}
    template = "review/_audit_rows.html" if _htmx() and request.headers.get("HX-Target") == "audit" else "review/audit.html"
    return render_template(template, page=page, filters=filters)
