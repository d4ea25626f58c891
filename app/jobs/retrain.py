from flask import Flask

from app.services.retraining import retrain as run_retrain


def retrain(app: Flask, trigger: str = "schedule") -> str:
    """Train a candidate on the decision log, judge it and the live policy on a held-out recent window (IPS, SNIPS,
    DR with bootstrap intervals) over a small grid of settings, and promote it only when the rule says it is
    better. Drift or a red model KPI ask for a run sooner."""
    card = run_retrain(app.extensions["db_engine"], app.config["FEEDLOOP"], trigger)
    return f"model card {card.id}: {card.status}: {card.decision}"
