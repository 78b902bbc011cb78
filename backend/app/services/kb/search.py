"""Search: the candidate entries nearest to a caller's question (hybrid retrieval over the index),
the judge's reading of the nearest, and the answer-or-escalate decision over them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from app.questions import normalize_question
from app.services.kb import decision
from app.services.kb.decision import Candidate
from app.services.kb.index import KnowledgeIndex
from app.services.kb.judge import entry_text
from app.services.kb.lexicon import Lexicon, content_stems
from app.services.kb.verifier import Verifier
from app.services.views import KnowledgeBaseEntryView

POOL = 8  # candidates drawn from each of the semantic and the lexical ranking
SHOWN = 5  # candidates returned to the client
# Share of the lexical score in the ranking score (the rest is semantic similarity).
LEXICAL_WEIGHT = 0.15


@dataclass(frozen=True)
class ScoredEntry:
    entry: KnowledgeBaseEntryView
    score: float
    judged: float | None
    rejected: str | None


@dataclass(frozen=True)
class SearchResult:
    query: str
    match: KnowledgeBaseEntryView | None
    candidates: list[ScoredEntry]
    reason: str


async def search(
    query: str,
    vector: np.ndarray | None,
    *,
    index: KnowledgeIndex,
    lexicon: Lexicon,
    judge: Callable[[str, list[str]], Awaitable[list[float]]] | None,
    verifier: Verifier | None,
) -> SearchResult:
    """`judge` gives, per entry text, the judge's probability that it answers the query."""
    cands = candidates(query, vector, index=index, lexicon=lexicon)
    # Taken before any await: the index may move on while the judge or the verifier thinks.
    views = {c.entry_id: index.view(c.entry_id) for c in cands}
    if vector is None or judge is None:
        outcome = decision.decide_exact(query, cands, lexicon)
    else:
        judged = decision.to_judge(query, cands, lexicon)
        texts = [entry_text(c.question, c.answer) for c in judged]
        for cand, p in zip(judged, await judge(query, texts) if texts else [], strict=True):
            cand.judged = p
        outcome = decision.decide(query, cands, lexicon)
    if verifier is not None:
        outcome = await verifier.review(query, cands, outcome)
    scored = [
        ScoredEntry(views[c.entry_id], round(c.score, 4), None if c.judged is None else round(c.judged, 4), c.rejected)
        for c in cands
    ]
    match = views.get(outcome.match.entry_id) if outcome.match else None
    return SearchResult(query=query, match=match, candidates=scored, reason=outcome.reason)


def candidates(query: str, vector: np.ndarray | None, *, index: KnowledgeIndex, lexicon: Lexicon) -> list[Candidate]:
    """The SHOWN entries nearest to `query`, best first (an entry asked word for word leads), each
    shown by its wording nearest to the query. The same for KB entries and for pending questions."""
    terms = content_stems(query) - lexicon.fillers
    exact = index.exact.get(normalize_question(query), set())
    slots = set(index.lexical(terms, POOL)) | exact
    if vector is not None:
        slots |= set(index.semantic(vector, POOL))
    cands = []
    for slot in slots:
        entry = index.entries[slot]
        if entry is None:
            continue
        lexical = index.coverage(terms, slot)
        wording, sem = index.nearest_wording(slot, vector)
        score = lexical if sem is None else (1 - LEXICAL_WEIGHT) * sem + LEXICAL_WEIGHT * lexical
        cands.append(
            Candidate(
                entry_id=entry.row.id,
                question=wording,
                answer=entry.row.answer,
                score=score,
                question_facets=lexicon.facets(wording),
                answer_facets=lexicon.facets(entry.row.answer),
                exact=slot in exact,
            )
        )
    cands.sort(key=lambda c: (c.exact, c.score), reverse=True)
    return cands[:SHOWN]
