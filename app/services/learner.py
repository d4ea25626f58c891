"""The single learner: it learns each shown slot once, with its final reward, in arrival order; settles the
slots whose reward wait has passed; carries out rollbacks; and publishes the snapshots serving workers load.

Exactly one learner runs per database: `feedloop learner`, or the sidecar `feedloop serve` starts. It is the
only writer of the served snapshot, so nothing it publishes can overwrite an operator's rollback: a rollback is
a request in the database that the learner carries out between two rewards. It resumes from the last reward
its newest snapshot learned, after checking that the database still holds that reward (a restored backup or
SQLite reusing row ids would otherwise make it skip rewards it never saw).
"""

from __future__ import annotations

import gc
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, bindparam, func, insert, update
from sqlmodel import Session, col, select

from app.db import upsert, write_session
from app.models import Event, ExcludedUser, LearnerState, ModelCard, ModelRequest, ModelVersion, QValue, Reward, utcnow
from app.services import releases, shadow
from app.services.model_store import load_snapshot, policy_config
from app.services.rewards import lock_reward_log, logged_decision, reward_rules
from app.settings import Settings
from bandit.features import LoggedCandidates, Shared
from bandit.model import ServedModel
from bandit.snapshots import Snapshot, SnapshotError, write_atomic
from feedback.rewards import due_at, final_reward

log = logging.getLogger(__name__)
BATCH = 1000
SETTLE_SECONDS = 1.0  # how often to look for events whose reward wait has passed
HEARTBEAT_SECONDS = 1.0  # how often the learner records its position and liveness
PENDING = (  # learnable rewards past a given id, oldest first, with what their decision logged
    select(
        Reward.id,
        Reward.event_id,
        Reward.item_id,
        Reward.learn_value,
        Event.shared,
        Event.candidates,
        Event.slots,
        Event.segment,
        Reward.excluded,
        # Whether the user is excluded (a confirmed fraud) by the time the learner reaches the reward: looked up
        # by the excluded_users primary key in the same query, so an exclusion holds from the next batch on at no
        # extra round trip (measured with 20,000 rewards, old and new alternating on a busy 2-core machine: SQLite
        # 6,600 against 6,400 rewards/s, PostgreSQL 4,000 against 4,300; within run-to-run noise).
        col(ExcludedUser.user_id).is_not(None).label("excluded_user"),
    )
    .join(Event, col(Event.id) == col(Reward.event_id))
    .outerjoin(ExcludedUser, col(ExcludedUser.user_id) == col(Reward.user_id))
    .where(col(Reward.id) > bindparam("after"), col(Reward.learn_value).is_not(None), col(Reward.learn_error).is_(None))
    .order_by(col(Reward.id))
    .limit(BATCH)
)


@dataclass
class Line:
    """Where the learner's model comes from: it learned the rewards after `from_reward_id` on top of `parent` (a
    promoted candidate, a rolled-back version; None from scratch). Kept versions record it (lineage)."""

    parent: str | None = None
    from_reward_id: int = 0
    withdrawn: bool = False  # a red model KPI took it out of serving: the fallback ranking serves

    def meta(self) -> dict:
        return {"parent_version": self.parent, "learned_from_reward_id": self.from_reward_id, "withdrawn": self.withdrawn}

    @classmethod
    def from_meta(cls, meta: dict) -> Line:
        return cls(meta.get("parent_version"), int(meta.get("learned_from_reward_id", 0)), bool(meta.get("withdrawn")))


class Learner:
    def __init__(self, settings: Settings, engine: Engine, clock: Callable[[], float] = time.monotonic):
        self.settings, self.engine, self.rules, self._clock = settings, engine, reward_rules(settings), clock
        self.model, self.last_reward_id, self.last_reward_event, self.learned, self.line = self._resume()
        self._generation = self._last_generation()
        self._record_initial_release()
        self._failures: dict[int, int] = {}  # reward id → failed attempts to learn it
        self._published_at = self._settled_at = self._beat_at = float("-inf")
        self._kept_at = clock()
        self._dirty = False

    def step(self, now: datetime | None = None) -> int:
        """Settle due events, carry out requests, learn the rewards that arrived since the last step, publish
        when due; return how many rewards were learned. `now` forces a settlement at that time (tests)."""
        t = self._clock()
        if now is not None or t - self._settled_at >= SETTLE_SECONDS:
            self.settle_due(now or utcnow())
            self._settled_at = t
        self.carry_out_requests()
        learned = self.learn_pending()
        if self._dirty and t - self._published_at >= self.settings.publish_seconds:
            self.publish(keep=t - self._kept_at >= self.settings.keep_version_seconds)
        if t - self._beat_at >= HEARTBEAT_SECONDS:
            self.heartbeat()
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
            except Exception as exc:  # the database is away, say: the same step is tried again
                log.warning("learner step failed (%s: %s); retrying in a second", type(exc).__name__, exc)
                stop.wait(1.0)
        if self._dirty:
            self.publish(keep=True)

    def learn_pending(self) -> int:
        with self.engine.connect() as conn:
            rows = conn.execute(PENDING, {"after": self.last_reward_id}).all()
        touched: dict[tuple[str, str], tuple[float, int]] = {}
        done = passed = 0
        self._mark_excluded([row.id for row in rows if row.excluded_user and not row.excluded])  # before moving past
        for row in rows:
            if not (row.excluded or row.excluded_user):  # else the slot's one learnable reward is passed, not learned
                try:
                    self._learn(row, touched)
                except Exception as exc:
                    tries = self._failures[row.id] = self._failures.get(row.id, 0) + 1
                    if tries < self.settings.learn_attempts:
                        log.warning(
                            "reward %d failed to learn (try %d of %d): %s", row.id, tries, self.settings.learn_attempts, exc
                        )
                        break  # in order: the rewards after it wait for the next try
                    self._set_aside(row.id, f"{type(exc).__name__}: {exc}")
                else:
                    done += 1  # a reward set aside was passed, not learned
                self._failures.pop(row.id, None)
            self.last_reward_id, self.last_reward_event = row.id, row.event_id
            passed += 1
        if passed:
            self.learned += done
            self._dirty = True
            self._store_qvalues(touched)
        return done

    def _learn(self, row, touched: dict) -> None:
        value = float(row.learn_value)
        if not math.isfinite(value):
            raise ValueError(f"the reward {value} is not a finite number")
        slot = next(sl for sl in row.slots if sl["item_id"] == row.item_id)
        candidates = LoggedCandidates(row.candidates)
        if not 0 <= slot["position"] < len(candidates):
            raise ValueError(f"slot position {slot['position']} is outside the {len(candidates)} logged candidates")
        self.model.policy.learn(Shared.from_dict(row.shared), candidates, slot["position"], value, slot["probability"])
        q = self.model.qvalues.update(row.item_id, row.segment, value)
        touched[(row.item_id, row.segment)] = (q, self.model.qvalues.count(row.item_id, row.segment))

    def _mark_excluded(self, reward_ids: list[int]) -> None:
        """Rewards of excluded users that nobody marked yet (one stored while the exclusion was being committed):
        marked for the retraining, never learned."""
        if reward_ids:
            with write_session(self.engine) as s:
                s.execute(
                    update(Reward).where(col(Reward.id).in_(reward_ids), col(Reward.excluded).is_(False)).values(excluded=True)
                )

    def _set_aside(self, reward_id: int, error: str) -> None:
        log.error("reward %d set aside after %d failed tries: %s", reward_id, self.settings.learn_attempts, error)
        with write_session(self.engine) as s:
            s.execute(update(Reward).where(col(Reward.id) == reward_id).values(learn_error=error[:2000]))

    def settle_due(self, now: datetime) -> int:
        """Give each shown slot whose reward wait has passed its final reward (the aggregate of what was received,
        or the default), unless it learned one already; a deferred event never activated is closed, unlearned,
        once it leaves the reward window."""
        due, expired = now - self.rules.wait, now - self.rules.window
        with write_session(self.engine) as s:
            lock_reward_log(s)
            events = s.execute(
                select(
                    Event.id, Event.user_id, Event.created_at, Event.slots, Event.deferred, Event.activated_at, Event.settled_at
                )
                .where(col(Event.settled_at).is_(None), col(Event.created_at) <= due)
                .where(
                    col(Event.deferred).is_(False)
                    | (col(Event.activated_at) <= due)
                    | (col(Event.activated_at).is_(None) & (col(Event.created_at) <= expired))
                )
                .order_by(col(Event.created_at))
                .limit(BATCH)
            ).all()
            if not events:
                return 0
            ids = [e.id for e in events]
            received: dict[tuple[str, str], list] = {}
            for r in s.execute(
                select(Reward.event_id, Reward.item_id, Reward.value, Reward.learn_value, Reward.source)
                .where(col(Reward.event_id).in_(ids), col(Reward.late).is_(False))
                .order_by(col(Reward.id))
            ):
                received.setdefault((r.event_id, r.item_id), []).append(r)
            excluded = set(
                s.exec(select(ExcludedUser.user_id).where(col(ExcludedUser.user_id).in_({e.user_id for e in events}))).all()
            )
            settlements = []
            for e in events:
                if due_at(self.rules, logged_decision(e)) is None:
                    continue  # deferred and never activated: never shown, so nothing to learn
                for sl in e.slots:
                    rows = received.get((e.id, sl["item_id"]), [])
                    final = final_reward(
                        self.rules,
                        [r.value for r in rows if r.source == "client"],
                        slot_learned=any(r.learn_value is not None for r in rows),
                    )
                    if final is not None:
                        settlements.append(
                            dict(
                                event_id=e.id,
                                item_id=sl["item_id"],
                                user_id=e.user_id,
                                source="settlement",
                                reward_key="",
                                value=final[0],
                                learn_value=final[0],
                                is_default=final[1],
                                late=False,
                                excluded=e.user_id in excluded,
                                received_at=now,
                            )
                        )
            if settlements:  # Core, not ORM objects: most shown items are ignored, so most rewards are these
                s.execute(insert(Reward), settlements)
            s.execute(update(Event).where(col(Event.id).in_(ids)).values(settled_at=now))
        return len(events)

    def carry_out_requests(self) -> None:
        """What operators and checks asked for: serve a kept version again (rollback), serve a retrained candidate
        and relearn on top of it every reward after its last (promote), or withdraw the model from serving (the
        fallback ranking serves while it keeps learning). Each starts a release."""
        with Session(self.engine) as s:
            pending = s.exec(select(ModelRequest).where(ModelRequest.status == "pending").order_by(col(ModelRequest.id))).all()
        for request in pending:
            try:
                detail = self._carry_out(request)
                status = "done"
            except SnapshotError as exc:
                status, detail = "failed", str(exc)
            log.info("%s %s: %s", request.action, request.version, detail)
            with write_session(self.engine) as s:
                s.execute(
                    update(ModelRequest)
                    .where(col(ModelRequest.id) == request.id)
                    .values(status=status, detail=detail, done_at=utcnow())
                )

    def _carry_out(self, request: ModelRequest) -> str:
        card_id = None
        if request.action == "withdraw":
            self.line.withdrawn = True
            self._write_snapshot(self.model.version)
            version, kind = releases.FALLBACK, "withdrawal"
            detail = f"serving the fallback ranking; {self.model.version} keeps learning"
        else:
            with Session(self.engine) as s:
                kept = s.get(ModelVersion, request.version)
                card = s.exec(select(ModelCard.id).where(ModelCard.candidate_version == request.version)).first()
            if kept is None:
                raise SnapshotError(f"no model version {request.version!r}")
            model = load_snapshot(kept.archive, self.settings)
            model.version = request.version  # an imported archive names the version it had where it came from
            if request.action == "promote":
                # Relearn on top of the candidate every reward after its last one: nothing learned since is lost.
                self.last_reward_id = kept.last_reward_id
                self.last_reward_event = self._event_of(kept.last_reward_id)
                version, kind, card_id = request.version, "promotion", card
                detail = f"serving {request.version}; relearning on top of it from reward {kept.last_reward_id}"
            else:
                version, kind = request.version, "rollback"
                detail = f"serving {request.version}; learning continues from it at reward {self.last_reward_id}"
            self.model, self.line, self.learned = model, Line(request.version, self.last_reward_id), kept.rewards_learned
            self._write_snapshot(model.version)
            if shadow.shadow_version(self.settings) == request.version:
                shadow.stop(self.settings)  # it serves now: nothing left to compare it with
        # What was learned since the last publish left with the replaced model (or, withdrawn, is not served): the
        # next publish is due only after something more is learned, so the new state stays served.
        self._dirty, self._published_at = False, self._clock()
        with write_session(self.engine) as s:
            releases.record(s, version, kind, request.detail, card_id)
        return detail

    def _event_of(self, reward_id: int) -> str | None:
        with Session(self.engine) as s:
            return s.exec(select(Reward.event_id).where(Reward.id == reward_id)).first()

    def _record_initial_release(self) -> None:
        with write_session(self.engine) as s:
            if releases.current(s) is None:
                releases.record(s, self.model.version, "initial", "the learner's first start")

    def publish(self, keep: bool = False) -> str:
        """Write the snapshot serving workers load; with `keep`, also store it as a model version."""
        self._generation += 1
        data = self._write_snapshot(f"v{self._generation}")
        if keep:
            with write_session(self.engine) as s:
                s.add(
                    ModelVersion(
                        version=self.model.version,
                        archive=data,
                        source="learner",
                        rewards_learned=self.learned,
                        last_reward_id=self.last_reward_id,
                        parent_version=self.line.parent,
                        learned_from_reward_id=self.line.from_reward_id,
                    )
                )
            self._kept_at = self._clock()
        self._published_at = self._clock()
        self._dirty = False
        self.heartbeat()
        return self.model.version

    def _write_snapshot(self, version: str) -> bytes:
        meta = {
            "last_reward_id": self.last_reward_id,
            "last_reward_event": self.last_reward_event,
            "rewards_learned": self.learned,
            **self.line.meta(),
        }
        data = self.model.to_snapshot(version, meta).to_bytes()
        write_atomic(self.settings.snapshot_path, data)
        self.model.version = version
        return data

    def heartbeat(self) -> None:
        """Record where the learner is, so that /healthz in any process can tell its lag and whether it lives."""
        now = utcnow()
        with write_session(self.engine) as s:
            upsert(
                s,
                LearnerState,
                [dict(id=1, last_reward_id=self.last_reward_id, model_version=self.model.version, heartbeat_at=now)],
            )
        self._beat_at = self._clock()

    def _last_generation(self) -> int:
        with Session(self.engine) as s:
            kept = s.exec(select(ModelVersion.version).where(ModelVersion.source == "learner")).all()
        numbers = [int(v[1:]) for v in [*kept, self.model.version] if v[:1] == "v" and v[1:].isdigit()]
        return max(numbers, default=0)

    def _store_qvalues(self, touched: dict[tuple[str, str], tuple[float, int]]) -> None:
        now = utcnow()
        with write_session(self.engine) as s:
            upsert(
                s,
                QValue,
                [
                    dict(item_id=item_id, segment=segment, q=q, n=n, updated_at=now)
                    for (item_id, segment), (q, n) in touched.items()
                ],
            )

    def _resume(self) -> tuple[ServedModel, int, str | None, int, Line]:
        """The newest model whose position the database still holds: the served snapshot, else the newest kept
        version at or below the last stored reward, else an untrained model that learns every reward again."""
        tried = 0
        for origin, load in self._saved_models():
            tried += 1
            try:
                snapshot = load()
            except (OSError, SnapshotError) as exc:
                log.warning("%s is unusable (%s); trying an older model", origin, exc)
                continue
            last_id, last_event = int(snapshot.meta.get("last_reward_id", 0)), snapshot.meta.get("last_reward_event")
            problem = self._position_problem(last_id, last_event)
            if problem:
                log.warning(
                    "%s (model %s) learned up to reward %d, but %s; trying an older model",
                    origin,
                    snapshot.version,
                    last_id,
                    problem,
                )
                continue
            try:
                model = ServedModel.from_snapshot(snapshot, self.settings.q_alpha)
            except SnapshotError as exc:
                log.warning("%s is unusable (%s); trying an older model", origin, exc)
                continue
            if origin != "the served snapshot":
                log.warning("resuming from %s (model %s) at reward %d", origin, snapshot.version, last_id)
            line = Line.from_meta(snapshot.meta)
            return model, last_id, last_event, int(snapshot.meta.get("rewards_learned", 0)), line
        if tried:  # (with nothing saved yet, this is simply the first start)
            log.warning("no saved model matches the database; learning every stored reward again from an untrained model")
        return ServedModel.fresh(policy_config(self.settings), self.settings.q_alpha), 0, None, 0, Line()

    def _saved_models(self):
        path = self.settings.snapshot_path
        if path.exists():
            yield "the served snapshot", lambda: Snapshot.from_bytes(path.read_bytes())
        with Session(self.engine) as s:
            kept = s.exec(
                select(ModelVersion.version)
                .where(ModelVersion.source != "retrain")  # a candidate serves only once promoted (then kept as learner)
                .order_by(col(ModelVersion.last_reward_id).desc(), col(ModelVersion.created_at).desc())
            ).all()
        for version in kept:
            yield f"kept version {version}", lambda version=version: self._kept_snapshot(version)

    def _kept_snapshot(self, version: str) -> Snapshot:
        with Session(self.engine) as s:
            return Snapshot.from_bytes(s.get(ModelVersion, version).archive)

    def _position_problem(self, last_id: int, last_event: str | None) -> str | None:
        """Why the database does not hold the reward a model says it learned last (None when it does)."""
        if last_id == 0:
            return None
        with Session(self.engine) as s:
            newest = s.exec(select(func.max(Reward.id))).one() or 0
            if last_id > newest:
                return f"the database's newest reward is {newest} (a restored backup?)"
            event = s.exec(select(Reward.event_id).where(Reward.id == last_id)).first()
        if last_event is not None and event != last_event:
            return f"reward {last_id} in the database belongs to another event (row ids reused?)"
        return None
