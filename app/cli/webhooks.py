import click
from sqlmodel import Session

from app.cli import load_app


@click.group()
def webhooks() -> None:
    """Webhooks that receive poll answers or alerts, signed with a per-webhook secret (`feedloop jobs run webhooks`
    sends what is due now)."""


@webhooks.command("add")
@click.argument("url")
@click.option(
    "--topic",
    type=click.Choice(["poll.response", "alert"]),
    default="poll.response",
    show_default=True,
    help="what it receives: poll answers, or every new alert monitoring raises",
)
@click.option("--poll", "poll_id", type=int, help="only this poll's answers (default: every poll's)")
@click.option("--allow-private", is_flag=True, help="allow loopback and private addresses (receivers inside your network)")
def add(url: str, topic: str, poll_id: int | None, allow_private: bool) -> None:
    """Send poll answers (or alerts) to URL; its secret is printed once, on the last line."""
    from app import db
    from app.services.webhooks import WebhookError, create_webhook

    app = load_app()
    try:
        with db.write_session(app.extensions["db_engine"]) as s:
            created = create_webhook(s, url, created_by="cli", topic=topic, poll_id=poll_id, allow_private=allow_private)
    except WebhookError as exc:
        raise click.ClickException(f"{exc}; no webhook was created") from None
    click.echo(f"created webhook {created.id}: {_sends(topic, poll_id)} go to {url.strip()}")
    click.echo("signing secret (shown only now; give it to the receiver):", err=True)
    click.echo(created.secret)


@webhooks.command("list")
def list_() -> None:
    from app.services.webhooks import list_webhooks

    app = load_app()
    with Session(app.extensions["db_engine"]) as s:
        for w in list_webhooks(s):
            state = "disabled" if w.disabled_at else "active"
            private = "\tprivate addresses allowed" if w.allow_private else ""
            click.echo(
                f"{w.id}\t{w.url}\t{_sends(w.topic, w.poll_id).removeprefix('answers of ')}\t{state}\t"
                f"pending {w.pending}, delivered {w.delivered}, failed {w.failed}{private}"
            )


def _sends(topic: str, poll_id: int | None) -> str:
    if topic == "alert":
        return "alerts"
    return f"answers of poll {poll_id}" if poll_id is not None else "answers of every poll"


@webhooks.command("disable")
@click.argument("webhook_id", metavar="ID", type=int)
def disable(webhook_id: int) -> None:
    """Stop sending to webhook ID; deliveries still waiting are given up."""
    from app import db
    from app.services.webhooks import WebhookError, disable_webhook

    app = load_app()
    try:
        with db.write_session(app.extensions["db_engine"]) as s:
            given_up = disable_webhook(s, webhook_id)
    except WebhookError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"webhook {webhook_id} disabled; {given_up} waiting deliveries given up")


@webhooks.command("rotate-secret")
@click.argument("webhook_id", metavar="ID", type=int)
def rotate(webhook_id: int) -> None:
    """Give webhook ID a new signing secret, printed once; the old one stops working at once."""
    from app import db
    from app.services.webhooks import WebhookError, rotate_secret

    app = load_app()
    try:
        with db.write_session(app.extensions["db_engine"]) as s:
            secret = rotate_secret(s, webhook_id)
    except WebhookError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"webhook {webhook_id} has a new secret (shown only now):", err=True)
    click.echo(secret)


commands = [webhooks]
