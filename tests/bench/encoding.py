"""Encoder throughput on catalogue-like texts: the service's torch encoder in fp32 (and bf16, where the CPU
computes it natively) at several batch sizes and with one thread, its int8 encoder (NNCF-quantised, on
OpenVINO), and what was tried besides: ONNX Runtime with fp32 and dynamically quantised int8 weights.
Beside them, the fp32 bound: the model's cost per item and what this machine's matrix multiply allows.

Bounded in time: each variant encodes ENCODE_ITEMS texts ENCODE_ROUNDS times. Run it on a quiet machine:
two cores shared with anything else halve the figures.
"""

from __future__ import annotations

import gc
import json
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from app.settings import Settings, bundled_model_path
from embeddings.encoder import _load_encoder, item_text, load_encoder, model_fingerprint, native_bf16
from tests.bench.onnx import OnnxEncoder, export

DEMO_CATALOGUE = Path(__file__).resolve().parents[2] / "demo" / "catalogue.jsonl"
DIM, K = 384, 10
ENCODE_ITEMS = 2_000
ENCODE_ROUNDS = 3
BATCH_SIZES = (32, 64, 128, 256)
INT8_BATCH_SIZES = (16, 32, 64)
THREADS = 2
MATMUL_ROUNDS = 100
DEFAULT_BATCH = Settings.model_fields["encode_batch_size"].default

Encode = Callable[[list[str]], np.ndarray]


def run() -> Iterator[dict]:
    yield encode_table()


def encode_table() -> dict:
    model_dir = bundled_model_path()
    texts = item_texts(ENCODE_ITEMS)
    with tempfile.TemporaryDirectory() as scratch:
        variants = list(encoders(model_dir, Path(scratch)))
        labels = [variant[:3] for variant in variants]
        rates, vectors = throughputs([variant[3] for variant in variants], texts)
    del variants  # free the models before the search benchmarks
    _load_encoder.cache_clear()
    gc.collect()
    ref = labels.index(("torch fp32", DEFAULT_BATCH, THREADS))
    rows = [
        [
            *label,
            f"{rate:.0f}",
            f"{rate / rates[ref]:.2f}",
            f"{np.mean(np.sum(v * vectors[ref], axis=1)):.4f}",
            f"{neighbour_agreement(v, vectors[ref]):.3f}",
        ]
        for label, rate, v in zip(labels, rates, vectors)
    ]
    words = [len(text.split()) for text in texts]
    gflop, gflops = model_gflop(model_dir, texts), matmul_gflops()
    return {
        "title": f"Encoding {len(texts):,} items ({min(words)}-{max(words)} words, mean {np.mean(words):.0f})",
        "note": f"items/s is the best of {ENCODE_ROUNDS} passes, taken in turns over all variants so that load from "
        f"other processes spreads over them, after a warm-up batch each; the reference is the "
        f"torch encoder in fp32 (batch {DEFAULT_BATCH}, {THREADS} threads); the service encodes in bf16 where "
        f"the CPU has it (FEEDLOOP_ENCODER_PRECISION=auto), else fp32, and `openvino int8` with "
        f"FEEDLOOP_ENCODER_PRECISION=int8 (quantised on embeddings/calibration.txt, texts from the same "
        f"demo catalogue as these). `cos` is the "
        f"mean cosine to the reference vectors; `top-10` is the mean overlap of each item's 10 nearest items "
        f"under the reference vectors. The model costs {gflop:.2f} GFLOP an item here and this machine's fp32 "
        f"matrix multiply runs at {gflops:.0f} GFLOP/s on {THREADS} threads, so no fp32 backend can pass "
        f"{gflops / gflop:.0f} items/s. torch bf16 is measured only where the CPU computes bf16 natively.",
        "columns": ["backend", "batch", "threads", "items/s", "x reference", "cos", "top-10"],
        "rows": rows,
    }


def item_texts(n: int, seed: int = 0) -> list[str]:
    """Catalogue-like texts of about 20-40 words, recombined from the demo catalogue."""
    demo = [json.loads(line) for line in DEMO_CATALOGUE.read_text().splitlines() if line.strip()]
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        a, b = rng.sample(demo, 2)
        tags = rng.sample(a["tags"] + b["tags"], min(4, len(a["tags"] + b["tags"])))
        texts.append(item_text(a["title"], f"{a['description']} {b['description']}", a["category"], tags))
    return texts


def encoders(model_dir: str, scratch: Path) -> Iterator[tuple[str, int, int, Encode]]:
    """(backend, batch size, threads, encode) for each variant measured."""
    for precision in ("fp32", "bf16") if native_bf16() else ("fp32",):  # emulated bf16 is ~5x slower than fp32
        for batch in BATCH_SIZES:
            yield f"torch {precision}", batch, THREADS, with_threads(THREADS, load_encoder(model_dir, batch, precision).encode)
    yield "torch fp32", DEFAULT_BATCH, 1, with_threads(1, load_encoder(model_dir, DEFAULT_BATCH, "fp32").encode)
    torch.set_num_threads(THREADS)  # the int8 encoder takes its thread budget from torch's
    for batch in INT8_BATCH_SIZES:
        yield "openvino int8", batch, THREADS, load_encoder(model_dir, batch, "int8", str(scratch / "encoders")).encode
    model_id = model_fingerprint(model_dir)
    for backend, graph in onnx_graphs(model_dir, scratch).items():
        for batch in BATCH_SIZES:
            yield backend, batch, THREADS, OnnxEncoder(model_dir, graph, model_id, batch, THREADS).encode


def model_gflop(model_dir: str, texts: list[str]) -> float:
    """The transformer's floating-point operations per text: its matrix multiplies, attention included."""
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    lengths = np.array([len(ids) for ids in tokenizer(texts)["input_ids"]], dtype=float)
    h = config.hidden_size
    per_token = 4 * h * h + 2 * h * config.intermediate_size  # query, key, value, output; the feed-forward pair
    attention = 2 * h * lengths**2  # scores and their weighted sum
    return float(np.mean(2 * config.num_hidden_layers * (per_token * lengths + attention)) / 1e9)


def matmul_gflops(rows: int = 64 * 44, inner: int = 384, cols: int = 1536) -> float:
    """The best fp32 GFLOP/s of a matrix multiply the size of a feed-forward layer on 64 texts of 44 tokens."""
    torch.set_num_threads(THREADS)
    a, b = torch.randn(rows, inner), torch.randn(inner, cols)
    best = 0.0
    with torch.inference_mode():
        for _ in range(MATMUL_ROUNDS):
            start = time.perf_counter()
            a @ b
            best = max(best, 2 * rows * inner * cols / (time.perf_counter() - start) / 1e9)
    return best


def with_threads(threads: int, encode: Encode) -> Encode:
    def encode_with_threads(texts: list[str]) -> np.ndarray:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return encode(texts)
        finally:
            torch.set_num_threads(before)

    return encode_with_threads


def throughputs(encoders: list[Encode], texts: list[str]) -> tuple[list[float], list[np.ndarray]]:
    """Each encoder's best items/s over ENCODE_ROUNDS passes, taken in turns, and its vectors."""
    for encode in encoders:
        encode(texts[:64])
    rates, vectors = [0.0] * len(encoders), [None] * len(encoders)
    for _ in range(ENCODE_ROUNDS):
        for n, encode in enumerate(encoders):
            start = time.perf_counter()
            vectors[n] = encode(texts)
            rates[n] = max(rates[n], len(texts) / (time.perf_counter() - start))
    return rates, vectors


def neighbour_agreement(vectors: np.ndarray, reference: np.ndarray, k: int = K) -> float:
    """Mean overlap of each row's k nearest rows under `vectors` and under `reference`."""

    def nearest(v: np.ndarray) -> np.ndarray:
        sims = v @ v.T
        np.fill_diagonal(sims, -np.inf)
        return np.argpartition(-sims, k, axis=1)[:, :k]

    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(nearest(vectors), nearest(reference))]))


def onnx_graphs(model_dir: str, out_dir: Path) -> dict[str, Path]:
    """The graph the service exports, and the same graph with int8 weights (dynamic, per channel)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32, int8 = out_dir / "model.onnx", out_dir / "model-int8.onnx"
    export(Path(model_dir), fp32)
    quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True)
    return {"onnxruntime fp32": fp32, "onnxruntime int8": int8}
