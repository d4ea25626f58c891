import hashlib
import time
from pathlib import Path

import click
from sqlmodel import Session, col, select

from app.cli import load_app


@click.group()
def models() -> None:
    """Model versions: list, roll back, export and import."""


@models.command("list")
def list_() -> None:
    from app.models import ModelVersion
    from app.services.model_store import current_version

    app = load_app()
    current = current_version(app.config["FEEDLOOP"])
    with Session(app.extensions["db_engine"]) as s:
        rows = s.exec(select(ModelVersion).order_by(col(ModelVersion.created_at))).all()
    if not rows:
        click.echo("no kept model versions yet")
    for row in rows:
        mark = "*" if row.version == current else " "
        on_top = f"\ton top of {row.parent_version}" if row.parent_version else ""
        click.echo(
            f"{mark} {row.version}\t{row.created_at:%Y-%m-%d %H:%M:%S}\t{row.source}\t{row.rewards_learned} rewards learned"
            f"{on_top}"
        )
    click.echo(f"serving: {current or 'the initial, untrained model'}")


WAIT = click.option(
    "--wait",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0, 3600),
    help="seconds to wait for the learner to carry it out (0: only record the request)",
)


@models.command("rollback")
@click.argument("version")
@WAIT
def rollback(version: str, wait: float) -> None:
    """Serve VERSION again; the learner, which alone writes the served model, carries it out and keeps learning
    from it. Reports what the learner did."""
    _ask_learner("rollback", version, wait)


@models.command("promote")
@click.argument("version")
@WAIT
def promote(version: str, wait: float) -> None:
    """Serve the retrained candidate VERSION (see `feedloop models list`, and its card on the models page) whatever
    its retrain decided; the learner relearns on top of it every reward after its last one."""
    _ask_learner("promote", version, wait)


def _ask_learner(action: str, version: str, wait: float) -> None:
    from app import db
    from app.models import ModelRequest
    from app.services import releases

    app = load_app()
    engine = app.extensions["db_engine"]
    try:
        with db.write_session(engine) as s:
            request_id = releases.operator_request(s, "cli", action, version, f"operator: feedloop models {action} {version}")
    except LookupError as exc:
        raise click.ClickException(f"{exc} (see: feedloop models list)") from None
    except releases.NotACandidate as exc:
        raise click.ClickException(str(exc)) from None
    if wait == 0:
        click.echo(f"{action} to {version} requested (request {request_id}); the learner carries it out")
        return
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        with Session(engine) as s:
            request = s.get(ModelRequest, request_id)
        if request.status == "done":
            click.echo(f"the learner is {request.detail}")
            return
        if request.status == "failed":
            raise click.ClickException(f"the learner could not {action} {version}: {request.detail}")
        time.sleep(0.2)
    raise click.ClickException(
        f"{action} to {version} is recorded (request {request_id}), but no learner carried it out "
        f"within {wait:g} s; it will when the learner runs (feedloop learner, or feedloop serve)"
    )


@models.command("shadow")
@click.argument("version", required=False)
@click.option("--off", is_flag=True, help="end shadow mode")
def shadow(version: str | None, off: bool) -> None:
    """Let the kept VERSION score live traffic in shadow (logged, not served; the `shadow-score` job), or end it."""
    from app.services import shadow as shadows
    from bandit.snapshots import SnapshotError

    app = load_app()
    settings = app.config["FEEDLOOP"]
    if off == (version is not None):
        raise click.UsageError("give a VERSION, or --off")
    if off:
        click.echo("shadow mode ended" if shadows.stop(settings) else "no model was in shadow")
        return
    with Session(app.extensions["db_engine"]) as s:
        try:
            shadows.start(s, settings, version)
        except (LookupError, SnapshotError) as exc:
            raise click.ClickException(f"{exc} (see: feedloop models list)") from None
    click.echo(f"{version} scores live traffic in shadow from now on (the shadow-score job); end it with --off")


@models.command("export")
@click.argument("version")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def export(version: str, file: Path) -> None:
    """Write VERSION (or `current`) as a checksummed archive: VW model, Q-values, feature settings."""
    from app.models import ModelVersion

    app = load_app()
    if version == "current":
        path = app.config["FEEDLOOP"].snapshot_path
        if not path.exists():
            raise click.ClickException("no model has been published yet")
        data = path.read_bytes()
    else:
        with Session(app.extensions["db_engine"]) as s:
            row = s.get(ModelVersion, version)
        if row is None:
            raise click.ClickException(f"no model version {version!r} (see: feedloop models list)")
        data = row.archive
    file.write_bytes(data)
    click.echo(f"wrote {file} ({len(data)} bytes)")


@models.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_(file: Path) -> None:
    """Keep the archive FILE as a model version, once its checksums, its settings (against an allow-list) and its
    model are checked; serve it with `models rollback`."""
    from app import db
    from app.models import ModelVersion
    from app.services.model_store import load_snapshot
    from bandit.snapshots import SnapshotError

    app = load_app()
    data = file.read_bytes()
    try:
        model = load_snapshot(data, app.config["FEEDLOOP"])
    except SnapshotError as exc:
        raise click.ClickException(f"{file}: {exc}; nothing was imported") from None
    version = f"import-{hashlib.sha256(data).hexdigest()[:10]}"
    with db.write_session(app.extensions["db_engine"]) as s:
        if s.get(ModelVersion, version) is None:
            s.add(ModelVersion(version=version, archive=data, source="import"))
    click.echo(f"imported {model.version} from {file} as {version}; serve it with: feedloop models rollback {version}")


commands = [models]
