"""What the encoding benchmark tries besides torch and OpenVINO: the same model on ONNX Runtime, exported
from the local weights with torch.onnx. For fp32 it barely beat torch here (docs/benchmarks.md), so the
service does not use it.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from embeddings.int8 import INPUTS, hidden_states_module, pool, pooling_mode


def export(model_dir: Path, path: Path) -> None:
    """Trace the transformer into an ONNX graph at `path` (written atomically)."""
    import torch
    from transformers import AutoTokenizer

    model = hidden_states_module(model_dir)
    # A padded example, so that the traced graph applies the attention mask.
    example = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)(
        ["a short text", "a longer text, so that the short one is padded"], padding=True, return_tensors="pt"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            tuple(example[name] for name in INPUTS),
            partial,
            dynamo=False,
            input_names=list(INPUTS),
            output_names=["hidden"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "hidden")},
        )
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

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        order = np.argsort([-len(text) for text in texts], kind="stable")  # similar lengths share a batch
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            tokens = self.tokenizer(
                [texts[i] for i in rows], padding=True, truncation=True, max_length=self.max_length, return_tensors="np"
            )
            hidden = self.session.run(None, {name: tokens[name] for name in INPUTS})[0]
            vectors[rows] = pool(hidden, tokens["attention_mask"], self.pooling, self.normalise)
        return vectors
