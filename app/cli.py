"""The `feedloop` command for operators."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from pydantic import ValidationError
from sqlmodel import Session, select

from app.settings import ConfigError


def _app(warm: bool = False, migrated: bool = True):
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


@click.group()
def main() -> None:
    """feedloop: self-hosted human-in-the-loop recommendations."""


@main.command()
def init() -> None:
    """Create the database schema, or upgrade it to this version."""
    from app import db

    app = _app(migrated=False)
    db.upgrade(app.extensions["db_engine"])
    click.echo(f"database ready: {app.extensions['db_engine'].url.render_as_string(hide_password=True)}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes")
@click.option("--threads", default=1, show_default=True, type=int,
              help="threads per worker; above 1, workers also keep connections alive")
@click.option("--timeout", default=120, show_default=True, type=int, help="seconds before a stuck worker is restarted")
@click.option("--dev", is_flag=True, help="Flask's development server (debugger) instead of gunicorn")
@click.option("--no-learner", is_flag=True, help="serve only; a separate `feedloop learner` learns (scaled layout)")
@click.option("--no-scheduler", is_flag=True, help="no scheduled jobs here; a separate `feedloop scheduler` runs them")
def serve(host: str, port: int, workers: int, threads: int, timeout: int, dev: bool, no_learner: bool,
          no_scheduler: bool) -> None:
    """Serve the HTTP API. Unless told otherwise, sidecars learn from rewards as they arrive and run the
    scheduled jobs, so that one command is a whole feedloop."""
    _app()  # fail here, with a readable message, on bad configuration
    from app.serve import run, run_dev

    if dev:
        run_dev(_app(warm=True), host, port, learner=not no_learner, scheduler=not no_scheduler)
    else:
        run(host, port, workers, threads, timeout, learner=not no_learner, scheduler=not no_scheduler)


@main.command()
def learner() -> None:
    """Learn every reward in arrival order and publish model snapshots. Run exactly one per database."""
    import signal
    import threading

    from app.learner import Learner
    from app.locks import AlreadyRunning, single_instance

    app = _app()
    settings, engine = app.config["FEEDLOOP"], app.extensions["db_engine"]
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        with single_instance("learner", settings, engine):
            Learner(settings, engine).run(stop)
    except AlreadyRunning as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
def scheduler() -> None:
    """Run the scheduled jobs (`feedloop jobs list` shows them). Run exactly one per database."""
    import signal

    from apscheduler.schedulers.blocking import BlockingScheduler

    from app.locks import AlreadyRunning, single_instance
    from app.scheduler import schedule

    app = _app()
    try:
        with single_instance("scheduler", app.config["FEEDLOOP"], app.extensions["db_engine"]):
            jobs = schedule(app, BlockingScheduler(timezone="UTC"))
            for sig in (signal.SIGTERM, signal.SIGINT):  # a run in progress finishes before the process exits
                signal.signal(sig, lambda *_: jobs.shutdown(wait=True))
            jobs.start()
    except AlreadyRunning as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def jobs() -> None:
    """Scheduled jobs: what they are, how their recent runs went, and running one now."""


@jobs.command("list")
@click.option("--runs", default=5, show_default=True, type=click.IntRange(0, 1000), help="recent runs shown per job")
def jobs_list(runs: int) -> None:
    from app.jobs import JOBS
    from app.models import JobRun

    app = _app()
    settings = app.config["FEEDLOOP"]
    with Session(app.extensions["db_engine"]) as s:
        for name, (job, interval) in JOBS.items():
            click.echo(f"{name}\tevery {getattr(settings, interval)} s\t{job.__doc__.split('.')[0].strip()}")
            recent = s.exec(select(JobRun).where(JobRun.job == name).order_by(JobRun.id.desc()).limit(runs)).all()
            for run in recent:
                took = f"{(run.finished_at - run.started_at).total_seconds():.1f} s" if run.finished_at else "-"
                click.echo(f"  {run.started_at:%Y-%m-%d %H:%M:%S}\t{run.status}\t{took}\t{run.detail}")


@jobs.command("run")
@click.argument("name")
def jobs_run(name: str) -> None:
    """Run the job NAME now, once, and wait for it."""
    from app.jobs import JOBS
    from app.scheduler import run_job

    if name not in JOBS:
        raise click.ClickException(f"unknown job {name!r}; the jobs are: {', '.join(JOBS)}")
    run = run_job(_app(), name)
    click.echo(f"{name}: {run.status}: {run.detail}")
    if run.status != "ok":
        sys.exit(1)


@main.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--name", required=True, help="who or what the key is for")
def keys_create(name: str) -> None:
    """Create a key; it is printed once, on the last line, and only its hash is stored."""
    from app import db
    from app.auth import create_key

    app = _app()
    with app.app_context(), db.write_session() as s:
        row, key = create_key(s, name)
    click.echo(f"created key {row.id} ({name}); it is shown only now:", err=True)
    click.echo(key)


@keys.command("list")
def keys_list() -> None:
    from app.auth import last_used
    from app.models import ApiKey

    app = _app()
    with Session(app.extensions["db_engine"]) as s:
        for row in s.exec(select(ApiKey).order_by(ApiKey.id)).all():
            state = "revoked" if row.revoked_at else "active"
            click.echo(f"{row.id}\t{row.prefix}…\t{state}\tlast used {last_used(row)}\t{row.name}")


@keys.command("revoke")
@click.argument("key_id", type=int)
def keys_revoke(key_id: int) -> None:
    from app import db
    from app.auth import revoke_key

    app = _app()
    with app.app_context(), db.write_session() as s:
        if revoke_key(s, key_id) is None:
            raise click.ClickException(f"no key with id {key_id}")
    click.echo(f"key {key_id} revoked")


@main.group()
def items() -> None:
    """The item catalogue."""


@items.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), help="default: from the file name")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--skip-invalid", is_flag=True, help="import the valid rows even when some are invalid")
def items_import(file: Path, fmt: str | None, batch_size: int, skip_invalid: bool) -> None:
    """Import items from JSON Lines or CSV (id, title, description, category, tags as a|b, other columns as attributes).

    Every row is checked first; with an invalid row nothing is imported unless --skip-invalid.
    """
    from app.api.schemas import ItemIn
    from app.catalogue import upsert_items
    from app.errors import validation_details
    from app.item_files import RowProblem, detect_format, read_rows

    valid: dict[str, ItemIn] = {}
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
        valid[item.id] = item
    for problem in problems[:50]:
        click.echo(problem, err=True)
    if len(problems) > 50:
        click.echo(f"... and {len(problems) - 50} more problems", err=True)
    if problems and not skip_invalid:
        raise click.ClickException(f"{file}: {len(problems)} problems; nothing was imported (fix them or pass --skip-invalid)")

    app = _app()
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
    click.echo(f"imported {len(rows)} items from {file} in {elapsed:.1f}s{skipped}; the catalogue holds {len(catalogue.index)} items")


@items.command("reindex")
def items_reindex() -> None:
    """Encode items that lack a vector from the current model and rebuild the saved index."""
    app = _app()
    catalogue = app.extensions["catalogue"]
    encoded = catalogue.encode_missing()
    catalogue.settings.index_path.unlink(missing_ok=True)
    catalogue.warm_up()
    click.echo(f"encoded {encoded} items; index holds {len(catalogue.index)} items ({catalogue.index.kind})")


@main.group()
def models() -> None:
    """Model versions: list, roll back, export and import."""


@models.command("list")
def models_list() -> None:
    from app.model_store import current_version
    from app.models import ModelVersion

    app = _app()
    current = current_version(app.config["FEEDLOOP"])
    with Session(app.extensions["db_engine"]) as s:
        rows = s.exec(select(ModelVersion).order_by(ModelVersion.created_at)).all()
    if not rows:
        click.echo("no kept model versions yet")
    for row in rows:
        mark = "*" if row.version == current else " "
        click.echo(f"{mark} {row.version}\t{row.created_at:%Y-%m-%d %H:%M:%S}\t{row.source}\t{row.rewards_learned} rewards learned")
    click.echo(f"serving: {current or 'the initial, untrained model'}")


@models.command("rollback")
@click.argument("version")
def models_rollback(version: str) -> None:
    """Serve VERSION again; the learner continues learning from it."""
    from app.models import ModelVersion
    from bandit.snapshots import write_atomic

    app = _app()
    with Session(app.extensions["db_engine"]) as s:
        row = s.get(ModelVersion, version)
    if row is None:
        raise click.ClickException(f"no model version {version!r} (see: feedloop models list)")
    write_atomic(app.config["FEEDLOOP"].snapshot_path, row.archive)
    click.echo(f"serving {version}; workers pick it up within a second")


@models.command("export")
@click.argument("version")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def models_export(version: str, file: Path) -> None:
    """Write VERSION (or `current`) as a checksummed archive: VW model, Q-values, feature settings."""
    from app.models import ModelVersion

    app = _app()
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
def models_import(file: Path) -> None:
    """Keep the archive FILE as a model version (checksums verified); serve it with `models rollback`."""
    import hashlib

    from app import db
    from app.models import ModelVersion
    from bandit.snapshots import Snapshot, SnapshotError

    data = file.read_bytes()
    try:
        snapshot = Snapshot.from_bytes(data)
    except SnapshotError as exc:
        raise click.ClickException(f"{file}: {exc}") from None
    version = f"import-{hashlib.sha256(data).hexdigest()[:10]}"
    app = _app()
    with app.app_context(), db.write_session() as s:
        if s.get(ModelVersion, version) is None:
            s.add(ModelVersion(version=version, archive=data, source="import",
                               rewards_learned=int(snapshot.meta.get("rewards_learned", 0))))
    click.echo(f"imported {snapshot.version} from {file} as {version}; serve it with: feedloop models rollback {version}")


@main.command()
@click.option("--rounds", default=20_000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--users", default=200, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--items", default=1000, show_default=True, type=click.IntRange(10, 100_000))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="write the CTR curves to this PNG")
def simulate(rounds: int, users: int, items: int, seed: int, plot: Path | None) -> None:
    """Watch the loop learn: synthetic users with hidden tastes drive a throwaway feedloop through its API,
    compared with uniform random, popularity and the oracle. Touches nothing of FEEDLOOP_HOME."""
    import tempfile

    from app.simulation import plot as draw
    from app.simulation import run_simulation

    with tempfile.TemporaryDirectory(prefix="feedloop-sim-") as home:
        with click.progressbar(length=rounds, label="simulating", file=sys.stderr) as bar:
            result = run_simulation(Path(home), rounds, users, items, seed, progress=bar.update)
    click.echo(f"click-through rate per {rounds // len(result.curves['feedloop'])} rounds:")
    for name, curve in result.curves.items():
        click.echo(f"  {name:<11}" + " ".join(f"{c:.2f}" for c in curve))
    click.echo("last quarter: " + ", ".join(f"{name} {ctr:.3f}" for name, ctr in result.last_quarter.items()))
    click.echo(f"feedloop closes {result.gap_closed:.0%} of the gap between uniform random and the oracle")
    if plot:
        draw(result, plot)
        click.echo(f"plot: {plot}")
