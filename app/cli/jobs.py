import sys

import click
from sqlmodel import Session, col, select

from app.cli import load_app


@click.group()
def jobs() -> None:
    """Scheduled jobs: what they are, how their recent runs went, and running one now."""


@jobs.command("list")
@click.option("--runs", default=5, show_default=True, type=click.IntRange(0, 1000), help="recent runs shown per job")
def list_(runs: int) -> None:
    from app.jobs import JOBS
    from app.models import JobRun

    app = load_app()
    settings = app.config["FEEDLOOP"]
    with Session(app.extensions["db_engine"]) as s:
        for name, (job, interval) in JOBS.items():
            click.echo(f"{name}\tevery {getattr(settings, interval)} s\t{job.__doc__.split('.')[0].strip()}")
            recent = s.exec(select(JobRun).where(JobRun.job == name).order_by(col(JobRun.id).desc()).limit(runs)).all()
            for run in recent:
                took = f"{(run.finished_at - run.started_at).total_seconds():.1f} s" if run.finished_at else "-"
                click.echo(f"  {run.started_at:%Y-%m-%d %H:%M:%S}\t{run.status}\t{took}\t{run.detail}")


@jobs.command("run")
@click.argument("name")
def run(name: str) -> None:
    """Run the job NAME now, once, and wait for it."""
    from app.jobs import JOBS
    from app.jobs.scheduler import run_job

    if name not in JOBS:
        raise click.ClickException(f"unknown job {name!r}; the jobs are: {', '.join(JOBS)}")
    result = run_job(load_app(), name)
    click.echo(f"{name}: {result.status}: {result.detail}")
    if result.status != "ok":
        sys.exit(1)


commands = [jobs]
