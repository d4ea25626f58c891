"""`feedloop train --dataset NAME`: a candidate trained offline on a log another system recorded."""

from __future__ import annotations

import click

from app.cli import dataset_rows, load_app


@click.command()
@click.option("--dataset", "name", required=True, help="a dataset imported with `feedloop logs import`")
def train(name: str) -> None:
    """Train a candidate on DATASET with the retrain job's settings search (its most recent share held out and judged
    with IPS, SNIPS and DR), keep it as a model version with its card, and print the card. It is not served until
    promoted: `feedloop models promote VERSION`."""
    from sqlmodel import Session

    from app.services.retraining import train_on_dataset

    app = load_app()
    engine, settings = app.extensions["db_engine"], app.config["FEEDLOOP"]
    with Session(engine) as s:
        info, rows = dataset_rows(s, name)
    click.echo(f"training on {len(rows)} rows of {info.name} (the grid of settings takes a while on large logs)")
    card = train_on_dataset(engine, settings, info, rows)
    click.echo(f"model card {card.id}: {card.status}")
    if card.candidate_version:
        estimator = card.estimates["estimator"]
        click.echo(f"candidate {card.candidate_version}: {card.settings}")
        for who in ("candidate", "live"):
            e = card.estimates[who][estimator]
            label = who if who == "candidate" else "logging policy"
            click.echo(f"  {label:<15}{estimator.upper()} {e['value']:.4f} [{e['ci'][0]:.4f}, {e['ci'][1]:.4f}]")
    click.echo(card.decision)
    if card.status == "insufficient":
        raise SystemExit(1)


commands = [train]
