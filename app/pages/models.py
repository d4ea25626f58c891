"""`/models`: what serves now (the current release, the learner's version, a candidate in shadow), the release
history, the retrain runs with their model cards, and the kept versions with their lineage; admins roll back,
promote and put candidates in shadow here (each one request to the learner, audited)."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, url_for
from sqlmodel import col, select

from app import db
from app.models import LearnerState, ModelCard, ModelRequest
from app.pages import ADMINS, pages
from app.services import audit, model_registry, releases, shadow
from app.web import actor
from bandit.snapshots import SnapshotError

bp = pages("models", __name__, roles=ADMINS, url_prefix="/models")
ESTIMATORS = ("ips", "snips", "dr")


@bp.get("/")
def index():
    s = db.session()
    settings = current_app.config["FEEDLOOP"]
    in_shadow = shadow.shadow_version(settings)
    return render_template(
        "models/index.html",
        serving=releases.current(s),
        learner=s.get(LearnerState, 1),
        pending=s.exec(select(ModelRequest).where(ModelRequest.status == "pending").order_by(col(ModelRequest.id))).all(),
        shadow=shadow.report(s, in_shadow) if in_shadow else None,
        shadow_kept=model_registry.kept(s, in_shadow) if in_shadow else None,
        history=releases.history(s),
        cards=model_registry.cards(s),
        versions=model_registry.kept_versions(s),
        estimators=ESTIMATORS,
    )


@bp.get("/cards/<int:card_id>")
def card(card_id: int):
    found = db.session().get(ModelCard, card_id)
    if found is None:
        abort(404)
    return render_template("models/card.html", card=found, chart=_estimates_chart(found), estimators=ESTIMATORS)


@bp.get("/<version>")
def version(version: str):
    s = db.session()
    chain = model_registry.lineage(s, version)
    if not chain:
        abort(404)
    return render_template(
        "models/version.html",
        kept=chain[0],
        chain=chain,
        card=model_registry.card_of(s, version),
        releases=model_registry.releases_of(s, version),
        serving=releases.current(s),
    )


@bp.post("/<version>/rollback")
def rollback(version: str):
    return _ask_learner("rollback", version)


@bp.post("/<version>/promote")
def promote(version: str):
    return _ask_learner("promote", version)


def _ask_learner(action: str, version: str):
    try:
        with db.write_session() as s:
            releases.operator_request(s, actor(), action, version, f"{actor()} on the models page")
    except LookupError:
        abort(404)
    except releases.NotACandidate as exc:
        abort(400, description=str(exc))
    flash(f"Asked the learner to {action} {version}; it carries it out within a second or two.", "success")
    return redirect(url_for("models.index"))


@bp.post("/<version>/shadow")
def start_shadow(version: str):
    settings = current_app.config["FEEDLOOP"]
    with db.write_session() as s:
        try:
            shadow.start(s, settings, version)
        except LookupError:
            abort(404)
        except SnapshotError as exc:
            abort(400, description=f"{version} does not load: {exc}")
        audit.record(s, actor(), "shadow", "model", version, None, {"shadow": True})
    flash(f"{version} scores live traffic in shadow from now on.", "success")
    return redirect(url_for("models.index"))


@bp.post("/shadow/stop")
def stop_shadow():
    settings = current_app.config["FEEDLOOP"]
    was = shadow.shadow_version(settings)
    if shadow.stop(settings):
        with db.write_session() as s:
            audit.record(s, actor(), "shadow_off", "model", was or "", {"shadow": True}, {"shadow": False})
        flash(f"Shadow mode ended for {was}.", "success")
    return redirect(url_for("models.index"))


def _estimates_chart(found: ModelCard) -> dict | None:
    """Each estimator's interval for the candidate and the logging policy, as floating bars."""
    if not found.estimates:
        return None
    datasets = []
    for who, colour in (("candidate", "#1095c1"), ("live", "#8891a5")):
        values = found.estimates[who]
        datasets.append(
            {
                "label": "candidate" if who == "candidate" else "logging policy (live)",
                "data": [values[e]["ci"] for e in ESTIMATORS],
                "backgroundColor": colour,
            }
        )
    return {"type": "bar", "labels": [e.upper() for e in ESTIMATORS], "datasets": datasets, "y": {"beginAtZero": False}}
