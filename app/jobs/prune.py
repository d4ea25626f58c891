from flask import Flask

from app.db import write_session
from app.services.interactions import prune_activity


def activity_prune(app: Flask) -> str:
    """Delete the per-minute activity counts older than the longest window (the interactions keep the record)."""
    with write_session(app.extensions["db_engine"]) as s:
        deleted = prune_activity(s)
    return f"deleted {deleted} per-minute activity counts no window reads any more"
