"""`feedloop serve`: gunicorn with the app built in each worker (torch and FAISS do not survive fork well)."""
from __future__ import annotations

from gunicorn.app.base import BaseApplication


def _one_thread_per_worker(_server, _worker) -> None:
    # With several workers on few cores, BLAS/OpenMP thread pools fight each other and latency turns erratic.
    import faiss
    import torch

    faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)


class Server(BaseApplication):
    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        self.cfg.set("post_fork", _one_thread_per_worker)

    def load(self):
        from app import create_app

        return create_app(warm=True)


def run(host: str, port: int, workers: int, threads: int, timeout: int) -> None:
    Server(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread" if threads > 1 else "sync",
            "timeout": timeout,
            "graceful_timeout": 30,
            "accesslog": "-",
        }
    ).run()
