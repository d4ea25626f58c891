import numpy as np
import pytest

from embeddings.index import EXACT, HNSW, VectorIndex


def unit_vectors(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def ids(n: int, start: int = 0) -> list[str]:
    return [f"item-{i}" for i in range(start, start + n)]


def test_search_returns_nearest_items_best_first():
    vectors = unit_vectors(100)
    index = VectorIndex(16)
    index.upsert(ids(100), vectors)
    hits = index.search(vectors[7], 5)
    assert hits[0] == ("item-7", pytest.approx(1.0, abs=1e-5))
    exact = np.argsort(-(vectors @ vectors[7]))[:5]
    assert [h[0] for h in hits] == [f"item-{i}" for i in exact]
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


def test_update_replaces_the_vector_and_delete_removes_the_item():
    vectors = unit_vectors(20)
    index = VectorIndex(16)
    index.upsert(ids(20), vectors)
    index.upsert(["item-3"], vectors[[11]])
    assert len(index) == 20 and index.tombstones == 1
    assert {h[0] for h in index.search(vectors[11], 2)} == {"item-3", "item-11"}
    index.delete(["item-11", "unknown"])
    assert "item-11" not in index
    assert all(h[0] != "item-11" for h in index.search(vectors[11], 20))
    assert len(index.search(vectors[0], 50)) == 19


def test_exclude_skips_items_and_still_fills_k():
    vectors = unit_vectors(30)
    index = VectorIndex(16)
    index.upsert(ids(30), vectors)
    hits = index.search(vectors[0], 5, exclude=["item-0", "item-1"])
    assert len(hits) == 5 and {"item-0", "item-1"}.isdisjoint(h[0] for h in hits)


def test_switches_to_hnsw_above_the_threshold_and_back_when_small():
    vectors = unit_vectors(400, seed=1)
    index = VectorIndex(16, exact_max=100)
    index.upsert(ids(90), vectors[:90])
    assert index.kind == EXACT
    index.upsert(ids(310, 90), vectors[90:])
    assert index.kind == HNSW and len(index) == 400
    assert index.search(vectors[250], 1)[0][0] == "item-250"
    index.delete(ids(380))
    assert index.kind == EXACT and len(index) == 20
    assert index.search(vectors[390], 1)[0][0] == "item-390"


def test_hnsw_recall_against_exact_search():
    vectors = unit_vectors(3000, dim=32, seed=2)
    exact, approx = VectorIndex(32, exact_max=10**6), VectorIndex(32, exact_max=100)
    exact.upsert(ids(3000), vectors)
    approx.upsert(ids(3000), vectors)
    queries = unit_vectors(50, dim=32, seed=3)
    recall = np.mean([len({h[0] for h in exact.search(q, 10)} & {h[0] for h in approx.search(q, 10)}) / 10 for q in queries])
    assert recall >= 0.95


def test_tombstones_are_compacted_away():
    vectors = unit_vectors(3000)
    index = VectorIndex(16, exact_max=10**6)
    index.upsert(ids(3000), vectors)
    index.delete(ids(1500))
    assert index.tombstones == 0 and len(index) == 1500


def test_save_and_load_round_trip_with_tombstones(tmp_path):
    vectors = unit_vectors(50)
    index = VectorIndex(16)
    index.upsert(ids(50), vectors)
    index.delete(["item-4"])
    index.save(tmp_path / "index.zip", {"applied": 12})
    loaded, meta = VectorIndex.load(tmp_path / "index.zip")
    assert meta == {"applied": 12, "dim": 16}
    assert len(loaded) == 49 and "item-4" not in loaded
    assert loaded.search(vectors[9], 3) == index.search(vectors[9], 3)
    assert [p.name for p in tmp_path.iterdir()] == ["index.zip"]  # no temporary file left behind


def test_vectors_of_the_wrong_shape_are_refused():
    index = VectorIndex(16)
    with pytest.raises(ValueError, match="shape"):
        index.upsert(["a"], unit_vectors(1, dim=8))
    with pytest.raises(ValueError, match="unique"):
        index.upsert(["a", "a"], unit_vectors(2))
