from flask import current_app, render_template, url_for

from app.api import public
from app.api.openapi import build_spec, endpoint

bp = public("docs", __name__, template_folder="templates")


@bp.get("/openapi.json")
@endpoint(summary="This document", responses={200: None}, tag="meta")
def openapi():
    return build_spec(current_app, "feedloop API", current_app.config["VERSION"])


@bp.get("/docs")
@endpoint(summary="Interactive API documentation (HTML)", responses={200: None}, tag="meta")
def docs():
    return render_template("docs.html", spec_url=url_for("docs.openapi"))
