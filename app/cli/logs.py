"""`feedloop logs import FILE.csv --name NAME`: logged decisions from another system, as a named dataset."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from app.cli import load_app
from feedback.logs import LoggedRow, Refused, check_header, parse_row

SHOWN_PROBLEMS = 50


@click.group()
def logs() -> None:
    """Logged decisions from other systems, for offline evaluation."""


@logs.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="the dataset's name, used by `feedloop evaluate --dataset`")
@click.option("--replace", is_flag=True, help="overwrite a dataset of the same name")
@click.option("--skip-invalid", is_flag=True, help="store the valid rows even when some are refused")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 10_000))
def import_(file: Path, name: str, replace: bool, skip_invalid: bool, batch_size: int) -> None:
    """Import a CSV with one row per shown item: timestamp, user_id (optional), action, position (optional,
    1-based), reward, propensity (in (0, 1]) and ctx_* context columns. A timestamp without a zone is UTC.

    Every row is checked first; with a refused row nothing is stored unless --skip-invalid. The rows are stored
    in one transaction: all or none.
    """
    from app import db
    from app.services.datasets import DatasetExists, store_dataset

    name = name.strip()
    if not name or len(name) > 128:
        raise click.BadParameter("give a name of 1 to 128 characters", param_hint="--name")
    valid, refused = 0, []
    for row in _rows(file):
        if isinstance(row, Refused):
            refused.append(row)
        else:
            valid += 1
    for problem in refused[:SHOWN_PROBLEMS]:
        click.echo(str(problem), err=True)
    if len(refused) > SHOWN_PROBLEMS:
        click.echo(f"... and {len(refused) - SHOWN_PROBLEMS} more refused rows", err=True)
    if refused and not skip_invalid:
        raise click.ClickException(f"{file}: {len(refused)} rows refused; nothing was imported (fix them or pass --skip-invalid)")
    if not valid:
        raise click.ClickException(f"{file}: no valid rows to import")

    app = load_app()
    try:
        with (
            db.write_session(app.extensions["db_engine"]) as s,
            click.progressbar(length=valid, label="importing", file=sys.stderr) as bar,
        ):
            rows = (row for row in _rows(file) if isinstance(row, LoggedRow))
            info = store_dataset(
                s, name, str(file), rows, replace=replace, refused=len(refused), batch_size=batch_size, on_batch=bar.update
            )
    except DatasetExists as exc:
        raise click.ClickException(str(exc)) from None
    skipped = f", {len(refused)} refused rows skipped" if refused else ""
    click.echo(f"imported {info.rows} rows from {file} as dataset {info.name!r}{skipped}")


@logs.command("list")
def list_() -> None:
    """The imported datasets."""
    from sqlmodel import Session

    from app.services.datasets import list_datasets

    app = load_app()
    with Session(app.extensions["db_engine"]) as s:
        found = list_datasets(s)
    if not found:
        click.echo("no datasets yet: `feedloop logs import FILE.csv --name NAME`")
    for d in found:
        click.echo(f"{d.name}\t{d.rows} rows\t{d.source}")


def _rows(file: Path) -> Iterator[LoggedRow | Refused]:
    """The file's rows, read one at a time; a header without the required columns stops the command."""
    with file.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        try:
            problems = check_header(reader.fieldnames)
            if problems:
                raise click.ClickException(f"{file}: line 1: " + "; ".join(problems))
            for row in reader:
                yield parse_row(reader.line_num, row)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise click.ClickException(f"{file}: line {reader.line_num + 1}: not a readable UTF-8 CSV file ({exc})") from None


commands = [logs]
