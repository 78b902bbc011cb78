"""The KB judge: a cross-encoder that reads a caller's question together with one KB entry and gives
the probability that the entry's answer answers it.

Sentence embeddings find the entries near a question, but "do you groom cats?" sits as near to
"Do you groom dogs?" as a true rewording does. The judge reads both texts at once, so it can see
that a different animal, day, age group or fee is asked for. It was fine-tuned from the same
shipped MiniLM weights on a multi-domain training set (`train/kb_judge.py`, `train/data/`), and runs
as an int8 ONNX graph (`backend/weights/kb_judge.int8.onnx`, built by `embeddings.build_judge`)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer

from app.services.kb.embeddings import cpu_session, model_dir

log = logging.getLogger(__name__)

WEIGHTS = Path(__file__).resolve().parents[3] / "weights" / "kb_judge.int8.onnx"
# A question and one entry (its question and answer): past this, the longer of the two is cut.
PAIR_MAX_TOKENS = 160
# A word the vocabulary cuts into this many pieces or more is a code, or a made-up or foreign name
# ("Zx6d85c", "Olaplex"): the judge reads it as noise, and its confidence in an otherwise plain
# rewording wavers around the bar from one such word to the next. When the question and the entry
# both have it, it already matches exactly; the judge reads the two without it and decides on the
# rest: what is asked about the thing and what the answer says. (On the tuned and salon sets every
# figure stayed within one answer; a rewording about a made-up treatment name was answered for 40
# names in 40, against 28.)
RARE_PIECES = 4
_WORD = re.compile(r"[^\W_][\w'-]*")


def entry_text(question: str, answer: str) -> str:
    """How an entry is shown to the judge (training and search alike)."""
    return f"{question} | {answer}"


class AnswerJudge:
    def __init__(self, weights: Path, tokenizer: Path) -> None:
        self.tokenizer = Tokenizer.from_file(str(tokenizer))
        self.tokenizer.enable_truncation(PAIR_MAX_TOKENS, strategy="longest_first")
        self.tokenizer.no_padding()
        self.session = cpu_session(str(weights))

    def readable(self, question: str, text: str) -> tuple[str, str]:
        """The pair without the unreadable words both have (see RARE_PIECES)."""
        shared = _words(question) & _words(text)
        rare = {w for w in shared if len(self.tokenizer.encode(w, add_special_tokens=False).ids) >= RARE_PIECES}
        return (_without(question, rare), _without(text, rare)) if rare else (question, text)

    def score(self, pairs: list[tuple[str, str]]) -> NDArray[np.float32]:
        """Probability, per (question, entry text) pair, that the entry answers the question.

        One pair per run: the int8 graph quantizes its activations over the whole batch, so in a
        batch a pair's score would depend on what else is in it (the other candidate, another
        caller's search): 0.11 alone against 0.16 beside another pair, enough to cross the bar.
        Alone, a question and an entry always get the same score; batching saved no CPU here
        (~4 ms a pair either way)."""
        scores = np.zeros(len(pairs), dtype=np.float32)
        for row, (question, text) in enumerate(pairs):
            enc = self.tokenizer.encode(*self.readable(question, text))
            feeds = {
                "input_ids": np.array([enc.ids], dtype=np.int64),
                "token_type_ids": np.array([enc.type_ids], dtype=np.int64),
                "position_ids": np.arange(len(enc.ids), dtype=np.int64),
                "key_bias": np.zeros((1, 1, 1, len(enc.ids)), dtype=np.float32),
                "mask": np.ones((1, len(enc.ids)), dtype=np.float32),
            }
            logit = self.session.run(None, feeds)[0][0]
            scores[row] = 1.0 / (1.0 + np.exp(-logit))
        return scores


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def _without(text: str, words: set[str]) -> str:
    for word in words:
        text = re.sub(rf"(?<![\w'-]){re.escape(word)}(?![\w'-])", "", text, flags=re.IGNORECASE)
    return re.sub(r"\s+", " ", text).strip()


def load_judge() -> AnswerJudge | None:
    """The judge if its weights and the model package (for the tokenizer) are installed."""
    path = model_dir()
    if path is None or not WEIGHTS.exists():
        if path is not None:
            log.warning("KB judge weights missing at %s (train/kb_judge.py writes them)", WEIGHTS)
        return None
    return AnswerJudge(WEIGHTS, path / "tokenizer.json")
