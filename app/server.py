"""`feedloop serve`: gunicorn with the app built and warmed in the master and shared by the workers it forks
(each opens its own database connections), and, in the embedded layout, the learner and the scheduler as sidecar
processes, also forked from the master, that live and die with the server, so that however many workers serve,
exactly one process learns and one runs the jobs. The master watches its sidecars and restarts one that dies,
waiting longer after each quick death. `ps` names them: gunicorn's master and workers, feedloop learner and
feedloop scheduler."""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import NoReturn

import click
from flask import Flask
from gunicorn.app.base import BaseApplication
from setproctitle import setproctitle

from app.services.background import Freshener

log = logging.getLogger("feedloop.server")
# gunicorn's master handles these; a forked sidecar takes the defaults back
SIDECAR_SIGNALS = (
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
    signal.SIGCHLD,
)
FIRST_BACKOFF, MAX_BACKOFF = 1.0, 60.0  # seconds before restarting a sidecar that died; doubled per quick death
STABLE_SECONDS = 60.0  # a sidecar that ran this long before dying is restarted after FIRST_BACKOFF again


class Forked:
    """A sidecar forked from the master, so that it shares the pages the master loaded (Python, the libraries,
    the encoder) instead of loading its own: `poll`, `wait`, `terminate` and `kill` as subprocess.Popen has them.

    In the child, the master's listening sockets are closed and gunicorn's signal handlers undone before `main`
    runs; the process then exits with main's status, without running the master's exit handlers."""

    def __init__(self, name: str, main: Callable[[], None], listeners: list):
        self.name, self.returncode = name, None
        self.pid = os.fork()
        if self.pid == 0:
            _run_sidecar(name, main, listeners)

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # gunicorn's master reaps every child, ours included: it has ended
                self.returncode = 0
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"{self.name} sidecar", timeout)
            time.sleep(0.05)
        return self.returncode

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)


def _run_sidecar(name: str, main: Callable[[], None], listeners: list) -> NoReturn:
    code = 1
    try:
        for listener in listeners:
            listener.close()
        for sig in SIDECAR_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        setproctitle(f"feedloop {name}")
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class Sidecar:
    """One supervised process. `check` restarts it, after its back-off, once it has died; after `stop` it
    restarts nothing (the watcher thread may be mid-check while the master shuts down)."""

    def __init__(self, name: str, start: Callable[[], Forked], clock: Callable[[], float] = time.monotonic):
        self.name, self._start, self._clock = name, start, clock
        self.restarts = 0
        self.backoff = FIRST_BACKOFF
        self._lock = threading.Lock()
        self._stopped = False
        self._died_at: float | None = None
        self.process = self._spawn()

    def _spawn(self) -> Forked:
        self._started_at = self._clock()
        return self._start()

    def check(self) -> None:
        with self._lock:
            if self._stopped:
                return
            now = self._clock()
            if self._died_at is None:
                code = self.process.poll()
                if code is None:
                    return
                ran = now - self._started_at
                if ran >= STABLE_SECONDS:
                    self.backoff = FIRST_BACKOFF
                elif self.restarts:
                    self.backoff = min(self.backoff * 2, MAX_BACKOFF)
                self._died_at = now
                log.error(
                    "%s sidecar (pid %s) exited with %s after %.0f s; restarting it in %.0f s",
                    self.name,
                    self.process.pid,
                    code,
                    ran,
                    self.backoff,
                )
            if now - self._died_at >= self.backoff:
                try:
                    self.process = self._spawn()
                except Exception as exc:  # out of processes or memory, say: try again after a longer wait
                    self._died_at = now
                    self.backoff = min(self.backoff * 2, MAX_BACKOFF)
                    log.error("%s sidecar could not be started (%s); retrying in %.0f s", self.name, exc, self.backoff)
                    return
                self.restarts += 1
                self._died_at = None
                log.warning("%s sidecar restarted (pid %s, restart %d)", self.name, self.process.pid, self.restarts)

    def stop(self, timeout: float = 30) -> None:
        with self._lock:
            self._stopped = True
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)


def _one_thread_per_worker(_server, _worker) -> None:
    # With several workers on few cores, BLAS/OpenMP thread pools fight each other and latency turns erratic.
    import faiss
    import torch

    faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)


def _start_worker(worker) -> None:
    # The master's connections were closed before the fork; the pool's bookkeeping is the master's, not ours.
    worker.wsgi.extensions["db_engine"].dispose(close=False)
    worker.freshener = freshener(worker.wsgi)
    worker.freshener.start(threading.Event())
    # The app is loaded: torch, transformers and the catalogue make millions of objects that live as long as
    # the worker. Exempt from the collector's full scans, they stop costing every request a tenth of its
    # time (docs/benchmarks.md).
    gc.freeze()


def freshener(app: Flask) -> Freshener:
    activity = app.extensions["recommender"].item_activity if app.config["FEEDLOOP"].activity_features else None
    return Freshener(app.extensions["models"], activity)


def _before_request(worker, _req) -> None:
    worker.freshener.before_request()


def _after_request(worker, _req, _environ, _resp) -> None:
    # gunicorn calls this once the answer is sent: the next request, not this one, waits for what it loads.
    worker.freshener.after_request()


class Server(BaseApplication):
    """The app is built and warmed in the master (preload_app), so the workers share its pages: the encoder,
    the index and the catalogue's item cache (docs/benchmarks.md, memory)."""

    def __init__(self, app: Flask, options: dict, sidecars: list[str]):
        self.app, self.options, self.sidecars = app, options, sidecars
        self._running: list[Sidecar] = []
        self._stopping = threading.Event()
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        self.cfg.set("preload_app", True)
        self.cfg.set("proc_name", "feedloop")
        self.cfg.set("post_fork", _one_thread_per_worker)
        self.cfg.set("post_worker_init", _start_worker)
        self.cfg.set("pre_request", _before_request)
        self.cfg.set("post_request", _after_request)
        self.cfg.set("when_ready", self._start_sidecars)
        self.cfg.set("on_exit", self._stop_sidecars)

    def load(self):
        self.app.extensions["catalogue"].warm_up()
        self.app.extensions["db_engine"].dispose()  # no connection is shared with the workers
        return self.app

    def _start_sidecars(self, server) -> None:
        for name in self.sidecars:
            sidecar = Sidecar(name, lambda name=name: Forked(name, functools.partial(self._sidecar_main, name), server.LISTENERS))
            self._running.append(sidecar)
            server.log.info("%s sidecar started (pid %s)", name, sidecar.process.pid)
        if self._running:
            threading.Thread(target=self._watch, name="sidecars", daemon=True).start()

    def _sidecar_main(self, name: str) -> None:
        """In the forked sidecar: the master's app, warmed catalogue and encoder included, with a pool of its own."""
        from app.cli.serve import run_learner, run_scheduler

        self.app.extensions["db_engine"].dispose(close=False)
        {"learner": run_learner, "scheduler": run_scheduler}[name](self.app)

    def _watch(self) -> None:
        # gunicorn's master reaps every child, ours included; Forked.poll then reports the death with code 0.
        while not self._stopping.wait(0.5):
            for sidecar in self._running:
                try:
                    sidecar.check()
                except Exception:  # one failure must not end the supervision of every sidecar
                    log.exception("checking the %s sidecar failed", sidecar.name)

    def _stop_sidecars(self, _server) -> None:
        self._stopping.set()
        for sidecar in self._running:
            sidecar.stop()


def run(app: Flask, host: str, port: int, workers: int, threads: int, timeout: int, learner: bool, scheduler: bool) -> None:
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "timeout": timeout,
        "graceful_timeout": 30,
        "accesslog": "-",
    }
    Server(app, options, [name for name, wanted in (("learner", learner), ("scheduler", scheduler)) if wanted]).run()


def run_dev(app: Flask, host: str, port: int, learner: bool, scheduler: bool) -> None:
    """Flask's server in one process: the learner and the scheduler run as threads beside it."""
    if learner:
        from app.services.learner import Learner

        stop = threading.Event()
        worker = Learner(app.config["FEEDLOOP"], app.extensions["db_engine"])
        threading.Thread(target=worker.run, args=(stop,), daemon=True, name="learner").start()
    if scheduler:
        from apscheduler.schedulers.background import BackgroundScheduler

        from app.jobs.scheduler import schedule

        schedule(app, BackgroundScheduler(timezone="UTC", daemon=True)).start()
    app.run(host=host, port=port, debug=True, use_reloader=False, threaded=True)
