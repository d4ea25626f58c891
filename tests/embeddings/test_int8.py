"""The int8 encoder (NNCF-quantised model on OpenVINO): close to the fp32 vectors, quantised once, reused."""

import shutil

import numpy as np
import pytest

from app.settings import ConfigError, bundled_model_path, load_settings
from embeddings.encoder import _load_encoder, load_encoder
from embeddings.int8 import Int8Encoder
from tests.helpers import CATALOGUE, make_app, new_key

TEXTS = [
    "pasta dinner",
    "Spaghetti carbonara with eggs, pecorino and guanciale",
    "Wireless headphones",
    "A space station crew hears a signal from a dead star. Category: books. Tags: science fiction",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("encoders")


@pytest.fixture(scope="module")
def int8(cache):
    return load_encoder(bundled_model_path(), 4, "int8", str(cache))


def test_int8_vectors_are_the_fp32_ones_to_within_quantisation(int8):
    fp32 = load_encoder(bundled_model_path())
    a, b = int8.encode(TEXTS), fp32.encode(TEXTS)
    assert a.shape == b.shape and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(a * b, axis=1)
    assert cosines.min() > 0.98 and cosines.mean() > 0.99
    assert int8.encode([]).shape == (0, int8.dim)


def test_int8_vectors_are_never_mixed_with_the_fp32_models(int8):
    assert int8.model_id != load_encoder(bundled_model_path()).model_id


def test_the_quantised_model_is_kept_and_reused(int8, cache):
    files = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}
    assert {p.name for p in files} == {"model.xml", "model.bin"}
    again = Int8Encoder(bundled_model_path(), cache, 4)  # a fresh encoder, as another process would load
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()} == files
    assert np.array_equal(again.encode(TEXTS), int8.encode(TEXTS))


def test_batching_does_not_change_int8_vectors(int8):
    texts = [f"item number {i} about gardening" for i in range(10)] + TEXTS
    whole = int8.encode(texts)
    one_by_one = np.vstack([int8.encode([t]) for t in texts])
    assert np.allclose(whole, one_by_one, atol=1e-5)


def test_the_service_searches_with_the_int8_encoder(tmp_path, int8, cache):
    home = tmp_path / "home"
    shutil.copytree(cache, home / "encoders")  # as if an earlier start had quantised the model
    app = make_app({"home": str(home), "env": "test", "encoder_precision": "int8"})
    client, auth = app.test_client(), {"Authorization": f"Bearer {new_key(app)}"}
    assert client.post("/api/v1/items", json={"items": CATALOGUE}, headers=auth).status_code == 200
    hits = client.get("/api/v1/search", query_string={"q": "flying camera", "k": 1}, headers=auth).json["items"]
    assert hits[0]["id"] == "drone"
    assert app.extensions["catalogue"].encoder.model_id == int8.model_id
    app.extensions["db_engine"].dispose()


def test_int8_without_openvino_is_a_clear_configuration_error(tmp_path, monkeypatch):
    import app.settings

    monkeypatch.setattr(app.settings, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"pip install 'feedloop\[int8\]'"):
        load_settings({"home": str(tmp_path), "encoder_precision": "int8"})


@pytest.mark.parametrize("has_int8_dot", [True, False])
def test_int8_on_a_cpu_without_int8_dot_products_warns_that_fp32_is_faster(cache, monkeypatch, caplog, has_int8_dot):
    monkeypatch.setattr("embeddings.encoder.native_int8_dot", lambda: has_int8_dot)
    _load_encoder.__wrapped__(bundled_model_path(), 4, "int8", str(cache))  # uncached: the warning comes at load
    warned = [r for r in caplog.records if r.levelname == "WARNING" and "no faster than fp32" in r.message]
    assert bool(warned) is not has_int8_dot
