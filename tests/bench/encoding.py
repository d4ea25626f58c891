"""Encoder throughput on catalogue-like texts: the project encoder as configured, other batch sizes and
thread counts, bf16 autocast, and ONNX Runtime fp32/int8 when `onnxruntime` and `onnx` are installed.

Bounded in time: each variant encodes ENCODE_ITEMS texts ENCODE_ROUNDS times. Run it on a quiet machine:
two cores shared with anything else halve the figures.
"""
from __future__ import annotations

import gc
import importlib.util
import json
import random
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from app.settings import Settings, bundled_model_path
from embeddings.encoder import item_text, load_encoder

DEMO_CATALOGUE = Path(__file__).resolve().parents[2] / "demo" / "catalogue.jsonl"
DIM, K = 384, 10
ENCODE_ITEMS = 2_000
ENCODE_ROUNDS = 3
BATCH_SIZES = (32, 64, 128, 256)
THREADS = 2
ONNX_INPUTS = ("input_ids", "token_type_ids", "attention_mask")
DEFAULT_BATCH = Settings.model_fields["encode_batch_size"].default

Encode = Callable[[list[str]], np.ndarray]


def run() -> Iterator[dict]:
    yield encode_table()


def encode_table() -> dict:
    model_dir = bundled_model_path()
    texts = item_texts(ENCODE_ITEMS)
    with tempfile.TemporaryDirectory() as onnx_dir:
        variants = list(encoders(model_dir, Path(onnx_dir)))
        labels = [variant[:3] for variant in variants]
        rates, vectors = throughputs([variant[3] for variant in variants], texts)
    del variants  # free the models before the search benchmarks
    load_encoder.cache_clear()
    gc.collect()
    ref = labels.index(("torch fp32", DEFAULT_BATCH, THREADS))
    rows = [
        [*label, f"{rate:.0f}", f"{rate / rates[ref]:.2f}",
         f"{np.mean(np.sum(v * vectors[ref], axis=1)):.4f}", f"{neighbour_agreement(v, vectors[ref]):.3f}"]
        for label, rate, v in zip(labels, rates, vectors)
    ]
    words = [len(text.split()) for text in texts]
    onnx = "" if onnx_available() else " ONNX Runtime rows skipped: `onnxruntime` and `onnx` are not installed."
    return {
        "title": f"Encoding {len(texts):,} items ({min(words)}-{max(words)} words, mean {np.mean(words):.0f})",
        "note": f"items/s is the best of {ENCODE_ROUNDS} passes, taken in turns over all variants so that load from "
                f"other processes spreads over them, after a warm-up batch each; the reference is the project encoder as "
                f"configured (torch fp32, batch {DEFAULT_BATCH}, {THREADS} threads). `cos` is the mean cosine to the "
                f"reference vectors; `top-10` is the mean overlap of each item's 10 nearest items under the "
                f"reference vectors.{onnx}",
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


def encoders(model_dir: str, onnx_dir: Path) -> Iterator[tuple[str, int, int, Encode]]:
    """(backend, batch size, threads, encode) for each variant measured."""
    for batch in BATCH_SIZES:
        yield "torch fp32", batch, THREADS, with_threads(THREADS, load_encoder(model_dir, batch).encode)
    yield "torch fp32", DEFAULT_BATCH, 1, with_threads(1, load_encoder(model_dir, DEFAULT_BATCH).encode)
    for batch in BATCH_SIZES:
        yield "torch bf16 autocast", batch, THREADS, with_threads(THREADS, in_bf16(load_encoder(model_dir, batch).encode))
    if onnx_available():
        for backend, path in export_onnx(model_dir, onnx_dir).items():
            for batch in BATCH_SIZES:
                yield backend, batch, THREADS, OnnxEncoder(path, model_dir, batch, THREADS).encode


def with_threads(threads: int, encode: Encode) -> Encode:
    def encode_with_threads(texts: list[str]) -> np.ndarray:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return encode(texts)
        finally:
            torch.set_num_threads(before)

    return encode_with_threads


def in_bf16(encode: Encode) -> Encode:
    def encode_bf16(texts: list[str]) -> np.ndarray:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return encode(texts)

    return encode_bf16


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


def onnx_available() -> bool:
    return all(importlib.util.find_spec(name) for name in ("onnxruntime", "onnx"))


class HiddenStates(torch.nn.Module):
    """The transformer with positional inputs and one output, the shape torch.onnx.export traces."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, token_type_ids, attention_mask):
        return self.model(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask).last_hidden_state


def export_onnx(model_dir: str, out_dir: Path) -> dict[str, Path]:
    """The model's transformer as an ONNX graph, and the same graph with int8 weights (dynamic, per channel)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel, AutoTokenizer

    fp32, int8 = out_dir / "model.onnx", out_dir / "model-int8.onnx"
    model = HiddenStates(AutoModel.from_pretrained(model_dir, local_files_only=True).eval())
    # A padded example, so the traced graph applies the attention mask.
    example = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)(
        ["a short text", "a longer text, so that the short one is padded"], padding=True, return_tensors="pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, tuple(example[name] for name in ONNX_INPUTS), fp32, dynamo=False,
                          input_names=list(ONNX_INPUTS), output_names=["hidden"],
                          dynamic_axes={name: {0: "batch", 1: "tokens"} for name in (*ONNX_INPUTS, "hidden")})
    quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True)
    return {"onnxruntime fp32": fp32, "onnxruntime int8": int8}


class OnnxEncoder:
    """The sentence-transformers pipeline on ONNX Runtime: tokenise, transformer, mean pooling, normalise."""

    def __init__(self, model_path: Path, model_dir: str, batch_size: int, threads: int):
        import onnxruntime as ort
        from transformers import AutoTokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self.max_length = json.loads((Path(model_dir) / "sentence_bert_config.json").read_text())["max_seq_length"]
        self.batch_size = batch_size

    def encode(self, texts: list[str]) -> np.ndarray:
        order = np.argsort([-len(text) for text in texts], kind="stable")  # similar lengths share a batch
        vectors = np.empty((len(texts), DIM), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            rows = order[start:start + self.batch_size]
            tokens = self.tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                    max_length=self.max_length, return_tensors="np")
            hidden = self.session.run(None, {name: tokens[name] for name in ONNX_INPUTS})[0]
            mask = tokens["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / mask.sum(axis=1)
            vectors[rows] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return vectors
