"""Serving side of the model: the current snapshot, swapped in without a restart when the learner publishes."""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from sqlmodel import Session

from app.models import ModelVersion
from app.settings import Settings
from bandit.exploration import exploration_from
from bandit.policy import PolicyConfig, VWPolicy
from bandit.qvalues import QTable
from bandit.snapshots import Snapshot, file_stamp

log = logging.getLogger(__name__)
CHECK_SECONDS = 0.1  # how often a worker looks for a new snapshot (one stat call)
INITIAL_VERSION = "v0"


def policy_config(settings: Settings) -> PolicyConfig:
    return PolicyConfig(exploration=exploration_from(settings.exploration, settings.exploration_parameter))


class Model:
    """A loaded snapshot: policy, Q-values and version, used together for one decision."""

    def __init__(self, version: str, policy: VWPolicy, qvalues: QTable):
        self.version, self.policy, self.qvalues = version, policy, qvalues

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot, alpha: float, seed: int = 0) -> "Model":
        policy = VWPolicy(PolicyConfig.from_dict(snapshot.settings["policy"]), seed=seed, model=snapshot.model)
        return cls(snapshot.version, policy, QTable.from_rows(snapshot.qvalues, alpha))


class ModelStore:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._model = Model(INITIAL_VERSION, VWPolicy(policy_config(settings)), QTable(settings.q_alpha))
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()  # a VW workspace is not thread-safe

    def refresh(self) -> None:
        """Swap in the newest published snapshot, if any; a damaged file is logged and skipped."""
        now = time.monotonic()
        if now - self._checked < CHECK_SECONDS:
            return
        self._checked = now
        path = self.settings.snapshot_path
        stamp = file_stamp(path)
        if stamp is None or stamp == self._stamp:
            return
        try:
            model = Model.from_snapshot(Snapshot.from_bytes(path.read_bytes()), self.settings.q_alpha)
        except Exception as exc:
            log.warning("could not load model snapshot %s: %s", path, exc)
            return
        with self._lock:
            self._model, self._stamp = model, stamp

    @contextmanager
    def current(self) -> Iterator[Model]:
        self.refresh()
        with self._lock:
            yield self._model

    @contextmanager
    def deciding(self, version: str, session: Session) -> Iterator[Model]:
        """The model that made a decision while it still serves or was kept as a version; else the one serving now."""
        with self.current() as model:
            if model.version == version:
                yield model
                return
        kept = session.get(ModelVersion, version)
        if kept is not None:
            yield Model.from_snapshot(Snapshot.from_bytes(kept.archive), self.settings.q_alpha)
            return
        with self.current() as model:
            yield model


def current_version(settings: Settings) -> str | None:
    try:
        return Snapshot.from_bytes(settings.snapshot_path.read_bytes()).version
    except (FileNotFoundError, ValueError):
        return None
