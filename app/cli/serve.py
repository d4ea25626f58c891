import ipaddress
import signal
import threading

import click
from flask import Flask

from app.cli import load_app


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes")
@click.option(
    "--threads", default=1, show_default=True, type=int, help="threads per worker; above 1, workers also keep connections alive"
)
@click.option("--timeout", default=120, show_default=True, type=int, help="seconds before a stuck worker is restarted")
@click.option("--dev", is_flag=True, help="Flask's development server (debugger) instead of gunicorn; loopback only")
@click.option("--no-learner", is_flag=True, help="serve only; a separate `feedloop learner` learns (scaled layout)")
@click.option("--no-scheduler", is_flag=True, help="no scheduled jobs here; a separate `feedloop scheduler` runs them")
def serve(
    host: str, port: int, workers: int, threads: int, timeout: int, dev: bool, no_learner: bool, no_scheduler: bool
) -> None:
    """Serve the HTTP API. Unless told otherwise, sidecars learn from rewards as they arrive and run the
    scheduled jobs, so that one command is a whole feedloop; a sidecar that dies is restarted."""
    if dev and not _loopback(host):
        raise click.ClickException(
            f"--dev runs Flask's debugger, which executes code for whoever reaches it: it "
            f"listens on a loopback address only, not {host!r}"
        )
    app = load_app()  # fail here, with a readable message, on bad configuration
    from app.server import run, run_dev

    if dev:
        run_dev(load_app(warm=True), host, port, learner=not no_learner, scheduler=not no_scheduler)
    else:
        run(app, host, port, workers, threads, timeout, learner=not no_learner, scheduler=not no_scheduler)


@click.command()
def learner() -> None:
    """Learn every reward in arrival order and publish model snapshots. Run exactly one per database."""
    run_learner()


@click.command()
def scheduler() -> None:
    """Run the scheduled jobs (`feedloop jobs list` shows them). Run exactly one per database."""
    run_scheduler()


def run_learner(app: Flask | None = None) -> None:
    """Until SIGTERM or SIGINT. `feedloop serve`'s learner sidecar passes the app it was forked with."""
    from app.db import AlreadyRunning, single_instance
    from app.services.learner import Learner

    app = app or load_app()
    settings, engine = app.config["FEEDLOOP"], app.extensions["db_engine"]
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        with single_instance("learner", settings.home, engine):
            Learner(settings, engine).run(stop)
    except AlreadyRunning as exc:
        raise click.ClickException(str(exc)) from None


def run_scheduler(app: Flask | None = None) -> None:
    """Until SIGTERM or SIGINT. `feedloop serve`'s scheduler sidecar passes the app it was forked with, whose
    warmed catalogue the jobs then share with the workers instead of loading their own."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    from app.db import AlreadyRunning, single_instance
    from app.jobs.scheduler import schedule

    app = app or load_app()
    try:
        with single_instance("scheduler", app.config["FEEDLOOP"].home, app.extensions["db_engine"]):
            jobs = schedule(app, BlockingScheduler(timezone="UTC"))
            for sig in (signal.SIGTERM, signal.SIGINT):  # a run in progress finishes before the process exits
                signal.signal(sig, lambda *_: jobs.shutdown(wait=True))
            jobs.start()
    except AlreadyRunning as exc:
        raise click.ClickException(str(exc)) from None


commands = [serve, learner, scheduler]
