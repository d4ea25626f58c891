import os
from pathlib import Path

import click

from app.cli import load_app


@click.group()
def labels() -> None:
    """Labels for training: resolved review tasks and poll answers."""


@labels.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
def export(file: Path) -> None:
    """Write every label as JSON Lines to FILE (the line format is in app/services/labels.py): review tasks'
    final decisions with each reviewer's, then poll answers that became rewards or relevance labels. The file
    appears complete or not at all (written beside it, then renamed)."""
    import orjson

    from app.services.labels import labels as all_labels

    app = load_app()
    partial = file.with_name(f".{file.name}.partial")
    counts = {"review": 0, "poll": 0}
    try:
        with open(partial, "wb") as out:
            for label in all_labels(app.extensions["db_engine"]):
                out.write(orjson.dumps(label) + b"\n")
                counts[label["source"]] += 1
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, file)
    finally:
        partial.unlink(missing_ok=True)
    click.echo(
        f"{counts['review'] + counts['poll']} labels written to {file} ({counts['review']} from review, {counts['poll']} from polls)"
    )


commands = [labels]
