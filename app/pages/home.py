"""`/`: the admin's home page; reviewers land on their queues."""

from __future__ import annotations

from flask import current_app, redirect, render_template, url_for
from flask_login import current_user

from app import db
from app.pages import REVIEWERS, admins_only, pages
from app.services import dashboard

bp = pages("home", __name__, roles=REVIEWERS)


@bp.get("/")
def index():
    if not current_user.is_admin:
        return redirect(url_for("review.index"))
    summary = dashboard.home(db.engine(), current_app.config["FEEDLOOP"])
    return render_template("home/index.html", home=summary)


@bp.get("/activity")
@admins_only
def activity():
    """The chart fragment, loaded by htmx after the page: counting a busy day's events may take a moment."""
    day = dashboard.activity(db.engine())
    chart = {
        "type": "bar",
        "labels": [h.strftime("%H:00") for h in day.hours],
        "datasets": [
            {"label": "recommendations", "data": day.recommendations, "backgroundColor": "#1095c1"},
            {"label": "rewards", "data": day.rewards, "backgroundColor": "#e8a33d"},
        ],
    }
    return render_template("home/activity.html", day=day, chart=chart)
