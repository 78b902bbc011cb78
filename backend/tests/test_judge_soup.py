"""`train/judge_graph.py`: judges averaged weight by weight into the one graph the app loads."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from app.services.kb.embeddings import build_judge, model_dir
from app.services.kb.judge import WEIGHTS, AnswerJudge, entry_text

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "train"))
from judge_graph import graph_weights, model_weights, soup

pytestmark = pytest.mark.model

PAIRS = [
    ("do you do cats too?", entry_text("Do you groom cats?", "Yes, cat grooming is $70.")),
    ("where are you located?", entry_text("What are your hours?", "We're open 9 to 6, Monday to Saturday.")),
]


def logits(graph: Path) -> np.ndarray:
    probabilities = AnswerJudge(graph, model_dir() / "tokenizer.json").score(PAIRS).astype(np.float64)
    return np.log(probabilities / (1.0 - probabilities))


def test_the_mean_of_a_judge_and_itself_is_that_judge(tmp_path: Path) -> None:
    out = tmp_path / "soup.onnx"
    soup([WEIGHTS, WEIGHTS], out)
    assert out.read_bytes() == WEIGHTS.read_bytes()


def test_each_weight_is_the_members_mean(tmp_path: Path) -> None:
    """A judge whose output bias is 2 higher, averaged with the shipped one: every logit 1 higher."""
    shifted = onnx.load(str(WEIGHTS))
    bias = next(t for t in shifted.graph.initializer if t.name == "head.b")
    bias.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(bias) + np.float32(2.0), "head.b"))
    onnx.save(shifted, str(tmp_path / "shifted.onnx"))
    soup([WEIGHTS, tmp_path / "shifted.onnx"], tmp_path / "soup.onnx")
    np.testing.assert_allclose(logits(tmp_path / "soup.onnx"), logits(WEIGHTS) + 1.0, atol=1e-3)


def test_a_judge_read_back_into_the_models_names_builds_the_same_graph() -> None:
    """`--init` trains on from a judge's weights: read back under the model's names, they must
    write the very graph they came from (each layer's query, key and value in their places)."""
    rebuilt = onnx.load_from_string(build_judge(model_weights(WEIGHTS)))
    original = graph_weights(WEIGHTS)
    floats = [t for t in rebuilt.graph.initializer if t.data_type == onnx.TensorProto.FLOAT]
    assert {t.name for t in floats} == set(original)
    for tensor in floats:
        np.testing.assert_array_equal(numpy_helper.to_array(tensor), original[tensor.name], err_msg=tensor.name)
