"""The single learner: it learns every reward in arrival order, settles events whose reward wait
has passed (default reward), and publishes snapshots that serving workers pick up.

Exactly one learner runs per database: `feedloop learner`, or the sidecar `feedloop serve`
starts. It resumes from the last reward id recorded in its newest snapshot, so a restart
neither skips nor repeats a reward.
"""
from __future__ import annotations

import gc
import logging
import threading
import time
from datetime import datetime, timedelta

from sqlalchemy import Engine, bindparam, insert, text, update
from sqlmodel import Session, col, select

from app.db import upsert, write_session
from app.model_store import Model, policy_config
from app.models import Event, ModelVersion, QValue, Reward, utcnow
from app.settings import Settings
from bandit.features import LoggedCandidates, Shared
from bandit.policy import VWPolicy
from bandit.qvalues import QTable
from bandit.snapshots import Snapshot, SnapshotError, file_stamp, write_atomic

log = logging.getLogger(__name__)
REWARD_LOCK = 0x666C_7277  # PostgreSQL advisory lock: reward ids are then assigned in commit order
BATCH = 1000
SETTLE_SECONDS = 1.0  # how often to look for events whose reward wait has passed
PENDING = (  # rewards past a given id, oldest first, with what their decision logged
    select(Reward.id, Reward.item_id, Reward.learn_value, Event.shared, Event.candidates, Event.slots, Event.segment)
    .join(Event, col(Event.id) == col(Reward.event_id))
    .where(col(Reward.id) > bindparam("after"))
    .order_by(col(Reward.id))
    .limit(BATCH)
)


def lock_reward_log(s: Session) -> None:
    if s.get_bind().dialect.name == "postgresql":
        s.exec(text("SELECT pg_advisory_xact_lock(:k)").bindparams(k=REWARD_LOCK))


class Learner:
    def __init__(self, settings: Settings, engine: Engine):
        self.settings = settings
        self.engine = engine
        self.model, self.last_reward_id, self.learned = self._resume()
        self._generation = self._last_generation()
        self._written: tuple[int, int] | None = file_stamp(settings.snapshot_path)
        self._published_at = 0.0
        self._kept_at = time.monotonic()
        self._dirty = False
        self._settled_at = 0.0

    def step(self, now: datetime | None = None) -> int:
        """Settle due events, learn the rewards that arrived since the last step; return how many were learned."""
        if now is not None or time.monotonic() - self._settled_at >= SETTLE_SECONDS:
            self.settle_due(now or utcnow())
            self._settled_at = time.monotonic()
        self._adopt_rollback()
        learned = self.learn_pending()
        if self._dirty and time.monotonic() - self._published_at >= self.settings.publish_seconds:
            self.publish(keep=time.monotonic() - self._kept_at >= self.settings.keep_version_seconds)
        return learned

    def run(self, stop: threading.Event, idle_sleep: float = 0.05) -> None:
        log.info("learner started at reward %d (model %s)", self.last_reward_id, self.model.version)
        # What is loaded by now (libraries, the model) lives as long as the process: exempting it from the
        # collector's full scans makes learning half again as fast (docs/benchmarks.md).
        gc.freeze()
        while not stop.is_set():
            try:
                if self.step() == 0:
                    stop.wait(idle_sleep)
            except Exception:
                log.exception("learner step failed; retrying")
                stop.wait(1.0)
        if self._dirty:
            self.publish(keep=True)

    def learn_pending(self) -> int:
        with self.engine.connect() as conn:
            rows = conn.execute(PENDING, {"after": self.last_reward_id}).all()
        touched: dict[tuple[str, str], tuple[float, int]] = {}
        for reward_id, item_id, value, shared, candidates, slots, seg in rows:
            slot = next((sl for sl in slots if sl["item_id"] == item_id), None)
            if slot is not None and value is not None:
                self.model.policy.learn(
                    Shared.from_dict(shared), LoggedCandidates(candidates), slot["position"], value, slot["probability"]
                )
                q = self.model.qvalues.update(item_id, seg, value)
                touched[(item_id, seg)] = (q, self.model.qvalues.count(item_id, seg))
            self.last_reward_id = reward_id
        if rows:
            self.learned += len(rows)
            self._dirty = True
            self._store_qvalues(touched)
        return len(rows)

    def settle_due(self, now: datetime) -> int:
        """Give the default reward to every shown slot of events whose reward wait has passed without one."""
        due = now - timedelta(seconds=self.settings.reward_wait_seconds)
        with write_session(self.engine) as s:
            events = s.execute(
                select(Event.id, Event.user_id, Event.slots)
                .where(col(Event.settled_at).is_(None), col(Event.created_at) <= due)
                .where((col(Event.deferred).is_(False)) | (col(Event.activated_at) <= due))
                .order_by(col(Event.created_at))
                .limit(BATCH)
            ).all()
            if not events:
                return 0
            ids = [e.id for e in events]
            lock_reward_log(s)
            rewarded = set(s.execute(select(Reward.event_id, Reward.item_id).where(col(Reward.event_id).in_(ids))).all())
            value = self.settings.default_reward
            defaults = [dict(event_id=e.id, item_id=sl["item_id"], user_id=e.user_id, value=value, learn_value=value,
                             is_default=True, reward_key="default", received_at=now)
                        for e in events for sl in e.slots if (e.id, sl["item_id"]) not in rewarded]
            if defaults:  # Core, not ORM objects: most shown items are ignored, so most rewards are these
                s.execute(insert(Reward), defaults)
            s.execute(update(Event).where(col(Event.id).in_(ids)).values(settled_at=now))
        return len(events)

    def publish(self, keep: bool = False) -> str:
        """Write the snapshot serving workers load; with `keep`, also store it as a model version."""
        self._generation += 1
        version = f"v{self._generation}"
        snapshot = Snapshot(
            version=version,
            model=self.model.policy.to_bytes(),
            settings={"policy": self.model.policy.config.to_dict(), "q_alpha": self.settings.q_alpha},
            qvalues=[list(r) for r in self.model.qvalues.rows()],
            meta={"last_reward_id": self.last_reward_id, "rewards_learned": self.learned},
        )
        data = snapshot.to_bytes()
        write_atomic(self.settings.snapshot_path, data)
        self._written = file_stamp(self.settings.snapshot_path)
        self.model.version = version
        if keep:
            with write_session(self.engine) as s:
                s.add(ModelVersion(version=version, archive=data, source="learner",
                                   rewards_learned=self.learned, last_reward_id=self.last_reward_id))
            self._kept_at = time.monotonic()
        self._published_at = time.monotonic()
        self._dirty = False
        return version

    def _adopt_rollback(self) -> None:
        """`feedloop models rollback` replaced the snapshot: continue learning from that model."""
        stamp = file_stamp(self.settings.snapshot_path)
        if stamp is None or stamp == self._written:
            return
        try:
            snapshot = Snapshot.from_bytes(self.settings.snapshot_path.read_bytes())
        except SnapshotError as exc:
            log.warning("ignoring a damaged snapshot written by another process: %s", exc)
        else:
            self.model = Model.from_snapshot(snapshot, self.settings.q_alpha)
            log.info("learner adopted model %s", snapshot.version)
        self._written = stamp

    def _last_generation(self) -> int:
        with Session(self.engine) as s:
            kept = s.exec(select(ModelVersion.version).where(ModelVersion.source == "learner")).all()
        numbers = [int(v[1:]) for v in [*kept, self.model.version] if v[:1] == "v" and v[1:].isdigit()]
        return max(numbers, default=0)

    def _store_qvalues(self, touched: dict[tuple[str, str], tuple[float, int]]) -> None:
        now = utcnow()
        with write_session(self.engine) as s:
            upsert(s, QValue, [dict(item_id=item_id, segment=segment, q=q, n=n, updated_at=now)
                               for (item_id, segment), (q, n) in touched.items()])

    def _resume(self) -> tuple[Model, int, int]:
        path = self.settings.snapshot_path
        if path.exists():
            try:
                snapshot = Snapshot.from_bytes(path.read_bytes())
                return (
                    Model.from_snapshot(snapshot, self.settings.q_alpha),
                    int(snapshot.meta.get("last_reward_id", 0)),
                    int(snapshot.meta.get("rewards_learned", 0)),
                )
            except SnapshotError as exc:
                log.warning("snapshot %s is damaged (%s); starting from the newest kept version", path, exc)
        with Session(self.engine) as s:
            kept = s.exec(select(ModelVersion).order_by(col(ModelVersion.created_at).desc())).first()
        if kept is not None:
            return Model.from_snapshot(Snapshot.from_bytes(kept.archive), self.settings.q_alpha), kept.last_reward_id, kept.rewards_learned
        fresh = Model("v0", VWPolicy(policy_config(self.settings)), QTable(self.settings.q_alpha))
        return fresh, 0, 0
