"""Sentence-transformers encoder, loaded only from a local directory."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

log = logging.getLogger(__name__)


def item_text(title: str, description: str = "", category: str | None = None, tags: Iterable[str] = ()) -> str:
    """The text an item is embedded from: title, description, category and tags."""
    parts = [title.strip()]
    if description and description.strip():
        parts.append(description.strip())
    if category:
        parts.append(f"Category: {category}")
    tags = [t for t in tags if t]
    if tags:
        parts.append("Tags: " + ", ".join(tags))
    return ". ".join(parts)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def model_fingerprint(model_dir: str | Path) -> str:
    """Identifies a model by its files' names and sizes, so vectors from another model are never mixed in."""
    root = Path(model_dir)
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(f"{path.relative_to(root)}:{path.stat().st_size};".encode())
    return f"{root.name}-{h.hexdigest()[:12]}"


class TextEncoder(Protocol):
    model_id: str  # vectors from different model_ids are never mixed in one index
    dim: int
    batch_size: int
    precision: str

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def native_bf16() -> bool:
    """Whether this CPU computes bf16 natively; elsewhere bf16 is emulated and slower than fp32."""
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def native_int8_dot() -> bool:
    """Whether this CPU has int8 dot-product instructions; with AVX2 alone the int8 encoder measured no faster
    than fp32 (docs/benchmarks.md)."""
    import torch

    return bool(torch.cpu._is_vnni_supported() or torch.cpu._is_amx_tile_supported())


def encoder_id(model_dir: str | Path, precision: str) -> str:
    """The model id an encoder of `model_dir` at `precision` gives its vectors, known without loading it."""
    return f"{model_fingerprint(model_dir)}-int8" if precision == "int8" else model_fingerprint(model_dir)


class Encoder:
    def __init__(self, model_dir: str | Path, batch_size: int = 64, precision: str = "fp32"):
        """`precision` "bf16" runs the transformer under bf16 autocast; pooling and normalising stay fp32."""
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # a weight-loading bar per process is noise in CLI output and logs

        model_dir = Path(model_dir)
        if not (model_dir / "modules.json").exists() and not (model_dir / "config.json").exists():
            raise FileNotFoundError(f"{model_dir} holds no sentence-transformers model")
        if precision not in ("bf16", "fp32"):
            raise ValueError(f"precision must be bf16 or fp32, not {precision!r}")
        self.batch_size = batch_size
        self.precision = precision
        self.model_id = encoder_id(model_dir, precision)
        self._model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
        self.dim = int(self._model.get_embedding_dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        import torch

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            vectors = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                convert_to_tensor=True,
                show_progress_bar=False,
            )
        vectors = torch.nn.functional.normalize(vectors.float(), dim=1)
        return np.ascontiguousarray(vectors.numpy(), dtype=np.float32)


def load_encoder(model_dir: str, batch_size: int = 64, precision: str = "fp32", cache_dir: str | None = None) -> TextEncoder:
    """One encoder per process and model: loading costs seconds and the weights are read-only.
    `precision` "auto" is bf16 where the CPU has it natively, else fp32; "int8" is the model quantised and
    run by OpenVINO (embeddings.int8), kept under `cache_dir` (which only int8 uses, so only int8 keys on it)."""
    return _load_encoder(model_dir, batch_size, precision, cache_dir if precision == "int8" else None)


@lru_cache(maxsize=4)
def _load_encoder(model_dir: str, batch_size: int, precision: str, cache_dir: str | None) -> TextEncoder:
    if precision == "int8":
        import torch

        from embeddings.int8 import Int8Encoder

        if cache_dir is None:
            raise ValueError("int8 needs a cache directory for the quantised model")
        if not native_int8_dot():
            log.warning(
                "int8 encoding on a CPU without AVX512-VNNI or AMX: no faster than fp32 here, and its "
                "vectors differ a little from the model's; fp32 is the better choice on this machine"
            )
        # The process's thread budget, as set for torch: all cores for imports, one in a serving worker.
        return Int8Encoder(model_dir, cache_dir, batch_size, threads=torch.get_num_threads())
    if precision == "auto":
        precision = "bf16" if native_bf16() else "fp32"
    return Encoder(model_dir, batch_size, precision)
