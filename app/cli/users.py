import click
from sqlmodel import Session, col, select

from app.cli import load_app


@click.group()
def users() -> None:
    """People who sign in to the pages: admins and reviewers."""


@users.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(["reviewer", "admin"]), required=True)
@click.option("--generate", is_flag=True, help="generate a password and print it once, instead of asking for one")
def create(email: str, role: str, generate: bool) -> None:
    """Create an account; the password is asked for (twice) unless --generate."""
    from app import db
    from app.services.users import AccountError, create_user, generated_password

    app = load_app()
    password = generated_password() if generate else click.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        with db.write_session(app.extensions["db_engine"]) as s:
            user = create_user(s, email, role, password)
            created = (user.id, user.email)
    except AccountError as exc:
        raise click.ClickException(f"{exc}; no account was created") from None
    click.echo(f"created {role} {created[1]} (account {created[0]})")
    if generate:
        click.echo("password (shown only now):", err=True)
        click.echo(password)


@users.command("list")
def list_() -> None:
    from app.models import User

    app = load_app()
    with Session(app.extensions["db_engine"]) as s:
        for user in s.exec(select(User).order_by(col(User.id))).all():
            state = "disabled" if user.disabled_at else "active"
            seen = f"{user.last_login_at:%Y-%m-%d %H:%M}" if user.last_login_at else "never"
            click.echo(f"{user.id}\t{user.email}\t{user.role}\t{state}\tlast sign-in {seen}")


@users.command("set-password")
@click.argument("email")
def set_password_(email: str) -> None:
    """Give an account a new password (asked for twice)."""
    from app import db
    from app.services.users import AccountError, set_password

    app = load_app()
    password = click.prompt("new password", hide_input=True, confirmation_prompt=True)
    try:
        with db.write_session(app.extensions["db_engine"]) as s:
            set_password(s, email, password)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"password of {email.strip().lower()} changed")


@users.command("disable")
@click.argument("email")
def disable(email: str) -> None:
    """Stop an account from signing in; its decisions are kept."""
    from app import db
    from app.services.users import AccountError, disable_user

    app = load_app()
    try:
        with db.write_session(app.extensions["db_engine"]) as s:
            disable_user(s, email)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{email.strip().lower()} can no longer sign in")


commands = [users]
