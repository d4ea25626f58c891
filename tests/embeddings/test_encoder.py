import numpy as np
import pytest

from app.settings import bundled_model_path
from embeddings.encoder import item_text, load_encoder, model_fingerprint


@pytest.fixture(scope="module")
def encoder():
    return load_encoder(bundled_model_path())


def test_item_text_joins_title_description_category_and_tags():
    text = item_text("Carbonara", "Eggs and pecorino", "recipes", ["italian", "pasta"])
    assert text == "Carbonara. Eggs and pecorino. Category: recipes. Tags: italian, pasta"
    assert item_text("Carbonara") == "Carbonara"


def test_vectors_are_unit_length_float32_rows(encoder):
    vectors = encoder.encode(["a short text", "another, longer text about cooking pasta at home"])
    assert vectors.shape == (2, encoder.dim) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, encoder.dim)


def test_related_texts_are_closer_than_unrelated_ones(encoder):
    query, recipe, gadget = encoder.encode(["pasta dinner", "Spaghetti carbonara with eggs", "Wireless headphones"])
    assert query @ recipe > query @ gadget + 0.1


def test_batching_does_not_change_vectors(encoder):
    texts = [f"item number {i} about gardening" for i in range(10)]
    whole = encoder.encode(texts)
    one_by_one = np.vstack([encoder.encode([t]) for t in texts])
    assert np.allclose(whole, one_by_one, atol=1e-5)


def test_model_fingerprint_changes_with_the_model_files(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    before = model_fingerprint(tmp_path)
    (tmp_path / "weights.bin").write_bytes(b"123")
    assert model_fingerprint(tmp_path) != before


def test_a_directory_without_a_model_is_refused(tmp_path):
    from embeddings.encoder import Encoder

    with pytest.raises(FileNotFoundError, match="no sentence-transformers model"):
        Encoder(tmp_path)


def test_bf16_gives_the_fp32_vectors_to_within_rounding(encoder):
    texts = ["pasta dinner", "Spaghetti carbonara with eggs, pecorino and guanciale", "Wireless headphones", "x"]
    bf16 = load_encoder(bundled_model_path(), 2, "bf16")  # batch 2: padded batches of mixed lengths
    a, b = bf16.encode(texts), encoder.encode(texts)
    assert bf16.model_id == encoder.model_id and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(a * b, axis=1)) > 0.999


def test_auto_precision_is_bf16_only_where_the_cpu_has_it():
    from embeddings.encoder import native_bf16

    auto = load_encoder(bundled_model_path(), 64, "auto")
    assert auto.precision == ("bf16" if native_bf16() else "fp32")
    with pytest.raises(ValueError, match="precision must be bf16 or fp32"):
        load_encoder(bundled_model_path(), 64, "fp16")
