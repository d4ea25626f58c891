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
        click.echo(
            f"{mark} {row.version}\t{row.created_at:%Y-%m-%d %H:%M:%S}\t{row.source}\t{row.rewards_learned} rewards learned"
        )
    click.echo(f"serving: {current or 'the initial, untrained model'}")


@models.command("rollback")
@click.argument("version")
@click.option(
    "--wait",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0, 3600),
    help="seconds to wait for the learner to carry it out (0: only record the request)",
)
def rollback(version: str, wait: float) -> None:
    """Serve VERSION again; the learner, which alone writes the served model, carries it out and keeps learning
    from it. Reports what the learner did."""
    from app import db
    from app.models import ModelRequest, ModelVersion

    app = load_app()
    engine = app.extensions["db_engine"]
    with db.write_session(engine) as s:
        if s.get(ModelVersion, version) is None:
            raise click.ClickException(f"no model version {version!r} (see: feedloop models list)")
        request = ModelRequest(action="rollback", version=version)
        s.add(request)
        s.flush()
        request_id = request.id
    if wait == 0:
        click.echo(f"rollback to {version} requested (request {request_id}); the learner carries it out")
        return
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        with Session(engine) as s:
            request = s.get(ModelRequest, request_id)
        if request.status == "done":
            click.echo(f"the learner is {request.detail}")
            return
        if request.status == "failed":
            raise click.ClickException(f"the learner could not roll back to {version}: {request.detail}")
        time.sleep(0.2)
    raise click.ClickException(
        f"rollback to {version} is recorded (request {request_id}), but no learner carried it out "
        f"within {wait:g} s; it will when the learner runs (feedloop learner, or feedloop serve)"
    )


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
