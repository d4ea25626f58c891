"""What a serving worker loads beside its requests: new model snapshots and the items' activity counts.

A load holds the interpreter lock for most of its 10-30 ms (Vowpal Wabbit builds a workspace, the Q-values are
decoded), so a thread that loads while a request runs stalls that request (docs/benchmarks.md, hot path). The
worker loads between requests instead (`after_request`, called once the answer is sent), and its thread loads
only when the worker has been idle for IDLE_SECONDS: a busy worker freshens between requests, an idle one
in the background, and a request rarely meets a load."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from app.services.activity_features import ItemActivity
from app.services.model_store import CHECK_SECONDS, ModelStore

log = logging.getLogger(__name__)
IDLE_SECONDS = 0.5


class Freshener:
    def __init__(self, models: ModelStore, activity: ItemActivity | None, clock: Callable[[], float] = time.monotonic):
        self.models, self.activity, self._clock = models, activity, clock
        self._busy = 0  # requests in progress
        self._last_request = clock()
        self._lock = threading.Lock()  # one load at a time
        self._count_lock = threading.Lock()

    def start(self, stop: threading.Event) -> threading.Thread:
        """Take loading out of requests: first load now, then between requests and in an idle worker's thread."""
        self.models.load_in_requests = False
        if self.activity is not None:
            self.activity.load_in_requests = False
        self.freshen()
        thread = threading.Thread(target=self._idle_loop, args=(stop,), name="freshener", daemon=True)
        thread.start()
        return thread

    def before_request(self) -> None:
        with self._count_lock:
            self._busy += 1

    def after_request(self) -> None:
        with self._count_lock:
            self._busy -= 1
            self._last_request = self._clock()
        self.freshen()

    def freshen(self) -> None:
        """Load what changed; a failure is logged and the next call tries again."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            self.models.refresh()
            if self.activity is not None and self.activity.due():
                self.activity.refresh()
        except Exception:
            log.exception("loading the newest model or item activity failed; serving what was loaded")
        finally:
            self._lock.release()

    def _idle_loop(self, stop: threading.Event) -> None:
        while not stop.wait(CHECK_SECONDS):
            if self._busy == 0 and self._clock() - self._last_request >= IDLE_SECONDS:
                self.freshen()
