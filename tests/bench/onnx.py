"""What the encoding benchmark tries besides torch: the same model on ONNX Runtime, exported from the
local weights with torch.onnx. For fp32 it barely beat torch here (docs/benchmarks.md), so the service
does not use it.

Supports the common layout: a Transformer module, then mean or CLS pooling, then optional normalisation.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

INPUTS = ("input_ids", "token_type_ids", "attention_mask")


class UnsupportedModel(ValueError):
    pass


def pooling_mode(model_dir: Path) -> str:
    """'mean' or 'cls' for a Transformer → Pooling [→ Normalize] pipeline; UnsupportedModel otherwise."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text())
    except FileNotFoundError:
        raise UnsupportedModel(f"{model_dir} has no modules.json") from None
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k != "Normalize" for k in kinds[2:]):
        raise UnsupportedModel(f"modules {kinds}: only Transformer, Pooling[, Normalize] run on ONNX")
    config = json.loads((model_dir / modules[1]["path"] / "config.json").read_text())
    enabled = {key for key, on in config.items() if key.startswith("pooling_mode_") and on}
    modes = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}
    if len(enabled) != 1 or not enabled <= modes.keys():
        raise UnsupportedModel(f"pooling {sorted(enabled)}: only mean or CLS pooling runs on ONNX")
    return modes[enabled.pop()]


def export(model_dir: Path, path: Path) -> None:
    """Trace the transformer into an ONNX graph at `path` (written atomically)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    class HiddenStates(torch.nn.Module):
        def __init__(self, model: torch.nn.Module):
            super().__init__()
            self.model = model

        def forward(self, input_ids, token_type_ids, attention_mask):
            return self.model(input_ids=input_ids, token_type_ids=token_type_ids,
                              attention_mask=attention_mask).last_hidden_state

    model = HiddenStates(AutoModel.from_pretrained(model_dir, local_files_only=True).eval())
    # A padded example, so that the traced graph applies the attention mask.
    example = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)(
        ["a short text", "a longer text, so that the short one is padded"], padding=True, return_tensors="pt")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, tuple(example[name] for name in INPUTS), partial, dynamo=False,
                          input_names=list(INPUTS), output_names=["hidden"],
                          dynamic_axes={name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "hidden")})
    os.replace(partial, path)


class OnnxEncoder:
    """Tokenise, run the graph, pool, normalise: the sentence-transformers pipeline on ONNX Runtime."""

    def __init__(self, model_dir: str | Path, graph: Path, model_id: str, batch_size: int = 64, threads: int = 0):
        import onnxruntime as ort
        from transformers import AutoTokenizer

        model_dir = Path(model_dir)
        self.pooling = pooling_mode(model_dir)
        self.normalise = "Normalize" in (model_dir / "modules.json").read_text()
        if not graph.exists():
            export(model_dir, graph)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self.max_length = json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"]
        self.batch_size = batch_size
        self.model_id = model_id
        self.dim = int(self.session.get_outputs()[0].shape[-1])

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        order = np.argsort([-len(text) for text in texts], kind="stable")  # similar lengths share a batch
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            rows = order[start:start + self.batch_size]
            tokens = self.tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                    max_length=self.max_length, return_tensors="np")
            hidden = self.session.run(None, {name: tokens[name] for name in INPUTS})[0]
            if self.pooling == "mean":
                mask = tokens["attention_mask"][..., None].astype(np.float32)
                pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            else:
                pooled = hidden[:, 0]
            if self.normalise:
                pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            vectors[rows] = pooled
        return vectors
