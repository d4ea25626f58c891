"""The scheduled jobs. Each takes the app and returns a one-line summary for the job log."""
from __future__ import annotations

from typing import Callable

from flask import Flask


def reindex(app: Flask) -> str:
    """Encode items that have no vector from the current model (an inline encode failed, or the model
    changed), apply every catalogue change, and save the index so that a restart loads it instead of
    replaying the change log. An unchanged index is not written again: at 1M items that costs seconds."""
    catalogue = app.extensions["catalogue"]
    encoded = catalogue.encode_missing()
    if catalogue.index is None:
        catalogue.warm_up()
    else:
        catalogue.sync()
    saved = catalogue.unsaved_changes > 0
    if saved:
        catalogue.save_index()
    return (f"encoded {encoded} items; index holds {len(catalogue.index)} items ({catalogue.index.kind}); "
            + ("saved" if saved else "unchanged since it was saved"))


# name → (job, the setting that holds its interval in seconds)
JOBS: dict[str, tuple[Callable[[Flask], str], str]] = {
    "reindex": (reindex, "reindex_seconds"),
}
