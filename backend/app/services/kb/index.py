"""In-memory search index over the active KB entries: embedding matrices plus an inverted index.

An entry is found by its question, its question with the answer, and each phrasing callers used
for it (one row each in a phrasing matrix, pointing back at the entry). Entries carry their embeddings from the database (computed once, when written); the index only
copies them into matrices. It catches up with the database by revision, so several API processes
sharing one PostgreSQL all see every write."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.services.kb.embeddings import DIMENSIONS
from app.services.kb.lexicon import Lexicon, content_stems
from app.services.views import KnowledgeBaseEntryView


@dataclass(frozen=True)
class PhrasingRow:
    id: str
    text: str
    normalized: str
    embedding: bytes | None


@dataclass(frozen=True)
class IndexRow:
    """What the index needs of one entry, as read from the database."""

    row: Any  # anything KnowledgeBaseEntryView can be read from
    normalized_question: str
    question_embedding: bytes | None
    qa_embedding: bytes | None
    phrasings: tuple[PhrasingRow, ...] = ()

    @property
    def id(self) -> str:
        return self.row.id


@dataclass(slots=True)
class Indexed:
    """Kept lean: a 100k-entry KB holds 100k of these. Facets are worked out for candidates only."""

    row: Any  # the entry's database row: what a view needs, built for candidates only
    normalized_question: str
    terms: frozenset[str]
    has_vectors: bool
    # (phrasing matrix row or -1 without a vector, text, normalized text) per phrasing
    phrasings: tuple[tuple[int, str, str], ...] = ()

    @property
    def view(self) -> KnowledgeBaseEntryView:
        return KnowledgeBaseEntryView.model_validate(self.row)


def to_vector(blob: bytes | None) -> NDArray[np.float32] | None:
    if blob is None or len(blob) != DIMENSIONS * 4:
        return None
    return np.frombuffer(blob, dtype=np.float32)


class KnowledgeIndex:
    def __init__(self, lexicon: Lexicon, capacity: int = 1024) -> None:
        self.lexicon = lexicon
        self.revision = -1
        self.slots: dict[str, int] = {}
        self.entries: list[Indexed | None] = []
        self.free: list[int] = []
        self.question_vectors = np.zeros((capacity, DIMENSIONS), dtype=np.float32)
        self.qa_vectors = np.zeros((capacity, DIMENSIONS), dtype=np.float32)
        # Rows that are empty, retired or have no vectors score this, so they never rank.
        self.penalty = np.full(capacity, -10.0, dtype=np.float32)
        self.postings: dict[str, set[int]] = {}
        self.document_frequency: Counter[str] = Counter()
        # normalized question or phrasing -> slots of the entries asked that way
        self.exact: dict[str, set[int]] = {}
        self.phrase_vectors = np.zeros((0, DIMENSIONS), dtype=np.float32)
        self.phrase_owner = np.zeros(0, dtype=np.int64)  # entry slot of each phrasing row; -1 when free
        self.phrase_free: list[int] = []

    def __len__(self) -> int:
        return len(self.slots)

    def apply(self, rows: Iterable[IndexRow], revision: int) -> None:
        for row in rows:
            self._remove(row.id)
            if row.row.retired_at is None:
                self._add(row)
        self.revision = max(self.revision, revision)

    def _add(self, row: IndexRow) -> None:
        slot = self.free.pop() if self.free else len(self.entries)
        if slot == len(self.entries):
            self.entries.append(None)
            self._ensure_capacity(slot + 1)
        question, answer = row.row.question, row.row.answer
        said = " ".join(p.text for p in row.phrasings)
        terms = frozenset(content_stems(f"{question} {answer} {said}"))
        question_vector, qa_vector = to_vector(row.question_embedding), to_vector(row.qa_embedding)
        has_vectors = question_vector is not None and qa_vector is not None
        phrasings = tuple((self._add_phrasing(slot, p.embedding), p.text, p.normalized) for p in row.phrasings)
        self.entries[slot] = Indexed(
            row=row.row,
            normalized_question=row.normalized_question,
            terms=terms,
            has_vectors=has_vectors,
            phrasings=phrasings,
        )
        for key in {row.normalized_question, *(p.normalized for p in row.phrasings)}:
            self.exact.setdefault(key, set()).add(slot)
        if has_vectors:
            self.question_vectors[slot] = question_vector
            self.qa_vectors[slot] = qa_vector
            self.penalty[slot] = 0.0
        self.slots[row.id] = slot
        for term in terms:
            self.postings.setdefault(term, set()).add(slot)
            self.document_frequency[term] += 1

    def _remove(self, entry_id: str) -> None:
        slot = self.slots.pop(entry_id, None)
        if slot is None:
            return
        entry = self.entries[slot]
        assert entry is not None
        for term in entry.terms:
            self.postings[term].discard(slot)
            self.document_frequency[term] -= 1
            if not self.document_frequency[term]:
                del self.document_frequency[term]
                del self.postings[term]
        for key in {entry.normalized_question, *(normalized for _, _, normalized in entry.phrasings)}:
            self.exact[key].discard(slot)
            if not self.exact[key]:
                del self.exact[key]
        for row, _, _ in entry.phrasings:
            if row >= 0:
                self.phrase_owner[row] = -1
                self.phrase_free.append(row)
        self.entries[slot] = None
        self.penalty[slot] = -10.0
        self.free.append(slot)

    def _add_phrasing(self, slot: int, blob: bytes | None) -> int:
        vector = to_vector(blob)
        if vector is None:
            return -1
        if not self.phrase_free:
            size = len(self.phrase_owner)
            grown = max(16, size * 2)
            vectors = np.zeros((grown, DIMENSIONS), dtype=np.float32)
            vectors[:size] = self.phrase_vectors
            owner = np.full(grown, -1, dtype=np.int64)
            owner[:size] = self.phrase_owner
            self.phrase_vectors, self.phrase_owner = vectors, owner
            self.phrase_free.extend(range(grown - 1, size - 1, -1))
        row = self.phrase_free.pop()
        self.phrase_vectors[row] = vector
        self.phrase_owner[row] = slot
        return row

    def _ensure_capacity(self, size: int) -> None:
        capacity = len(self.penalty)
        if size <= capacity:
            return
        grown = max(size, capacity * 2)
        for name in ("question_vectors", "qa_vectors"):
            old = getattr(self, name)
            new = np.zeros((grown, DIMENSIONS), dtype=np.float32)
            new[:capacity] = old
            setattr(self, name, new)
        penalty = np.full(grown, -10.0, dtype=np.float32)
        penalty[:capacity] = self.penalty
        self.penalty = penalty

    # --- scoring ----------------------------------------------------------------------------

    def semantic(self, vector: NDArray[np.float32], k: int) -> dict[int, float]:
        """Top-k slots by similarity: the best of query~question, query~(question + answer) and
        query~phrasing."""
        used = len(self.entries)
        if not self.slots or not used:
            return {}
        scores = self.question_vectors[:used] @ vector
        np.maximum(scores, self.qa_vectors[:used] @ vector, out=scores)
        scores += self.penalty[:used]
        live = self.phrase_owner >= 0
        if live.any():
            np.maximum.at(scores, self.phrase_owner[live], self.phrase_vectors[live] @ vector)
        k = min(k, used)
        top = np.argpartition(-scores, k - 1)[:k]
        return {int(s): float(scores[s]) for s in top if scores[s] > -1.0}

    def idf(self, term: str) -> float:
        return math.log(1.0 + (len(self.slots) + 1) / (self.document_frequency.get(term, 0) + 0.5))

    def lexical(self, terms: set[str], k: int) -> dict[int, float]:
        """Top-k slots by IDF-weighted share of the query's terms that the entry contains (0..1).

        Terms in more than 2% of entries say little and would cost a scan of their postings: they
        count in the weights but draw in no candidates."""
        if not terms:
            return {}
        weights = {t: self.idf(t) for t in terms}
        total = sum(weights.values())
        too_common = max(50, len(self.slots) // 50)
        hits: Counter[int] = Counter()
        for term, weight in weights.items():
            postings = self.postings.get(term, ())
            if len(postings) > too_common:
                continue
            for slot in postings:
                hits[slot] += weight
        return {slot: hit / total for slot, hit in hits.most_common(k)}

    def coverage(self, terms: set[str], slot: int) -> float:
        entry = self.entries[slot]
        if not terms or entry is None:
            return 0.0
        weights = {t: self.idf(t) for t in terms}
        return sum(w for t, w in weights.items() if t in entry.terms) / sum(weights.values())

    def view(self, entry_id: str) -> KnowledgeBaseEntryView:
        entry = self.entries[self.slots[entry_id]]
        assert entry is not None
        return entry.view

    def similarity(self, slot: int, vector: NDArray[np.float32]) -> float:
        return float(max(self.question_vectors[slot] @ vector, self.qa_vectors[slot] @ vector))

    def nearest_wording(self, slot: int, vector: NDArray[np.float32] | None) -> tuple[str, float | None]:
        """The entry's question or phrasing nearest to the query, and the query's best similarity
        to the entry (None without vectors)."""
        entry = self.entries[slot]
        assert entry is not None
        best, best_score = (
            entry.row.question,
            self.similarity(slot, vector) if vector is not None and entry.has_vectors else None,
        )
        for row, text, _ in entry.phrasings:
            if vector is None or row < 0:
                continue
            score = float(self.phrase_vectors[row] @ vector)
            if best_score is None or score > best_score:
                best, best_score = text, score
        return best, best_score
