"""`feedloop serve`: gunicorn with the app built in each worker (torch and FAISS do not survive fork well),
and, in the embedded layout, the learner and the scheduler as sidecar processes that live and die with
the server, so that however many workers serve, exactly one process learns and one runs the jobs."""
from __future__ import annotations

import gc
import subprocess
import sys
import threading

from flask import Flask
from gunicorn.app.base import BaseApplication

SIDECARS = {"learner": [sys.executable, "-m", "app", "learner"],
            "scheduler": [sys.executable, "-m", "app", "scheduler"]}


def _one_thread_per_worker(_server, _worker) -> None:
    # With several workers on few cores, BLAS/OpenMP thread pools fight each other and latency turns erratic.
    import faiss
    import torch

    faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)


def _freeze_startup_heap(_worker) -> None:
    # The app is loaded: torch, transformers and the catalogue make millions of objects that live as long as
    # the worker. Exempt from the collector's full scans, they stop costing every request a tenth of its
    # time (docs/benchmarks.md).
    gc.freeze()


class Server(BaseApplication):
    def __init__(self, options: dict, sidecars: list[str]):
        self.options = options
        self.sidecars = sidecars
        self._running: dict[str, subprocess.Popen] = {}
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        self.cfg.set("post_fork", _one_thread_per_worker)
        self.cfg.set("post_worker_init", _freeze_startup_heap)
        self.cfg.set("when_ready", self._start_sidecars)
        self.cfg.set("on_exit", self._stop_sidecars)

    def load(self):
        from app import create_app

        return create_app(warm=True)

    def _start_sidecars(self, server) -> None:
        for name in self.sidecars:
            self._running[name] = subprocess.Popen(SIDECARS[name])
            server.log.info("%s sidecar started (pid %s)", name, self._running[name].pid)

    def _stop_sidecars(self, _server) -> None:
        for process in self._running.values():
            process.terminate()
        for process in self._running.values():
            process.wait(timeout=30)


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
        from app.learner import Learner

        stop = threading.Event()
        worker = Learner(app.config["FEEDLOOP"], app.extensions["db_engine"])
        threading.Thread(target=worker.run, args=(stop,), daemon=True, name="learner").start()
    if scheduler:
        from apscheduler.schedulers.background import BackgroundScheduler

        from app.scheduler import schedule

        schedule(app, BackgroundScheduler(timezone="UTC", daemon=True)).start()
    app.run(host=host, port=port, debug=True, use_reloader=False, threaded=True)
