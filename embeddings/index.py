"""FAISS index keyed by item id.

Rows are appended; an update or delete leaves a tombstone that searches skip through a
bitmap selector, and the index is compacted once tombstones pile up. Exact inner-product
search serves small catalogues; above `exact_max` live items the index is rebuilt as HNSW.
Not thread-safe: callers serialise access (FAISS `add` is unsafe under concurrency).
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import faiss
import numpy as np

EXACT, HNSW = "exact", "hnsw"


class VectorIndex:
    def __init__(
        self,
        dim: int,
        exact_max: int = 20_000,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 96,
    ):
        self.dim = dim
        self.exact_max = exact_max
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self._labels: list[str | None] = []
        self._pos: dict[str, int] = {}
        self._faiss = self._new_faiss(EXACT)
        self._bitmap: np.ndarray | None = None  # live rows, rebuilt lazily after tombstoning

    @property
    def kind(self) -> str:
        return HNSW if isinstance(self._faiss, faiss.IndexHNSW) else EXACT

    def __len__(self) -> int:
        return len(self._pos)

    def __contains__(self, item_id: str) -> bool:
        return item_id in self._pos

    @property
    def tombstones(self) -> int:
        return len(self._labels) - len(self._pos)

    def upsert(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        vectors = self._check(vectors, len(ids))
        if len(set(ids)) != len(ids):
            raise ValueError("ids must be unique within one upsert")
        self._tombstone(i for i in ids if i in self._pos)
        start = len(self._labels)
        self._faiss.add(vectors)
        self._labels.extend(ids)
        self._pos.update({item_id: start + n for n, item_id in enumerate(ids)})
        self._maybe_restructure()

    def delete(self, ids: Iterable[str]) -> None:
        self._tombstone(i for i in ids if i in self._pos)
        self._maybe_restructure()

    def vector(self, item_id: str) -> np.ndarray:
        return self._faiss.reconstruct(self._pos[item_id])

    def search(self, query: np.ndarray, k: int, exclude: Iterable[str] = ()) -> list[tuple[str, float]]:
        """The k nearest live items by inner product, best first, skipping `exclude`."""
        exclude = {e for e in exclude if e in self._pos}
        want = min(k + len(exclude), len(self._pos))
        if want <= 0:
            return []
        query = self._check(np.asarray(query, dtype=np.float32).reshape(1, -1), 1)
        scores, rows = self._faiss.search(query, want, params=self._search_params())
        hits = []
        for score, row in zip(scores[0], rows[0]):
            if row < 0:
                continue
            item_id = self._labels[row]
            if item_id is not None and item_id not in exclude:
                hits.append((item_id, float(score)))
        return hits[:k]

    def sample(self, n: int, rng: np.random.Generator, exclude: Iterable[str] = ()) -> list[str]:
        """Up to n distinct live item ids drawn uniformly, skipping `exclude`."""
        exclude = set(exclude)
        picked: dict[str, None] = {}
        for _ in range(4):  # a few draws usually suffice; tombstones and exclusions only thin them out
            want = n - len(picked)
            if want <= 0 or not self._labels:
                break
            rows = rng.choice(len(self._labels), size=min(len(self._labels), 2 * want), replace=False)
            for row in rows:
                label = self._labels[row]
                if label is not None and label not in exclude and len(picked) < n:
                    picked[label] = None
        return list(picked)

    def save(self, path: str | Path, meta: dict) -> None:
        """Write index, labels and `meta` to one zip file atomically (temp file, fsync, rename).

        The FAISS index streams into its zip member, so saving needs no second copy of it in memory.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
                    z.writestr("meta.json", json.dumps({**meta, "dim": self.dim}))
                    z.writestr("labels.json", json.dumps(self._labels))
                    with z.open("index.faiss", "w", force_zip64=True) as member:
                        faiss.write_index(self._faiss, faiss.PyCallbackIOWriter(member.write))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | Path, **params) -> tuple[VectorIndex, dict]:
        """Load a file written by `save`; the FAISS index is read straight from the file, so loading
        needs about the index's own size in memory. Only ever pass a path under the service's own data directory."""
        with zipfile.ZipFile(path) as z:
            meta = json.loads(z.read("meta.json"))
            index = cls(meta["dim"], **params)
            index._labels = json.loads(z.read("labels.json"))
            with z.open("index.faiss") as member:
                index._faiss = faiss.read_index(faiss.PyCallbackIOReader(member.read))
        if index._faiss.ntotal != len(index._labels):
            raise ValueError(f"{path}: index holds {index._faiss.ntotal} rows for {len(index._labels)} labels")
        index._pos = {label: n for n, label in enumerate(index._labels) if label is not None}
        if index.kind == HNSW:
            index._faiss.hnsw.efSearch = index.ef_search
        return index, meta

    def compact(self) -> None:
        """Rebuild from live rows only, choosing exact or HNSW by the live count."""
        kind = HNSW if len(self._pos) > self.exact_max else EXACT
        if not self.tombstones and kind == self.kind:
            return
        ids = list(self._pos)
        vectors = self._faiss.reconstruct_batch(np.array([self._pos[i] for i in ids], dtype=np.int64)) if ids else None
        self._faiss = self._new_faiss(kind)
        self._labels, self._pos, self._bitmap = [], {}, None
        if ids:
            self._faiss.add(vectors)
            self._labels = ids
            self._pos = {item_id: n for n, item_id in enumerate(ids)}

    def _maybe_restructure(self) -> None:
        wrong_kind = (self.kind == EXACT) != (len(self._pos) <= self.exact_max)
        # Switch back to exact only well below the threshold, so a catalogue hovering at it is not rebuilt on every write.
        if self.kind == HNSW and len(self._pos) > self.exact_max // 2:
            wrong_kind = False
        if wrong_kind or self.tombstones > max(1_000, len(self._labels) // 5):
            self.compact()

    def _tombstone(self, ids: Iterable[str]) -> None:
        for item_id in list(ids):
            self._labels[self._pos.pop(item_id)] = None
            self._bitmap = None

    def _search_params(self):
        selector = None
        if self.tombstones:
            if self._bitmap is None:
                live = np.array([label is not None for label in self._labels], dtype=bool)
                self._bitmap = np.packbits(live, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(self._labels), faiss.swig_ptr(self._bitmap))
        if self.kind == HNSW:
            params = faiss.SearchParametersHNSW(efSearch=self.ef_search)
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
            params._selector = selector  # keep the SWIG object alive as long as params
        return params

    def _new_faiss(self, kind: str):
        if kind == EXACT:
            return faiss.IndexFlatIP(self.dim)
        index = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.ef_construction
        index.hnsw.efSearch = self.ef_search
        return index

    def _check(self, vectors: np.ndarray, rows: int) -> np.ndarray:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (rows, self.dim):
            raise ValueError(f"expected vectors of shape ({rows}, {self.dim}), got {vectors.shape}")
        return vectors
