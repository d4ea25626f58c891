"""The item catalogue: database writes, embeddings, and this process's FAISS index kept in step.

Every write appends to `catalogue_changes` in the same transaction. Each process (gunicorn
worker, CLI, scheduler) replays the log past the last change it applied (`sync`) at the start of
each request, so an item is searchable everywhere as soon as the write that stored it returns.
Reads (`search`, `sample`, `vectors`, `describe`) use the index as the last sync left it, so one
request sees one catalogue. Start-up, the `reindex` job and explicit commands save the index file;
requests never do.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.db import advisory_xact_lock, upsert, write_session
from app.models import CatalogueChange, Item, ItemVector, utcnow
from app.settings import Settings
from embeddings.encoder import TextEncoder, encoder_id, item_text, load_encoder, text_hash
from embeddings.index import VectorIndex

log = logging.getLogger(__name__)
META_CACHE = 200_000  # items whose title, category and tags a process keeps in memory
CHUNK = 500  # ids per IN (...) clause, well under SQLite's parameter limit
CATALOGUE_LOCK = 0x666C_6974  # PostgreSQL advisory lock: change ids are then assigned in commit order


def chunks(seq: Sequence, size: int = CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


class ItemMeta(NamedTuple):
    title: str
    category: str | None
    tags: tuple[str, ...]


@dataclass(frozen=True)
class ItemData:
    """An item as an app or a file gives it (already validated)."""

    id: str
    title: str
    description: str = ""
    category: str | None = None
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)


def text_of(item: Item | ItemData) -> str:
    return item_text(item.title, item.description, item.category, item.tags)


class Catalogue:
    def __init__(self, settings: Settings, engine: Engine):
        self.settings = settings
        self.engine = engine
        self.index: VectorIndex | None = None
        self.applied = 0  # last change id reflected in self.index
        self.saved = 0  # last change id reflected in the saved index file
        self._encoder: TextEncoder | None = None
        self._meta: OrderedDict[str, ItemMeta | None] = OrderedDict()  # None: deleted
        self._lock = threading.RLock()

    @property
    def encoder(self) -> TextEncoder:
        return self.load_model()

    def load_model(self) -> TextEncoder:
        if self._encoder is None:
            self._encoder = load_encoder(
                self.settings.embedding_model,
                self.settings.encode_batch_size,
                self.settings.encoder_precision,
                str(self.settings.encoder_cache),
            )
        return self._encoder

    @functools.cached_property
    def model_id(self) -> str:
        """The id of the vectors the encoder makes, from the model's files: a process that only indexes stored
        vectors (the scheduler, mostly) never loads the model."""
        return encoder_id(self.settings.embedding_model, self.settings.encoder_precision)

    @property
    def model_ready(self) -> bool:
        return self._encoder is not None

    def warm_up(self, with_model: bool = True) -> None:
        """Load the saved index; rebuild it when it is missing or stale. An index that had to be rebuilt, or
        brought up to date, is saved before serving starts (at 100k items a rebuild costs a minute and a half,
        which the next start should not pay again); requests never save it. Without `with_model` the encoder
        is loaded only if there are items to encode: serving wants it ready for the first query, a job that
        indexes stored vectors does not need its few hundred megabytes."""
        if with_model:
            self.load_model()
        with self._lock:
            loaded = self._load_saved(self.model_id)
            if loaded is None:
                self._rebuild()
            else:
                self.index, self.applied = loaded
                self.saved = self.applied
            self.sync()
            if self.unsaved:
                self.save_index()
            self._load_meta()

    def sync(self) -> None:
        """Apply the catalogue changes other processes (or this one) committed since the last sync. When they
        cannot be applied, the item cache is dropped: without the change log only the database is to be trusted."""
        try:
            self._replay()
        except Exception:
            with self._lock:
                self._meta.clear()
            raise

    def _replay(self) -> None:
        with self._lock:
            if self.index is None or self._head() <= self.applied:
                return
        with self._lock, Session(self.engine) as s:
            while True:
                rows = s.exec(
                    select(CatalogueChange.id, CatalogueChange.item_id)
                    .where(CatalogueChange.id > self.applied)
                    .order_by(CatalogueChange.id)
                    .limit(50_000)
                ).all()
                if not rows:
                    break
                self._apply(s, list(dict.fromkeys(item_id for _, item_id in rows)))
                self.applied = rows[-1][0]

    def _head(self) -> int:
        """The newest change id. Every request asks, so it goes straight to the driver (8 µs on SQLite against
        80 µs through SQLAlchemy's connection and statement layers)."""
        conn = self.engine.raw_connection()
        try:
            cursor = conn.cursor()
            cursor.execute(f"SELECT max(id) FROM {CatalogueChange.__tablename__}")
            return cursor.fetchone()[0] or 0
        finally:
            conn.close()

    @property
    def unsaved(self) -> bool:
        """Whether the index holds catalogue changes its saved file lacks."""
        return self.index is not None and (self.applied != self.saved or not self.settings.index_path.exists())

    def save_index(self) -> None:
        with self._lock:
            if self.index is not None:
                self.index.save(self.settings.index_path, {"model_id": self.model_id, "applied": self.applied})
                self.saved = self.applied

    def search(self, vector: np.ndarray, k: int, exclude: Iterable[str] = ()) -> list[tuple[str, float]]:
        with self._lock:
            return self.index.search(vector, k, exclude) if self.index is not None else []

    def describe(self, item_ids: Sequence[str]) -> dict[str, ItemMeta]:
        """Title, category and tags of the live items among `item_ids`, from a cache that replaying the
        change log keeps current (the ranking path reads 100 items per request)."""
        with self._lock:
            missing = [i for i in item_ids if i not in self._meta]
            applied = self.applied
        if missing:
            with Session(self.engine) as s:
                rows = [
                    row
                    for batch in chunks(missing)
                    for row in s.exec(
                        select(Item.id, Item.title, Item.category, Item.tags, Item.deleted_at).where(col(Item.id).in_(batch))
                    )
                ]
            with self._lock:
                if self.applied == applied:  # else a change may have landed after the read: do not cache it
                    for row in rows:
                        self._meta[row.id] = None if row.deleted_at else ItemMeta(row.title, row.category, tuple(row.tags))
                    while len(self._meta) > META_CACHE:
                        self._meta.popitem(last=False)
                found = {row.id: ItemMeta(row.title, row.category, tuple(row.tags)) for row in rows if not row.deleted_at}
        else:
            found = {}
        with self._lock:
            for item_id in item_ids:
                if item_id in self._meta:
                    self._meta.move_to_end(item_id)
                    if self._meta[item_id] is not None:
                        found[item_id] = self._meta[item_id]
        return found

    def _load_meta(self) -> None:
        """Fill the item cache up front (up to META_CACHE items), so the first requests do not pay for it."""
        with Session(self.engine) as s:
            rows = s.exec(
                select(Item.id, Item.title, Item.category, Item.tags).where(col(Item.deleted_at).is_(None)).limit(META_CACHE)
            ).all()
        with self._lock:
            self._meta = OrderedDict((r.id, ItemMeta(r.title, r.category, tuple(r.tags))) for r in rows)

    def sample(self, n: int, rng: np.random.Generator, exclude: Iterable[str] = ()) -> list[str]:
        with self._lock:
            return self.index.sample(n, rng, exclude) if self.index is not None else []

    def vectors(self, item_ids: Iterable[str]) -> dict[str, np.ndarray]:
        """The stored vectors of the live items among `item_ids`."""
        with self._lock:
            if self.index is None:
                return {}
            return {i: self.index.vector(i) for i in item_ids if i in self.index}

    def encode_missing(self, progress: Callable[[int], None] | None = None) -> int:
        """Encode and store vectors for live items that have none from the current model."""
        model_id = self.model_id
        with Session(self.engine) as s:
            missing = s.exec(
                select(Item.id)
                .outerjoin(ItemVector, (ItemVector.item_id == Item.id) & (ItemVector.model_id == model_id))
                .where(col(Item.deleted_at).is_(None), col(ItemVector.item_id).is_(None))
            ).all()
        for batch in chunks(missing, 1_000):
            with Session(self.engine) as s:
                items = s.exec(select(Item).where(col(Item.id).in_(batch))).all()
            vectors = self.encoder.encode([text_of(i) for i in items])
            with write_session(self.engine) as s:
                upsert(
                    s,
                    ItemVector,
                    [_vector_row(item.id, model_id, text_hash(text_of(item)), vector) for item, vector in zip(items, vectors)],
                )
                record_changes(s, [i.id for i in items])
            if progress:
                progress(len(items))
        return len(missing)

    def _load_saved(self, model_id: str) -> tuple[VectorIndex, int] | None:
        path = self.settings.index_path
        if not path.exists():
            log.info("no saved index at %s; building it", path)
            return None
        try:
            index, meta = VectorIndex.load(path, **self._index_params())
        except Exception as exc:  # a damaged file is rebuilt from the database, never trusted
            log.warning("saved index %s is unreadable (%s); rebuilding", path, exc)
            return None
        head = self._head()
        if meta.get("model_id") != model_id or meta.get("applied", 0) > head:
            log.info("saved index %s belongs to another model or database; rebuilding", path)
            return None
        return index, int(meta["applied"])

    def _rebuild(self) -> None:
        head = self._head()
        self.encode_missing()
        index = VectorIndex(self._stored_dim() or self.encoder.dim, **self._index_params())
        with Session(self.engine) as s:
            ids = s.exec(select(Item.id).where(col(Item.deleted_at).is_(None))).all()
            for batch in chunks(ids, 10_000):
                self._upsert_from_db(s, index, list(batch))
        self.index, self.applied = index, head
        log.info("index rebuilt: %d items (%s)", len(index), index.kind)

    def _stored_dim(self) -> int | None:
        """The length of the stored vectors of the current model (None when there are none)."""
        with Session(self.engine) as s:
            vector = s.exec(select(ItemVector.vector).where(ItemVector.model_id == self.model_id).limit(1)).first()
        return len(vector) // 4 if vector is not None else None

    def _apply(self, s: Session, item_ids: list[str]) -> None:
        for item_id in item_ids:
            self._meta.pop(item_id, None)
        live = set()
        for batch in chunks(item_ids):
            live |= set(s.exec(select(Item.id).where(col(Item.id).in_(batch), col(Item.deleted_at).is_(None))).all())
        self.index.delete(i for i in item_ids if i not in live)
        self._upsert_from_db(s, self.index, [i for i in item_ids if i in live])

    def _upsert_from_db(self, s: Session, index: VectorIndex, item_ids: list[str]) -> None:
        model_id, dim = self.model_id, index.dim
        for batch in chunks(item_ids):
            rows = s.exec(
                select(ItemVector.item_id, ItemVector.vector).where(
                    col(ItemVector.item_id).in_(batch), ItemVector.model_id == model_id
                )
            ).all()
            if len(rows) < len(batch):
                log.warning("%d items have no vector from model %s yet", len(batch) - len(rows), model_id)
            if rows:
                vectors = np.frombuffer(b"".join(v for _, v in rows), dtype=np.float32).reshape(-1, dim)
                index.upsert([i for i, _ in rows], vectors)

    def _index_params(self) -> dict:
        st = self.settings
        return dict(
            exact_max=st.exact_index_max,
            hnsw_m=st.hnsw_m,
            ef_construction=st.hnsw_ef_construction,
            ef_search=st.hnsw_ef_search,
        )


def record_changes(s: Session, item_ids: Iterable[str]) -> None:
    advisory_xact_lock(s, CATALOGUE_LOCK)
    now = utcnow()
    s.add_all(CatalogueChange(item_id=i, created_at=now) for i in item_ids)


def _vector_row(item_id: str, model_id: str, digest: str, vector: np.ndarray) -> dict:
    return dict(
        item_id=item_id, model_id=model_id, text_hash=digest, vector=vector.astype(np.float32).tobytes(), updated_at=utcnow()
    )


def upsert_items(catalogue: Catalogue, items: list[ItemData]) -> int:
    """Store items and their vectors in one transaction; re-encode only items whose text changed."""
    if not items:
        return 0
    model_id = catalogue.model_id
    digests = {i.id: text_hash(text_of(i)) for i in items}
    with Session(catalogue.engine) as s:
        current = {
            item_id
            for batch in chunks([i.id for i in items])
            for item_id, digest in s.exec(
                select(ItemVector.item_id, ItemVector.text_hash).where(
                    col(ItemVector.item_id).in_(batch), ItemVector.model_id == model_id
                )
            ).all()
            if digests[item_id] == digest
        }
    stale = [i for i in items if i.id not in current]
    vectors = dict(zip((i.id for i in stale), catalogue.encoder.encode([text_of(i) for i in stale]))) if stale else {}
    now = utcnow()
    with write_session(catalogue.engine) as s:
        record_changes(s, digests)
        existing = {
            row.id: row for batch in chunks(list(digests)) for row in s.exec(select(Item).where(col(Item.id).in_(batch))).all()
        }
        for item in items:
            row = existing.get(item.id) or Item(id=item.id, title=item.title, created_at=now)
            row.sqlmodel_update(asdict(item), update={"updated_at": now, "deleted_at": None})
            s.add(row)
        s.flush()  # the items first: their vectors refer to them
        upsert(s, ItemVector, [_vector_row(i, model_id, digests[i], v) for i, v in vectors.items()])
    catalogue.sync()
    return len(items)


def delete_item(catalogue: Catalogue, item_id: str) -> bool:
    with write_session(catalogue.engine) as s:
        row = s.get(Item, item_id)
        if row is None or row.deleted_at is not None:
            return False
        record_changes(s, [item_id])
        row.deleted_at = row.updated_at = utcnow()
        s.add(row)
    catalogue.sync()
    return True


def live_item(s: Session, item_id: str) -> Item | None:
    item = s.get(Item, item_id)
    return item if item is not None and item.deleted_at is None else None


def titles_of(s: Session, item_ids: list[str]) -> dict[str, str]:
    return dict(s.exec(select(Item.id, Item.title).where(col(Item.id).in_(item_ids))).all())
