from flask import current_app

from app import db
from app.api import keyed
from app.api.openapi import endpoint
from app.api.schemas.loop import ApprenticeReport, LoopStatus
from app.services.loop import apprentice_report

bp = keyed("loop", __name__)


@bp.get("/loop")
@endpoint(summary="Loop mode, serving model and apprentice agreement", responses={200: LoopStatus}, tag="loop")
def loop_status():
    """In apprentice mode the app's baseline is served first while the policy learns; `agreement` tells how often
    the policy would have chosen the same, so the app knows when to switch FEEDLOOP_LOOP_MODE to online."""
    report = apprentice_report(db.session())
    return LoopStatus(
        mode=current_app.config["FEEDLOOP"].loop_mode,
        model_version=current_app.extensions["models"].current().version,
        apprentice=ApprenticeReport(**vars(report)),
    ).model_dump()
