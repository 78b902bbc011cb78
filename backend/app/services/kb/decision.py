"""The answer-or-escalate decision for one caller question against ranked KB candidates.

A match must pass every check; any doubt leaves `match` empty and the agent escalates:
1. semantic similarity at least ACCEPT (sentence embeddings of question, and of question + answer);
2. no facet conflict (Sunday is not Saturday, pedicures are not manicures; see seed/lexicon.json);
3. the answer holds the kind of fact asked for (a price for "how much", a duration for "how long");
4. no word the KB has never seen and the entry does not contain (a service the salon never mentioned);
5. no runner-up that also passes within MARGIN with a different answer (ambiguous: ask a human)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from app.services.kb.lexicon import STOPWORDS, Facets, Lexicon, asked_intents, content_stems, stem, unmet_intent, words

ACCEPT = 0.45
MARGIN = 0.05
# Below this, not even an LLM verifier is asked about a candidate.
GRAY_FLOOR = 0.35


@dataclass
class Candidate:
    entry_id: str
    question: str
    answer: str
    score: float  # semantic similarity to the query, 0..1
    question_facets: Facets
    answer_facets: Facets
    terms: frozenset[str]  # content stems of question and answer
    exact: bool = False  # the same question, ignoring case, spacing and punctuation
    rare: frozenset[str] = frozenset()  # rare words of the entry's question (a brand, a named variant)
    blocked: str | None = field(default=None)  # a hard reason: this entry cannot answer the query
    rejected: str | None = field(default=None)  # why it is not the match (hard or soft)


@dataclass(frozen=True)
class Decision:
    match: Candidate | None
    reason: str


def block_reason(query: str, query_facets: Facets, novel: set[str], cand: Candidate, lexicon: Lexicon) -> str | None:
    """Why `cand` cannot answer `query` whatever its similarity, or None."""
    conflict = lexicon.conflict(query_facets, cand.question_facets, cand.answer_facets)
    if conflict:
        return conflict
    missing = unmet_intent(query, cand.answer)
    if missing:
        return f"the caller asks for a {missing} and the answer gives none"
    unknown = sorted(novel - cand.terms)
    if unknown:
        return f"'{unknown[0]}' appears nowhere in the knowledge base"
    unasked = sorted(cand.rare - content_stems(query))
    if unasked:
        return f"the entry is about '{unasked[0]}', which the caller did not name"
    return None


def decide(query: str, ranked: Sequence[Candidate], lexicon: Lexicon, novel: set[str]) -> Decision:
    """`ranked`: best first. `novel`: rare words of the query that no KB entry contains."""
    if ranked and ranked[0].exact:
        return Decision(ranked[0], "the same question")
    query_facets = lexicon.facets(query)
    if not names_a_subject(query, query_facets, lexicon):
        for cand in ranked:
            cand.blocked = cand.rejected = "the question names nothing to look up"
        return Decision(None, "the question names nothing to look up (\"can you do that?\")")
    passing = []
    for cand in ranked:
        cand.blocked = block_reason(query, query_facets, novel, cand, lexicon)
        cand.rejected = cand.blocked
        if cand.rejected is None and cand.score < ACCEPT:
            cand.rejected = f"similarity {cand.score:.2f} below {ACCEPT}"
        if cand.rejected is None:
            passing.append(cand)
    if not passing:
        return Decision(None, ranked[0].rejected if ranked else "the knowledge base is empty")
    best = passing[0]
    for other in passing[1:]:
        if other.answer.strip() != best.answer.strip() and best.score - other.score < MARGIN:
            best.rejected = other.rejected = "two entries fit about equally well"
            return Decision(None, f"ambiguous between '{best.question}' and '{other.question}'")
    return Decision(best, "confident")


def decide_same_question(
    query: str, ranked: Sequence[Candidate], lexicon: Lexicon, is_common: Callable[[str], bool]
) -> Decision:
    """Whether another caller's pending question is the same question (for merging requests).

    The same rules as answering, except that there is no answer yet: both questions must ask for
    the same kinds of fact, and a rare word in either must be in the other."""
    if ranked and ranked[0].exact:
        return Decision(ranked[0], "the same question")
    query_facets, wants = lexicon.facets(query), asked_intents(query)
    query_terms = content_stems(query) - lexicon.fillers
    if not names_a_subject(query, query_facets, lexicon):
        return Decision(None, "the question names nothing to compare")
    passing = []
    for cand in ranked:
        shared = query_terms & (content_stems(cand.question) - lexicon.fillers)
        cand.blocked = lexicon.conflict(query_facets, cand.question_facets, {})
        if cand.blocked is None and not shared and not cand.question_facets:
            # Two callers' questions with no word in common are merged only through a named subject.
            cand.blocked = "no word in common"
        if cand.blocked is None and asked_intents(cand.question) != wants:
            cand.blocked = "asks for a different kind of fact"
        unshared = query_terms ^ (content_stems(cand.question) - lexicon.fillers)
        if cand.blocked is None and any(not is_common(t) for t in unshared):
            cand.blocked = "a rare word is in only one of the questions"
        if cand.blocked is None and cand.score >= ACCEPT:
            passing.append(cand)
    if not passing:
        return Decision(None, "no pending request asks the same")
    if len(passing) > 1 and passing[0].score - passing[1].score < MARGIN:
        return Decision(None, "two pending requests fit about equally well")
    return Decision(passing[0], "the same question")


def names_a_subject(query: str, query_facets: Facets, lexicon: Lexicon) -> bool:
    """False for questions like "Yes", "Hello?" or "Can you do that?": nothing to look up without context."""
    return bool(query_facets) or bool(content_stems(query) - lexicon.fillers)


def decide_exact(query: str, ranked: Sequence[Candidate], lexicon: Lexicon) -> Decision:
    """Without the embedding model, only the same question is safe to answer."""
    for cand in ranked:
        cand.rejected = None if cand.exact else "not the same question (semantic matching is off)"
    if ranked and ranked[0].exact:
        return Decision(ranked[0], "the same question")
    return Decision(None, "no entry has this exact question (semantic matching is off)")


def rare_terms(text: str, lexicon: Lexicon, is_common: Callable[[str], bool]) -> frozenset[str]:
    """Rare words of `text` that no facet or the salon vocabulary covers."""
    return frozenset(
        stem(w)
        for w in words(text)
        if "'" not in w and w not in STOPWORDS and not is_common(w)
        and stem(w) not in lexicon.facet_words and stem(w) not in lexicon.vocabulary and stem(w) not in lexicon.fillers
    )


def novel_terms(
    query: str, known: Callable[[str], bool], lexicon: Lexicon, is_common: Callable[[str], bool]
) -> set[str]:
    """Rare words of `query` that no KB entry contains, leaving out words a facet names (the facet
    check judges those) and the salon's everyday vocabulary."""
    return {t for t in rare_terms(query, lexicon, is_common) if not known(t)}
