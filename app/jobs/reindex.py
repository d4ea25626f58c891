from flask import Flask


def reindex(app: Flask) -> str:
    """Encode items that have no vector from the current model (an inline encode failed, or the model
    changed), apply every catalogue change, and save the index so that a restart loads it instead of
    replaying the change log. The only place the index file is written while serving; an unchanged
    index is not written again (at 1M items that costs seconds)."""
    catalogue = app.extensions["catalogue"]
    encoded = catalogue.encode_missing()
    if catalogue.index is None:
        catalogue.warm_up(with_model=False)
    else:
        catalogue.sync()
    saved = catalogue.unsaved
    if saved:
        catalogue.save_index()
    return f"encoded {encoded} items; index holds {len(catalogue.index)} items ({catalogue.index.kind}); " + (
        "saved" if saved else "unchanged since it was saved"
    )
