"""Serving side of the model: the learner's newest snapshot, swapped in between requests without a restart.

A request takes the model once (`current`) and uses that one object for candidates, Q-values, ranking and the
logged version; a newer snapshot replaces the store's reference, never the object a request holds.

In a serving worker, app.services.background.Freshener loads new snapshots between requests
(`load_in_requests` False). Elsewhere (tests, the CLI, one-off scripts) the call that notices a new snapshot loads
it, so that what was published is what the next call sees."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlmodel import Session

from app.models import ModelVersion
from app.settings import Settings
from bandit.exploration import exploration_from
from bandit.model import ServedModel
from bandit.policy import PolicyConfig
from bandit.snapshots import Snapshot, SnapshotError, file_stamp

log = logging.getLogger(__name__)
CHECK_SECONDS = 0.1  # how often a worker looks for a new snapshot (one stat call)


def policy_config(settings: Settings) -> PolicyConfig:
    return PolicyConfig(exploration=exploration_from(settings.exploration, settings.exploration_parameter))


def serving_config(settings: Settings) -> PolicyConfig:
    """The settings of the model serving now (what a retrain searches around); the configured ones before any."""
    try:
        return PolicyConfig.from_dict(Snapshot.from_bytes(settings.snapshot_path.read_bytes()).settings.get("policy"))
    except (FileNotFoundError, SnapshotError, ValueError):
        return policy_config(settings)


def load_snapshot(data: bytes, settings: Settings) -> ServedModel:
    return ServedModel.from_snapshot(Snapshot.from_bytes(data), settings.q_alpha)


class ModelStore:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self._model = ServedModel.fresh(policy_config(settings), settings.q_alpha)
        self._stamp: tuple[int, int] | None = None
        self._clock = clock
        self._checked = float("-inf")
        self._lock = threading.Lock()  # a VW workspace is not thread-safe
        self.load_in_requests = True

    def current(self) -> ServedModel:
        """The newest published model, looked for at most every CHECK_SECONDS unless something else loads it
        (`load_in_requests`). Call `decide` to use its policy."""
        if self.load_in_requests:
            now = self._clock()
            if now - self._checked >= CHECK_SECONDS:
                self._checked = now
                self.refresh()
        return self._model

    @contextmanager
    def decide(self) -> Iterator[None]:
        """Hold while calling a served model's policy: Vowpal Wabbit workspaces are not thread-safe."""
        with self._lock:
            yield

    def refresh(self) -> None:
        """Load the published snapshot if it changed; a damaged file is logged and skipped."""
        path = self.settings.snapshot_path
        stamp = file_stamp(path)
        if stamp is None or stamp == self._stamp:
            return
        try:
            model = load_snapshot(path.read_bytes(), self.settings)
        except (OSError, SnapshotError) as exc:
            log.warning("could not load model snapshot %s: %s", path, exc)
            return
        model.qvalues.prepare()
        self._model, self._stamp = model, stamp

    def deciding(self, version: str, session: Session) -> ServedModel:
        """The model that made a decision while it still serves or was kept as a version; else the one serving now."""
        model = self.current()
        if model.version == version:
            return model
        kept = session.get(ModelVersion, version)
        if kept is not None:
            try:
                return load_snapshot(kept.archive, self.settings)
            except SnapshotError as exc:
                log.warning("kept model %s does not load: %s", version, exc)
        return model


def current_version(settings: Settings) -> str | None:
    try:
        return Snapshot.from_bytes(settings.snapshot_path.read_bytes()).version
    except (FileNotFoundError, SnapshotError):
        return None
