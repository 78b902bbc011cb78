"""The knowledge base: learning answers, managing entries, and answer-or-escalate search."""
from __future__ import annotations

import asyncio
import json
import logging
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from app import repository
from app.db import Database
from app.models import KnowledgeBaseEntry, new_id, utcnow
from app.services.kb import decision as answerability
from app.services.kb.decision import Candidate
from app.services.kb.embeddings import Embedder
from app.services.errors import Conflict, NotFound
from app.services.kb.index import IndexRow, KnowledgeIndex
from app.services.kb.lexicon import Lexicon, content_stems
from app.services.kb.verifier import Verifier
from app.services.snapshots import KnowledgeBaseEntryView

log = logging.getLogger(__name__)

SYNC_INTERVAL = 0.5  # seconds between checks for KB writes made by other processes
QUERY_CACHE = 1024  # query embeddings kept
POOL = 8  # candidates drawn from each of the semantic and the lexical ranking
SHOWN = 5  # candidates returned to the client
# Share of the lexical score in the ranking score (the rest is semantic similarity).
LEXICAL_WEIGHT = 0.15


def normalize_question(question: str) -> str:
    """The key under which two questions count as the same one: case, spacing and punctuation ignored."""
    folded = unicodedata.normalize("NFKC", question).casefold()
    key = "".join(ch for ch in folded if ch.isalnum())
    # A question of symbols only keeps its symbols: "???" and "😀" must not be one question.
    return key or " ".join(folded.split())


@dataclass(frozen=True, slots=True)
class _EntryRow:
    """An entry's public fields, detached from the session (the index keeps one per entry)."""

    id: str
    question: str
    answer: str
    topic: str | None
    source_request_id: str | None
    created_at: datetime
    updated_at: datetime
    retired_at: datetime | None
    times_used: int
    last_used_at: datetime | None

    @classmethod
    def of(cls, e: KnowledgeBaseEntry) -> _EntryRow:
        return cls(e.id, e.question, e.answer, e.topic, e.source_request_id, e.created_at, e.updated_at,
                   e.retired_at, e.times_used, e.last_used_at)


@dataclass(frozen=True)
class EntryVectors:
    question: bytes
    qa: bytes
    model: str


@dataclass(frozen=True)
class ScoredEntry:
    entry: KnowledgeBaseEntryView
    score: float
    rejected: str | None


@dataclass(frozen=True)
class SearchResult:
    query: str
    match: KnowledgeBaseEntryView | None
    candidates: list[ScoredEntry]
    reason: str


class KnowledgeBase:
    def __init__(
        self,
        db: Database,
        *,
        lexicon: Lexicon,
        embedder: Embedder | None,
        verifier: Verifier | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.lexicon = lexicon
        self.embedder = embedder
        self.verifier = verifier
        self.clock = clock
        self.index = KnowledgeIndex(lexicon)
        self._sync_lock = asyncio.Lock()
        self._checked_at = float("-inf")
        # The agent often asks about the same words twice in a call (look up, then escalate).
        self._query_vectors: dict[str, np.ndarray] = {}
        # Called with the ids of entries that changed, this process's writes and other processes' alike.
        self.listeners: list[Callable[[list[str]], None]] = []

    @property
    def mode(self) -> str:
        return "hybrid" if self.embedder else "exact-only"

    # --- embeddings ---------------------------------------------------------------------------

    async def embed(self, texts: list[str]) -> np.ndarray | None:
        if self.embedder is None:
            return None
        return await asyncio.to_thread(self.embedder.embed, texts)

    async def entry_vectors(self, question: str, answer: str) -> EntryVectors | None:
        vectors = await self.embed([question, f"{question} {answer}"])
        if vectors is None or self.embedder is None:
            return None
        return EntryVectors(vectors[0].tobytes(), vectors[1].tobytes(), self.embedder.name)

    def is_common_word(self, word: str) -> bool:
        return self.embedder.is_common_word(word) if self.embedder else False

    # --- writes -------------------------------------------------------------------------------

    async def learn(
        self,
        *,
        session: AsyncSession,
        question: str,
        answer: str,
        topic: str | None,
        source_request_id: str | None,
        vectors: EntryVectors | None,
        now: datetime,
        actor: str,
    ) -> KnowledgeBaseEntry:
        """Write an answer inside the caller's transaction; the same question updates its entry."""
        values = {
            "id": new_id(),
            "question": question.strip(),
            "normalized_question": normalize_question(question),
            "answer": answer.strip(),
            "topic": topic,
            "source_request_id": source_request_id,
            "created_at": now,
            "updated_at": now,
            "revision": await repository.bump_kb_revision(session=session),
            **self._vector_values(vectors),
        }
        entry, inserted = await repository.upsert_entry(session=session, values=values)
        repository.add_kb_change(session=session, entry=entry, at=now, action="learned" if inserted else "relearned", actor=actor)
        return entry

    @staticmethod
    def _vector_values(vectors: EntryVectors | None) -> dict[str, object]:
        if vectors is None:
            return {"question_embedding": None, "qa_embedding": None, "embedding_model": None}
        return {"question_embedding": vectors.question, "qa_embedding": vectors.qa, "embedding_model": vectors.model}

    async def create(self, *, question: str, answer: str, topic: str | None, actor: str) -> KnowledgeBaseEntryView:
        vectors = await self.entry_vectors(question, answer)
        now = self.clock()
        async with self.db.transaction() as session:
            existing = await repository.active_entry_by_question(session=session, normalized=normalize_question(question))
            if existing is not None:
                raise Conflict(f"an entry with this question exists already: {existing.id}; edit it instead")
            entry = await self.learn(
                session=session, question=question, answer=answer, topic=topic,
                source_request_id=None, vectors=vectors, now=now, actor=actor,
            )
            view = KnowledgeBaseEntryView.model_validate(entry)
        await self.after_write()
        return view

    async def edit(
        self, entry_id: str, *, question: str | None, answer: str | None, topic: str | None, actor: str
    ) -> KnowledgeBaseEntryView:
        async with self.db.read() as session:
            current = await self._active(session, entry_id)
            current_question = question if question is not None else current.question
            current_answer = answer if answer is not None else current.answer
        # Embedding is CPU work: done before the transaction, redone inside only if a race changed the text.
        vectors = await self.entry_vectors(current_question, current_answer)
        now = self.clock()
        async with self.db.transaction() as session:
            entry = await self._active(session, entry_id, lock=True)
            # Apply the change to the entry as it is now: a concurrent edit of the other field stays.
            new_question = question if question is not None else entry.question
            new_answer = answer if answer is not None else entry.answer
            if (new_question, new_answer) != (current_question, current_answer):
                vectors = await self.entry_vectors(new_question, new_answer)
            normalized = normalize_question(new_question)
            if normalized != entry.normalized_question:
                clash = await repository.active_entry_by_question(session=session, normalized=normalized)
                if clash is not None:
                    raise Conflict(f"another entry has this question already: {clash.id}")
            entry.question, entry.normalized_question = new_question.strip(), normalized
            entry.answer = new_answer.strip()
            if topic is not None:
                entry.topic = topic or None
            for name, value in self._vector_values(vectors).items():
                setattr(entry, name, value)
            entry.updated_at = now
            entry.revision = await repository.bump_kb_revision(session=session)
            repository.add_kb_change(session=session, entry=entry, at=now, action="edited", actor=actor)
            view = KnowledgeBaseEntryView.model_validate(entry)
        await self.after_write()
        return view

    async def retire(self, entry_id: str, *, actor: str) -> KnowledgeBaseEntryView:
        """Stop an entry from answering callers; it stays readable, with its history."""
        now = self.clock()
        async with self.db.transaction() as session:
            entry = await self._active(session, entry_id, lock=True)
            entry.retired_at = entry.updated_at = now
            entry.revision = await repository.bump_kb_revision(session=session)
            repository.add_kb_change(session=session, entry=entry, at=now, action="retired", actor=actor)
            view = KnowledgeBaseEntryView.model_validate(entry)
        await self.after_write()
        return view

    async def record_use(self, entry_id: str) -> None:
        """Count that an entry's answer was said to a caller."""
        async with self.db.transaction() as session:
            revision = await repository.bump_kb_revision(session=session)
            if not await repository.record_entry_use(
                session=session, entry_id=entry_id, now=self.clock(), revision=revision
            ):
                raise NotFound("knowledge base entry", entry_id)
        await self.sync()

    async def _active(self, session: AsyncSession, entry_id: str, lock: bool = False) -> KnowledgeBaseEntry:
        entry = await repository.get_entry(session=session, entry_id=entry_id, lock=lock)
        if entry is None or entry.retired_at is not None:
            raise NotFound("knowledge base entry", entry_id)
        return entry

    async def after_write(self) -> None:
        """Call after committing a KB write: this process's index catches up at once."""
        await self.sync()

    # --- reads --------------------------------------------------------------------------------

    async def list(self, *, include_retired: bool = False) -> list[KnowledgeBaseEntryView]:
        async with self.db.read() as session:
            entries = await repository.list_entries(session=session, include_retired=include_retired)
            return [KnowledgeBaseEntryView.model_validate(e) for e in entries]

    async def get(self, entry_id: str) -> tuple[KnowledgeBaseEntryView, list[dict[str, object]]]:
        async with self.db.read() as session:
            entry = await repository.get_entry(session=session, entry_id=entry_id)
            if entry is None:
                raise NotFound("knowledge base entry", entry_id)
            changes = await repository.kb_changes(session=session, entry_id=entry_id)
            history = [
                {"at": c.at.isoformat(), "action": c.action, "actor": c.actor, "question": c.question,
                 "answer": c.answer, "topic": c.topic}
                for c in changes
            ]
            return KnowledgeBaseEntryView.model_validate(entry), history

    # --- search -------------------------------------------------------------------------------

    async def sync(self, *, force: bool = True) -> None:
        """Bring the in-memory index up to the database's KB revision.

        Writes through this process sync at once; `force=False` (searches) looks at the database at
        most every SYNC_INTERVAL seconds, which is how writes by other processes arrive."""
        now = time.monotonic()
        if not force and now - self._checked_at < SYNC_INTERVAL:
            return
        async with self._sync_lock:
            async with self.db.read() as session:
                revision = await repository.kb_revision(session=session)
                if revision == self.index.revision:
                    self._checked_at = now
                    return
                entries = await repository.kb_entries_since(session=session, revision=self.index.revision)
            model = self.embedder.name if self.embedder else None
            self.index.apply(
                (
                    IndexRow(
                        row=_EntryRow.of(e),
                        normalized_question=e.normalized_question,
                        question_embedding=e.question_embedding if e.embedding_model == model else None,
                        qa_embedding=e.qa_embedding if e.embedding_model == model else None,
                    )
                    for e in entries
                ),
                revision,
            )
            self._checked_at = now
        changed = [e.id for e in entries]
        for listener in self.listeners:
            listener(changed)

    async def search(self, query: str) -> SearchResult:
        vectors = await self.embed_query(query)
        await self.sync(force=False)
        index = self.index
        terms = content_stems(query) - self.lexicon.fillers
        pool = index.lexical(terms, POOL)
        semantic: dict[int, float] = {}
        if vectors is not None:
            semantic = index.semantic(vectors[0], POOL)
            pool = {slot: index.coverage(terms, slot) for slot in set(pool) | set(semantic)}
        key = normalize_question(query)
        cands, views = [], {}
        for slot, lexical in pool.items():
            entry = index.entries[slot]
            if entry is None:
                continue
            sem = semantic.get(slot)
            if sem is None and vectors is not None and entry.has_vectors:
                sem = float(max(index.question_vectors[slot] @ vectors[0], index.qa_vectors[slot] @ vectors[0]))
            score = lexical if sem is None else (1 - LEXICAL_WEIGHT) * sem + LEXICAL_WEIGHT * lexical
            view = views[entry.row.id] = entry.view
            cands.append(
                Candidate(
                    entry_id=view.id, question=view.question, answer=view.answer, score=score,
                    question_facets=self.lexicon.facets(view.question),
                    answer_facets=self.lexicon.facets(view.answer),
                    terms=entry.terms,
                    exact=entry.normalized_question == key,
                    rare=answerability.rare_terms(view.question, self.lexicon, self.is_common_word),
                )
            )
        cands.sort(key=lambda c: (c.exact, c.score), reverse=True)
        cands = cands[:SHOWN]
        if vectors is None or self.embedder is None:
            decision = answerability.decide_exact(query, cands, self.lexicon)
        else:
            novel = answerability.novel_terms(query, index.known, self.lexicon, self.is_common_word)
            decision = answerability.decide(query, cands, self.lexicon, novel)
        if self.verifier is not None:
            decision = await self.verifier.review(query, cands, decision)
        # Views were taken before any await: the index may have moved on while the verifier thought.
        scored = [ScoredEntry(views[c.entry_id], round(c.score, 4), c.rejected) for c in cands if c.entry_id in views]
        match = views.get(decision.match.entry_id) if decision.match else None
        return SearchResult(query=query, match=match, candidates=scored, reason=decision.reason)

    async def embed_query(self, query: str) -> np.ndarray | None:
        cached = self._query_vectors.get(query)
        if cached is None:
            cached = await self.embed([query])
            if cached is not None:
                if len(self._query_vectors) >= QUERY_CACHE:
                    self._query_vectors.pop(next(iter(self._query_vectors)))
                self._query_vectors[query] = cached
        return cached

    # --- start-up -----------------------------------------------------------------------------

    async def backfill_embeddings(self, batch: int = 64) -> int:
        """Embed entries written without the current model (older rows, or a model change)."""
        if self.embedder is None:
            return 0
        done = 0
        while True:
            async with self.db.read() as session:
                todo = await repository.entries_without_embeddings(session=session, model=self.embedder.name, limit=batch)
                work = [(e.id, e.question, e.answer) for e in todo]
            if not work:
                break
            texts = [t for _, q, a in work for t in (q, f"{q} {a}")]
            vectors = await self.embed(texts)
            assert vectors is not None
            async with self.db.transaction() as session:
                revision = await repository.bump_kb_revision(session=session)
                for n, (entry_id, _, _) in enumerate(work):
                    entry = await repository.get_entry(session=session, entry_id=entry_id)
                    if entry is None:
                        continue
                    entry.question_embedding = vectors[2 * n].tobytes()
                    entry.qa_embedding = vectors[2 * n + 1].tobytes()
                    entry.embedding_model = self.embedder.name
                    entry.revision = revision
            done += len(work)
            log.info("embedded %d knowledge base entries", done)
        return done

    async def load_seed(self, path: str) -> int:
        """Load the starter entries into a KB that has never had any; returns how many were written."""
        if not path:
            return 0
        items = json.loads(Path(path).read_text(encoding="utf-8"))
        async with self.db.read() as session:
            if await repository.count_entries(session=session):
                return 0
        texts = [t for item in items for t in (item["question"], f"{item['question']} {item['answer']}")]
        vectors = await self.embed(texts)
        async with self.db.transaction() as session:
            if await repository.count_entries(session=session):
                return 0
            now = self.clock()
            for n, item in enumerate(items):
                entry_vectors = None
                if vectors is not None and self.embedder is not None:
                    entry_vectors = EntryVectors(vectors[2 * n].tobytes(), vectors[2 * n + 1].tobytes(), self.embedder.name)
                await self.learn(
                    session=session, question=item["question"], answer=item["answer"], topic=item.get("topic"),
                    source_request_id=None, vectors=entry_vectors, now=now, actor="starter KB",
                )
        log.info("loaded %d starter KB entries from %s", len(items), path)
        return len(items)
