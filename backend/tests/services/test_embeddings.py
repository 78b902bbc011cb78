"""The numpy MiniLM encoder gives sentence-transformers' vectors (reference made with it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.services.kb.embeddings import DIMENSIONS, MAX_TOKENS, load_embedder

REFERENCE = json.loads((Path(__file__).parent.parent / "data" / "minilm_reference.json").read_text())

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def embedder():  # type: ignore[no-untyped-def]
    return load_embedder()


def test_vectors_match_sentence_transformers(embedder) -> None:  # type: ignore[no-untyped-def]
    vectors = embedder.embed(REFERENCE["texts"])
    assert vectors.shape == (len(REFERENCE["texts"]), DIMENSIONS)
    assert np.abs(vectors - np.array(REFERENCE["vectors"])).max() < 1e-5


def test_a_batch_gives_the_same_vectors_as_one_at_a_time(embedder) -> None:  # type: ignore[no-untyped-def]
    texts = ["Do you do perms?", "How much is a women's haircut with a blowout on Saturday morning?"]
    together = embedder.embed(texts)
    alone = np.stack([embedder.embed([t])[0] for t in texts])
    assert np.abs(together - alone).max() < 1e-5
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_very_long_text_is_truncated_not_refused(embedder) -> None:  # type: ignore[no-untyped-def]
    long = "Do you do highlights? " * 500
    assert len(embedder.tokenizer.encode(long).ids) == MAX_TOKENS
    assert embedder.embed([long]).shape == (1, DIMENSIONS)
    assert embedder.embed([]).shape == (0, DIMENSIONS)


def test_common_and_rare_words(embedder) -> None:  # type: ignore[no-untyped-def]
    assert embedder.is_common_word("hair") and embedder.is_common_word("price")
    assert not embedder.is_common_word("haircut")  # WordPiece splits it: hair, ##cut
    assert not embedder.is_common_word("zxqvbalayage")
