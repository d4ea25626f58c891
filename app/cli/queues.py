import click
from sqlmodel import Session, select

from app.cli import load_app


@click.group()
def queues() -> None:
    """Review queues: how many independent decisions a task needs, how long a claim holds, the labels offered."""


@queues.command("list")
def list_() -> None:
    from app.models import ReviewQueue
    from app.services.dashboard import open_tasks

    app = load_app()
    with Session(app.extensions["db_engine"]) as s:
        unresolved = open_tasks(s)
        for q in s.exec(select(ReviewQueue).order_by(ReviewQueue.name)).all():
            labels = ",".join(q.labels) if q.labels else "confirm/dismiss"
            click.echo(
                f"{q.name}\t{q.decisions_required} decision(s) a task\tclaims hold {q.lease_seconds} s\t{labels}\t"
                f"{unresolved.get(q.name, 0)} unresolved"
            )


@queues.command("set")
@click.argument("name")
@click.option("--description", help="what reviewers are asked to do")
@click.option("--decisions", "decisions_required", type=int, help="independent decisions a task needs (1-10)")
@click.option("--lease-seconds", type=int, help="how long a claim holds before the task returns (60-86400)")
@click.option("--labels", help="comma-separated label values (up to 9; keys 1-9), instead of confirm/dismiss")
@click.option("--no-labels", is_flag=True, help="decide by confirm or dismiss")
def set_(name: str, description, decisions_required, lease_seconds, labels, no_labels) -> None:
    """Create queue NAME or change its settings (recorded in the audit log)."""
    from app import db
    from app.services.review import configure_queue
    from feedback.review import Invalid

    if labels is not None and no_labels:
        raise click.UsageError("give --labels or --no-labels, not both")
    values = () if no_labels else tuple(v.strip() for v in labels.split(",")) if labels is not None else None
    app = load_app()
    try:
        with db.write_session(app.extensions["db_engine"]) as s:
            configure_queue(
                s,
                name,
                "cli",
                description=description,
                decisions_required=decisions_required,
                lease_seconds=lease_seconds,
                labels=values,
            )
    except Invalid as exc:
        raise click.ClickException(f"{exc.message}; nothing was changed") from None
    click.echo(f"queue {name} saved")


commands = [queues]
