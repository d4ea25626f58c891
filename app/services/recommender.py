"""The recommendation hot path: candidates from FAISS, reranked by the bandit, logged as one event.

One request syncs the catalogue once and takes the served model once: the candidates' Q-values, the ranking
and the logged `model_version` all come from that one model. The user's windowed activity and the candidates'
last-hour activity (app.services.activity_features) are offered to the policy and logged with the decision,
so that learning and retraining replay what serving saw."""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import Engine, bindparam, func, insert
from sqlmodel import Session, col, select

from app.models import Event, Item, Reward, utcnow
from app.services.activity_features import ItemActivity, user_features
from app.services.catalogue import Catalogue
from app.services.model_store import ModelStore
from app.settings import Settings
from bandit.features import Candidate, Shared
from bandit.model import ServedModel
from bandit.qvalues import segment

log = logging.getLogger(__name__)
PROFILE_REWARDS = 50  # the user's most recent positive rewards that shape the profile
PROFILE_HALF_LIFE = 10  # in rewards: the 10th most recent weighs half as much as the newest
PERSONAL_SHARE = 0.6  # of the N candidates, from FAISS around the profile/query; the rest popular and random
INSERT_EVENT = insert(Event)
LIKED = (  # built once: constructing the statement cost as much as running it
    select(Reward.item_id)
    .where(Reward.user_id == bindparam("user_id"), Reward.source == "client", col(Reward.value) > 0)
    .order_by(col(Reward.id).desc())
    .limit(PROFILE_REWARDS)
)


@dataclass
class Request:
    user_id: str
    context: dict = field(default_factory=dict)
    query: str | None = None
    k: int = 10
    exclude: list[str] = field(default_factory=list)
    defer: bool = False
    baseline_item_id: str | None = None


@dataclass
class Shown:
    id: str
    title: str
    score: float
    probability: float


@dataclass
class Decision:
    event_id: str
    model_version: str
    items: list[Shown]
    fallback: bool
    latency_ms: float


class Recommender:
    def __init__(self, settings: Settings, engine: Engine, catalogue: Catalogue, models: ModelStore, seed: int | None = None):
        self.settings, self.engine, self.catalogue, self.models = settings, engine, catalogue, models
        self.rng = np.random.default_rng(seed if seed is not None else int.from_bytes(os.urandom(8), "little"))
        self.item_activity = ItemActivity(engine)

    def recommend(self, req: Request) -> Decision:
        started = time.perf_counter()
        now = utcnow()
        seg = segment(req.context, self.settings.segment_keys)
        shared = Shared.at(req.user_id, req.context, now, self._user_activity(req.user_id, now))
        model = self.models.current()
        try:
            self.catalogue.sync()
            candidates, titles = self._candidates(req, seg, model)
            fallback = False
        except Exception:  # the index or the encoder failed: popular items, still logged and learnable
            log.exception("candidate retrieval failed; serving the fallback ranking")
            candidates, titles = self._popular_candidates(req, seg, model)
            fallback = True
        # The event row is built and inserted through Core, not the ORM's unit of work: it is on every request.
        event = dict(
            id=uuid.uuid4().hex,
            user_id=req.user_id,
            context=req.context,
            query=req.query,
            shared=shared.to_dict(),
            candidates=[c.to_dict() for c in candidates],
            slots=[],
            segment=seg,
            model_version="",
            fallback=fallback,
            deferred=req.defer,
            activated_at=None,
            baseline_item_id=req.baseline_item_id,
            policy_item_id=None,
            created_at=now,
            settled_at=None,
        )
        shown = self._rank(event, model, shared, candidates, titles, req) if candidates else []
        with self.engine.begin() as conn:
            conn.execute(INSERT_EVENT, [event])
        return Decision(event["id"], event["model_version"], shown, event["fallback"], (time.perf_counter() - started) * 1000)

    def _user_activity(self, user_id: str, now: datetime) -> dict[str, float] | None:
        """The user's windowed activity at `now`, read from the buckets: a late event inside the window counts."""
        if not self.settings.activity_features:
            return None
        return user_features(self.engine, user_id, now)

    def _rank(
        self, event: dict, model: ServedModel, shared: Shared, candidates: list[Candidate], titles: dict, req: Request
    ) -> list[Shown]:
        if model.withdrawn:  # a red model KPI took the model out of serving
            positions, probabilities, scores = self._fallback(event, candidates, req)
        else:
            try:
                with self.models.decide():
                    choice = model.policy.choose(shared, candidates, req.k, self.rng)
                positions, probabilities = choice.positions, choice.probabilities
                event["policy_item_id"] = candidates[positions[0]].id
                if self._apprentice(req, candidates):
                    positions, probabilities = self._baseline_first(candidates, positions, probabilities, req.baseline_item_id)
                scores = [choice.scores[p] for p in positions]
                event["model_version"] = model.version
            except Exception:
                log.exception("policy failed; serving the fallback ranking")
                positions, probabilities, scores = self._fallback(event, candidates, req)
        event["slots"] = [
            {"position": p, "item_id": candidates[p].id, "probability": pr} for p, pr in zip(positions, probabilities)
        ]
        return [Shown(candidates[p].id, titles[candidates[p].id], sc, pr) for p, pr, sc in zip(positions, probabilities, scores)]

    @staticmethod
    def _fallback(event: dict, candidates: list[Candidate], req: Request) -> tuple[list[int], list[float], list[float]]:
        """The candidates by Q-value, each shown with probability 1, logged as the fallback ranking."""
        positions = sorted(range(len(candidates)), key=lambda p: -candidates[p].q)[: req.k]
        event["model_version"], event["fallback"] = "fallback", True
        return positions, [1.0] * len(positions), [candidates[p].q for p in positions]

    def _apprentice(self, req: Request, candidates: list[Candidate]) -> bool:
        return (
            self.settings.loop_mode == "apprentice"
            and req.baseline_item_id is not None
            and any(c.id == req.baseline_item_id for c in candidates)
        )

    @staticmethod
    def _baseline_first(candidates, positions, probabilities, baseline_id):
        """Apprentice mode: the app's own choice takes the first slot (probability 1), the policy fills the rest."""
        base = next(p for p, c in enumerate(candidates) if c.id == baseline_id)
        rest = [(p, pr) for p, pr in zip(positions, probabilities) if p != base][: len(positions) - 1]
        return [base] + [p for p, _ in rest], [1.0] + [pr for _, pr in rest]

    def _candidates(self, req: Request, seg: str, model: ServedModel) -> tuple[list[Candidate], dict[str, str]]:
        """Neighbours of the user's profile and query, the popular items of the context, and a random
        sample, so that the bandit can discover what retrieval alone would never offer."""
        n = max(self.settings.candidates, req.k)
        taken = set(req.exclude)
        vector = self._query_vector(req)
        hits = self.catalogue.search(vector, round(n * PERSONAL_SHARE), exclude=taken) if vector is not None else []
        taken |= {i for i, _ in hits}
        popular = [i for i in model.qvalues.top(seg, n) if i not in taken][: (n - len(hits)) // 2]
        taken |= set(popular)
        extra = popular + self.catalogue.sample(n - len(hits) - len(popular), self.rng, exclude=taken)
        hits += [(i, 0.0) for i in extra]
        if req.baseline_item_id and req.baseline_item_id not in {i for i, _ in hits} and req.baseline_item_id not in req.exclude:
            hits.append((req.baseline_item_id, 0.0))
        return self._describe(hits, seg, model)

    def _query_vector(self, req: Request) -> np.ndarray | None:
        """The user's profile (recency-weighted mean of rewarded items), blended with the query when there is one."""
        with self.engine.connect() as conn:
            liked = conn.execute(LIKED, {"user_id": req.user_id}).scalars().all()
        stored = self.catalogue.vectors(liked)
        vectors = [stored[i] for i in liked if i in stored]
        weights = [0.5 ** (rank / PROFILE_HALF_LIFE) for rank, i in enumerate(liked) if i in stored]
        parts = []
        if vectors:
            parts.append(_unit(np.average(vectors, axis=0, weights=weights)))
        if req.query:
            parts.append(self.catalogue.encoder.encode([req.query])[0])
        return _unit(np.mean(parts, axis=0)) if parts else None

    def _popular_candidates(self, req: Request, seg: str, model: ServedModel) -> tuple[list[Candidate], dict[str, str]]:
        """Fallback when retrieval fails: the context's popular items, then random ones, from the database alone."""
        n = max(self.settings.candidates, req.k)
        exclude = set(req.exclude)
        popular = [i for i in model.qvalues.top(seg, n) if i not in exclude][: n // 2]
        with Session(self.engine) as s:
            live = s.exec(
                select(Item.id)
                .where(col(Item.deleted_at).is_(None), col(Item.id).not_in(popular + list(exclude)))
                .order_by(func.random())
                .limit(n - len(popular))
            ).all()
        return self._describe([(i, 0.0) for i in popular + list(live)], seg, model)

    def _describe(self, hits: list[tuple[str, float]], seg: str, model: ServedModel) -> tuple[list[Candidate], dict[str, str]]:
        items = self.catalogue.describe([i for i, _ in hits])
        q = {i: model.qvalues.get(i, seg) for i in items}
        if self.settings.activity_features:
            self.item_activity.refresh_if_due()
            recent = self.item_activity.features
        else:
            recent = _no_activity
        candidates = [Candidate(i, items[i].category, items[i].tags, sim, q[i], recent(i)) for i, sim in hits if i in items]
        return candidates, {i: meta.title for i, meta in items.items()}


def _no_activity(_item_id: str) -> tuple:
    return ()


def _unit(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v)
    return (v / norm).astype(np.float32) if norm > 0 else v.astype(np.float32)
