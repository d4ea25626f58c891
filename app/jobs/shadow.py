from flask import Flask

from app.services.shadow import score


def shadow_score(app: Flask) -> str:
    """Let the candidate in shadow (if any) score the decisions served since its last run, logged, not served."""
    version, scored = score(app.extensions["db_engine"], app.config["FEEDLOOP"])
    return "no candidate in shadow" if version is None else f"{version} scored {scored} served decisions"
