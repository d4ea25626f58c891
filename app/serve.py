"""`feedloop serve`: gunicorn with the app built in each worker (torch and FAISS do not survive fork well),
and, in the embedded layout, the learner as a sidecar process that lives and dies with the server."""
from __future__ import annotations

import subprocess
import sys
import threading

from flask import Flask
from gunicorn.app.base import BaseApplication

LEARNER_COMMAND = [sys.executable, "-m", "app", "learner"]


def _one_thread_per_worker(_server, _worker) -> None:
    # With several workers on few cores, BLAS/OpenMP thread pools fight each other and latency turns erratic.
    import faiss
    import torch

    faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)


class Server(BaseApplication):
    def __init__(self, options: dict, learner: bool):
        self.options = options
        self.learner = learner
        self._sidecar: subprocess.Popen | None = None
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        self.cfg.set("post_fork", _one_thread_per_worker)
        if self.learner:
            self.cfg.set("when_ready", self._start_learner)
            self.cfg.set("on_exit", self._stop_learner)

    def load(self):
        from app import create_app

        return create_app(warm=True)

    def _start_learner(self, server) -> None:
        self._sidecar = subprocess.Popen(LEARNER_COMMAND)
        server.log.info("learner sidecar started (pid %s)", self._sidecar.pid)

    def _stop_learner(self, _server) -> None:
        if self._sidecar is not None:
            self._sidecar.terminate()
            self._sidecar.wait(timeout=30)


def run(host: str, port: int, workers: int, threads: int, timeout: int, learner: bool) -> None:
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "timeout": timeout,
        "graceful_timeout": 30,
        "accesslog": "-",
    }
    Server(options, learner).run()


def run_dev(app: Flask, host: str, port: int, learner: bool) -> None:
    if learner:
        from app.learner import Learner

        stop = threading.Event()
        worker = Learner(app.config["FEEDLOOP"], app.extensions["db_engine"])
        threading.Thread(target=worker.run, args=(stop,), daemon=True, name="learner").start()
    app.run(host=host, port=port, debug=True, use_reloader=False, threaded=True)
