"""The `feedloop` command for operators: one click group per area."""

from __future__ import annotations

import sys

import click

from app.settings import ConfigError


def load_app(warm: bool = False, migrated: bool = True):
    """The app for a command; a readable error for bad configuration or a database `init` has not prepared."""
    from app import create_app, db

    try:
        app = create_app()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if migrated and not db.schema_is_current(app.extensions["db_engine"]):
        raise click.ClickException("the database schema is missing or out of date: run `feedloop init` first")
    if warm:
        app.extensions["catalogue"].warm_up()
    return app


def dataset_rows(s, name: str):
    """(info, rows) of the dataset NAME, or a readable error when it is unknown or empty."""
    from app.services.datasets import UnknownDataset, load_dataset

    try:
        info, rows = load_dataset(s, name)
    except UnknownDataset as exc:
        raise click.ClickException(str(exc)) from None
    if not rows:
        raise click.ClickException(f"dataset {name!r} holds no rows")
    return info, rows


@click.group()
def main() -> None:
    """feedloop: self-hosted human-in-the-loop recommendations."""


@main.command()
def init() -> None:
    """Create the database schema, or upgrade it to this version."""
    from app import db

    app = load_app(migrated=False)
    db.upgrade(app.extensions["db_engine"])
    click.echo(f"database ready: {app.extensions['db_engine'].url.render_as_string(hide_password=True)}")


@main.command()
def status() -> None:
    """The learner's liveness and lag, overdue settlements and rewards set aside (what /healthz reports); exits
    with 1 when the learner is gone or stuck."""
    from app.services.status import learner_status

    app = load_app()
    s = learner_status(app.extensions["db_engine"], app.config["FEEDLOOP"])
    beat = "never" if s.heartbeat_age_seconds is None else f"{s.heartbeat_age_seconds:.1f} s ago"
    click.echo(f"learner: {s.status} (heartbeat {beat}; serving {s.model_version or 'the initial model'})")
    click.echo(f"learned up to reward {s.last_reward_id}; oldest unlearned reward waits {s.lag_seconds:.1f} s")
    click.echo(f"oldest event whose rewards are not final: {s.oldest_unsettled_event_seconds:.1f} s old")
    click.echo(f"rewards set aside after failing to learn: {s.set_aside_rewards}")
    if not s.healthy:
        sys.exit(1)  # so that a monitoring script can tell, as /healthz's 503 does


def _register() -> None:
    from app.cli import evaluate, items, jobs, keys, labels, logs, models, queues, serve, simulate, train, users, webhooks

    for module in (evaluate, items, jobs, keys, labels, logs, models, queues, serve, simulate, train, users, webhooks):
        for command in module.commands:
            main.add_command(command)


_register()
