import sys
import time
from pathlib import Path

import click
from pydantic import ValidationError

from app.cli import load_app


@click.group()
def items() -> None:
    """The item catalogue."""


@items.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), help="default: from the file name")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--skip-invalid", is_flag=True, help="import the valid rows even when some are invalid")
def import_(file: Path, fmt: str | None, batch_size: int, skip_invalid: bool) -> None:
    """Import items from JSON Lines or CSV (id, title, description, category, tags as a|b, other columns as attributes).

    Every row is checked first; with an invalid row nothing is imported unless --skip-invalid.
    """
    from app.api.schemas.items import ItemIn
    from app.errors import validation_details
    from app.services.catalogue import ItemData, upsert_items
    from app.services.item_files import RowProblem, detect_format, read_rows

    valid: dict[str, ItemData] = {}
    problems: list[str] = []
    for line_no, row in read_rows(file, fmt or detect_format(file)):
        if isinstance(row, RowProblem):
            problems.append(f"line {line_no}: {row}")
            continue
        try:
            item = ItemIn.model_validate(row)
        except ValidationError as exc:
            problems += [f"line {line_no}: {d['field']}: {d['message']}" for d in validation_details(exc)]
            continue
        if item.id in valid:
            problems.append(f"line {line_no}: id: {item.id!r} appears on an earlier line")
            continue
        valid[item.id] = ItemData(**item.model_dump())
    for problem in problems[:50]:
        click.echo(problem, err=True)
    if len(problems) > 50:
        click.echo(f"... and {len(problems) - 50} more problems", err=True)
    if problems and not skip_invalid:
        raise click.ClickException(f"{file}: {len(problems)} problems; nothing was imported (fix them or pass --skip-invalid)")

    app = load_app()
    catalogue = app.extensions["catalogue"]
    catalogue.warm_up()
    rows = list(valid.values())
    started = time.perf_counter()
    with click.progressbar(length=len(rows), label="importing", file=sys.stderr) as bar:
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            upsert_items(catalogue, batch)
            bar.update(len(batch))
    catalogue.save_index()
    elapsed = time.perf_counter() - started
    skipped = f", {len(problems)} problems skipped" if problems else ""
    click.echo(
        f"imported {len(rows)} items from {file} in {elapsed:.1f}s{skipped}; the catalogue holds {len(catalogue.index)} items"
    )


@items.command("reindex")
def reindex() -> None:
    """Encode items that lack a vector from the current model and rebuild the saved index."""
    app = load_app()
    catalogue = app.extensions["catalogue"]
    encoded = catalogue.encode_missing()
    catalogue.settings.index_path.unlink(missing_ok=True)
    catalogue.warm_up()
    catalogue.save_index()
    click.echo(f"encoded {encoded} items; index holds {len(catalogue.index)} items ({catalogue.index.kind})")


commands = [items]
