from datetime import datetime

import click
from sqlmodel import Session, select

from app.cli import load_app


@click.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--name", required=True, help="who or what the key is for")
def create(name: str) -> None:
    """Create a key; it is printed once, on the last line, and only its hash is stored."""
    from app import db
    from app.services.keys import create_key

    app = load_app()
    with app.app_context(), db.write_session() as s:
        row, key = create_key(s, name)
    click.echo(f"created key {row.id} ({name}); it is shown only now:", err=True)
    click.echo(key)


@keys.command("list")
def list_() -> None:
    from app.models import ApiKey

    app = load_app()
    with Session(app.extensions["db_engine"]) as s:
        for row in s.exec(select(ApiKey).order_by(ApiKey.id)).all():
            state = "revoked" if row.revoked_at else "active"
            used = row.last_used_at.isoformat(timespec="seconds") if isinstance(row.last_used_at, datetime) else "never"
            click.echo(f"{row.id}\t{row.prefix}…\t{state}\tlast used {used}\t{row.name}")


@keys.command("revoke")
@click.argument("key_id", type=int)
def revoke(key_id: int) -> None:
    from app import db
    from app.services.keys import revoke_key

    app = load_app()
    with app.app_context(), db.write_session() as s:
        if revoke_key(s, key_id) is None:
            raise click.ClickException(f"no key with id {key_id}")
    click.echo(f"key {key_id} revoked")


commands = [keys]
