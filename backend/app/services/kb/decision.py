"""The answer-or-escalate decision for one caller question against ranked KB candidates.

A match must pass every check; any doubt leaves `match` empty and the agent escalates:
1. the KB judge (a cross-encoder reading the question with each candidate entry) gives the entry at
   least ACCEPT: its answer answers this question, not a sibling variant, another day or fee;
2. the answer holds the kind of fact asked for (a price for "how much", a duration for "how long");
3. no facet conflict, where a business keeps a lexicon (Sunday is not Saturday; seed/lexicon.json):
   an optional refinement, never what correctness rests on;
4. no runner-up with a different answer that the judge rates within MARGIN (ambiguous: ask a human)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from app.services.kb.lexicon import Facets, Lexicon, asked_intents, content_stems, unmet_intent

# Chosen on the tuned sets (bench/kb_eval.py, 3,905 questions) for each judge, by one rule: the
# highest recall with at most 1 wrong answer in 100 questions (the shipped judge: 0.975 -> 35 wrong;
# 0.97 -> 41). Lower bars answer more and, on businesses never seen, wrongly more often.
ACCEPT = 0.975
MARGIN = 0.2
# A supervisor giving an entry's answer again to another question is most of the evidence that the
# question is another way of asking it; the judge need only not object.
SAME_ANSWER = 0.5
# Below this, not even an LLM verifier is asked about a candidate.
GRAY_FLOOR = 0.2
# Two callers' questions are the same question at this sentence similarity (with the checks of
# decide_same_question), and not when another pending one comes this close.
SAME_QUESTION = 0.45
SAME_QUESTION_MARGIN = 0.05
# The judge reads only entries at least this near the question by retrieval: it was trained on
# near candidates, and far from them (gibberish, another language) its confidence means nothing.
NEAR = 0.35
# How many of the nearest entries the judge reads (the rest are shown, not judged): a third one
# found no more right answers on the tuned sets, and each costs 2-3 ms.
JUDGED = 2


@dataclass
class Candidate:
    entry_id: str
    question: str  # the entry's phrasing nearest to the caller's words
    answer: str
    score: float  # retrieval similarity to the query, 0..1
    question_facets: Facets
    answer_facets: Facets
    exact: bool = False  # the same question, ignoring case, spacing and punctuation
    judged: float | None = None  # the judge's probability that the answer answers the query
    blocked: str | None = field(default=None)  # a hard reason: this entry cannot answer the query
    rejected: str | None = field(default=None)  # why it is not the match (hard or soft)


@dataclass(frozen=True)
class Decision:
    match: Candidate | None
    reason: str


def block_reason(query: str, query_facets: Facets, cand: Candidate, lexicon: Lexicon) -> str | None:
    """Why `cand` cannot answer `query` whatever the judge says, or None."""
    missing = unmet_intent(query, cand.answer)
    if missing:
        return f"the caller asks for a {missing} and the answer gives none"
    return lexicon.conflict(query_facets, cand.question_facets, cand.answer_facets)


def to_judge(query: str, ranked: Sequence[Candidate], lexicon: Lexicon) -> list[Candidate]:
    """The candidates whose judging can change the decision: near, among the first JUDGED, and not
    ruled out already (the judge is most of a search's CPU, and a blocked entry cannot be the answer
    whatever it says). When the same question asked word for word leads, `decide` takes it without
    ruling anything out, and an LLM verifier, if one is configured, reads the judged candidates and
    may veto even that match: the nearest are judged as they are."""
    near = [c for c in ranked[:JUDGED] if c.score >= NEAR]
    if ranked and ranked[0].exact:
        return near
    query_facets = lexicon.facets(query)
    if not names_a_subject(query, query_facets, lexicon):
        return []
    return [c for c in near if block_reason(query, query_facets, c, lexicon) is None]


def decide(query: str, ranked: Sequence[Candidate], lexicon: Lexicon) -> Decision:
    """`ranked`: best first by retrieval, the first JUDGED of them with `judged` set."""
    if ranked and ranked[0].exact:
        return _chosen(ranked[0], ranked, "another entry has these very words")
    query_facets = lexicon.facets(query)
    if not names_a_subject(query, query_facets, lexicon):
        for cand in ranked:
            cand.blocked = cand.rejected = "the question names nothing to look up"
        return Decision(None, 'the question names nothing to look up ("can you do that?")')
    passing = []
    for cand in ranked:
        cand.blocked = block_reason(query, query_facets, cand, lexicon)
        cand.rejected = cand.blocked
        if cand.rejected is None:
            if cand.score < NEAR:
                cand.rejected = f"too far from the question (similarity {cand.score:.2f})"
            elif cand.judged is None:
                cand.rejected = "not among the nearest entries"
            elif cand.judged < ACCEPT:
                cand.rejected = f"does not answer this question (judge {cand.judged:.2f})"
        if cand.rejected is None:
            passing.append(cand)
    if not passing:
        return Decision(None, ranked[0].rejected or "no entry answers it" if ranked else "the knowledge base is empty")
    passing.sort(key=lambda c: c.judged or 0.0, reverse=True)
    best = passing[0]
    for other in passing[1:]:
        if other.answer.strip() != best.answer.strip() and (best.judged or 0) - (other.judged or 0) < MARGIN:
            best.rejected = other.rejected = "two entries fit about equally well"
            return Decision(None, f"ambiguous between '{best.question}' and '{other.question}'")
    return _chosen(best, ranked, "another entry fits better")


def _chosen(match: Candidate, ranked: Sequence[Candidate], why_not: str) -> Decision:
    """`match` is the answer: every other candidate gets a reason it was not (the console shows it)."""
    for cand in ranked:
        if cand is not match and cand.rejected is None:
            cand.rejected = why_not
    return Decision(match, "the same question" if match.exact else "confident")


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
        if cand.blocked is None and cand.score >= SAME_QUESTION:
            passing.append(cand)
    if not passing:
        return Decision(None, "no pending request asks the same")
    if len(passing) > 1 and passing[0].score - passing[1].score < SAME_QUESTION_MARGIN:
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
