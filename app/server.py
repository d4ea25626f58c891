"""`feedloop serve`: gunicorn with the app built in each worker (database pools and FAISS are per process; the
encoder, loaded in the master before the fork and never run there, is shared),
and, in the embedded layout, the learner and the scheduler as sidecar processes that live and die with the
server, so that however many workers serve, exactly one process learns and one runs the jobs. The master
watches its sidecars and restarts one that dies, waiting longer after each quick death."""

from __future__ import annotations

import gc
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from flask import Flask
from gunicorn.app.base import BaseApplication

from app.services.background import Freshener

log = logging.getLogger("feedloop.server")
SIDECARS = {"learner": [sys.executable, "-m", "app", "learner"], "scheduler": [sys.executable, "-m", "app", "scheduler"]}
FIRST_BACKOFF, MAX_BACKOFF = 1.0, 60.0  # seconds before restarting a sidecar that died; doubled per quick death
STABLE_SECONDS = 60.0  # a sidecar that ran this long before dying is restarted after FIRST_BACKOFF again


class Sidecar:
    """One supervised process. `check` restarts it, after its back-off, once it has died; after `stop` it
    restarts nothing (the watcher thread may be mid-check while the master shuts down)."""

    def __init__(self, name: str, start: Callable[[], subprocess.Popen], clock: Callable[[], float] = time.monotonic):
        self.name, self._start, self._clock = name, start, clock
        self.restarts = 0
        self.backoff = FIRST_BACKOFF
        self._lock = threading.Lock()
        self._stopped = False
        self._died_at: float | None = None
        self.process = self._spawn()

    def _spawn(self) -> subprocess.Popen:
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
    def __init__(self, options: dict, sidecars: list[str]):
        self.options = options
        self.sidecars = sidecars
        self._running: list[Sidecar] = []
        self._stopping = threading.Event()
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        self.cfg.set("post_fork", _one_thread_per_worker)
        self.cfg.set("post_worker_init", _start_worker)
        self.cfg.set("pre_request", _before_request)
        self.cfg.set("post_request", _after_request)
        self.cfg.set("when_ready", self._start_sidecars)
        self.cfg.set("on_exit", self._stop_sidecars)

    def load(self):
        from app import create_app

        return create_app(warm=True)

    def _start_sidecars(self, server) -> None:
        for name in self.sidecars:
            sidecar = Sidecar(name, lambda argv=SIDECARS[name]: subprocess.Popen(argv))
            self._running.append(sidecar)
            server.log.info("%s sidecar started (pid %s)", name, sidecar.process.pid)
        if self._running:
            threading.Thread(target=self._watch, name="sidecars", daemon=True).start()

    def _watch(self) -> None:
        # gunicorn's master reaps every child, ours included; Popen.poll then reports the death with code 0.
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


def run(host: str, port: int, workers: int, threads: int, timeout: int, learner: bool, scheduler: bool) -> None:
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "timeout": timeout,
        "graceful_timeout": 30,
        "accesslog": "-",
    }
    Server(options, [name for name, wanted in (("learner", learner), ("scheduler", scheduler)) if wanted]).run()


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
