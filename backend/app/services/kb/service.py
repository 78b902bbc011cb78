"""The knowledge base: learning answers, managing entries, and answer-or-escalate search."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from app import repository
from app.db import Database
from app.models import KnowledgeBaseEntry, KnowledgeBasePhrasing, new_id, utcnow
from app.questions import normalize_question
from app.services.batching import MicroBatcher, in_a_thread
from app.services.changes import Change, Changes, Subject
from app.services.errors import Conflict, NotFound
from app.services.kb.decision import SAME_ANSWER
from app.services.kb.embeddings import DIMENSIONS, Embedder
from app.services.kb.index import IndexRow, KnowledgeIndex, PhrasingRow
from app.services.kb.judge import AnswerJudge, entry_text
from app.services.kb.lexicon import Lexicon
from app.services.kb.search import SearchResult, search
from app.services.kb.verifier import Verifier
from app.services.views import KnowledgeBaseEntryView, PhrasingView

log = logging.getLogger(__name__)

# An entry collects at most this many phrasings by its answer being given again: an answer given to
# everything ("Please call us") stays many entries instead of one entry every search must reload.
MAX_PHRASINGS = 50
SYNC_INTERVAL = 0.5  # seconds between checks for KB writes made by other processes
QUERY_CACHE = 1024  # query embeddings kept


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
    phrasings: tuple[PhrasingView, ...]

    @classmethod
    def of(cls, e: KnowledgeBaseEntry, phrasings: Iterable[KnowledgeBasePhrasing] = ()) -> _EntryRow:
        return cls(
            e.id,
            e.question,
            e.answer,
            e.topic,
            e.source_request_id,
            e.created_at,
            e.updated_at,
            e.retired_at,
            e.times_used,
            e.last_used_at,
            tuple(PhrasingView.model_validate(p) for p in phrasings),
        )


def entry_view(entry: KnowledgeBaseEntry, phrasings: Iterable[KnowledgeBasePhrasing] = ()) -> KnowledgeBaseEntryView:
    return KnowledgeBaseEntryView.model_validate(_EntryRow.of(entry, phrasings))


@dataclass(frozen=True)
class Learned:
    """What a supervisor's answer did to the KB: a new entry, an entry updated (the same question),
    or the caller's wording added to an entry (answered with it, or with its answer again)."""

    entry: KnowledgeBaseEntry
    action: str  # "learned", "relearned" or "phrasing added"


@dataclass(frozen=True)
class EntryVectors:
    question: bytes
    qa: bytes
    model: str


class KnowledgeBase:
    def __init__(
        self,
        db: Database,
        *,
        lexicon: Lexicon,
        embedder: Embedder | None,
        judge: AnswerJudge | None = None,
        verifier: Verifier | None = None,
        changes: Changes | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.lexicon = lexicon
        self.embedder = embedder
        self.judge = judge
        self.verifier = verifier
        self._embedding = None if embedder is None else MicroBatcher(in_a_thread(embedder.embed))
        self._judging = None if judge is None else MicroBatcher(in_a_thread(judge.score))
        self.clock = clock
        self.index = KnowledgeIndex(lexicon)
        self._sync_lock = asyncio.Lock()
        self._checked_at = float("-inf")
        # The agent often asks about the same words twice in a call (look up, then escalate).
        self._query_vectors: dict[str, np.ndarray] = {}
        # Told of every entry that changed, this process's writes and other processes' alike.
        self.changes = changes or Changes()

    @property
    def mode(self) -> str:
        return "judged" if self.embedder and self.judge else "exact-only"

    # --- embeddings ---------------------------------------------------------------------------

    async def embed(self, texts: list[str]) -> np.ndarray | None:
        if self._embedding is None:
            return None
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        return np.stack(await self._embedding.run(texts))

    async def judge_pairs(self, question: str, entries: list[str]) -> list[float]:
        """The judge's probability, per entry text, that it answers `question` (judge required)."""
        assert self._judging is not None
        return [float(p) for p in await self._judging.run([(question, e) for e in entries])]

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
        entry_id: str | None = None,
    ) -> Learned:
        """Write an answer inside the caller's transaction. `entry_id`: the supervisor answered with
        that entry (see `entry_with_same_answer`), so the question becomes one of its phrasings.
        Otherwise the same question updates its entry, and anything else is a new entry."""
        if entry_id is not None:
            entry = await self._active(session, entry_id, lock=True)
            embedding = vectors.question if vectors else None
            await self._add_phrasing(
                session, entry, question, embedding, source_request_id=source_request_id, now=now, actor=actor
            )
            return Learned(entry, "phrasing added")
        values = {
            "id": new_id(),
            "question": question.strip(),
            "normalized_question": normalize_question(question),
            "answer": answer.strip(),
            "normalized_answer": normalize_question(answer),
            "topic": topic,
            "source_request_id": source_request_id,
            "created_at": now,
            "updated_at": now,
            "revision": await repository.bump_kb_revision(session=session),
            **self._vector_values(vectors),
        }
        entry, inserted = await repository.upsert_entry(session=session, values=values)
        action = "learned" if inserted else "relearned"
        repository.add_kb_change(session=session, entry=entry, at=now, action=action, actor=actor)
        return Learned(entry, action)

    async def entry_with_same_answer(self, question: str, answer: str) -> str | None:
        """The entry a supervisor's answer repeats, if the question is just another way of asking
        it: the same answer alone is not enough ("Yes." answers many questions), the judge must
        also read the question as answered by that entry."""
        async with self.db.read() as session:
            if await repository.active_entry_by_question(session=session, normalized=normalize_question(question)):
                return None
            entry = await repository.active_entry_by_answer(session=session, normalized=normalize_question(answer))
            if entry is None:
                return None
            phrasings = await repository.phrasings_of(session=session, entry_ids=[entry.id])
            wordings = [entry.question, *(p.text for p in phrasings.get(entry.id, ()))]
        if self.judge is None or len(wordings) > MAX_PHRASINGS:
            return None
        texts = [entry_text(w, entry.answer) for w in wordings]
        return entry.id if max(await self.judge_pairs(question, texts)) >= SAME_ANSWER else None

    async def _add_phrasing(
        self,
        session: AsyncSession,
        entry: KnowledgeBaseEntry,
        text: str,
        embedding: bytes | None,
        *,
        source_request_id: str | None,
        now: datetime,
        actor: str,
    ) -> None:
        normalized = normalize_question(text)
        if normalized == entry.normalized_question:
            return
        owner = await repository.phrasing_owner(session=session, normalized=normalized)
        if owner is not None and owner.entry_id == entry.id:
            return
        if owner is not None:
            # The latest supervisor's choice wins: one wording leads to one entry.
            previous = await self._active(session, owner.entry_id, lock=True)
            await session.delete(owner)
            previous.revision = await repository.bump_kb_revision(session=session)
            repository.add_kb_change(
                session=session, entry=previous, at=now, action="phrasing removed", actor=actor, phrasing=owner.text
            )
        session.add(
            KnowledgeBasePhrasing(
                entry_id=entry.id,
                text=text.strip(),
                normalized=normalized,
                embedding=embedding,
                embedding_model=self.embedder.name if embedding is not None and self.embedder else None,
                source_request_id=source_request_id,
                created_at=now,
                actor=actor,
            )
        )
        entry.updated_at = now
        entry.revision = await repository.bump_kb_revision(session=session)
        repository.add_kb_change(
            session=session,
            entry=entry,
            at=now,
            action="phrasing added",
            actor=actor,
            phrasing=text.strip(),
            source_request_id=source_request_id,
        )

    async def add_phrasing(self, entry_id: str, *, text: str, actor: str) -> KnowledgeBaseEntryView:
        """A supervisor adds a way of asking an entry's question by hand."""
        vectors = await self.embed([text])
        now = self.clock()
        async with self.db.transaction() as session:
            entry = await self._active(session, entry_id, lock=True)
            clash = await repository.active_entry_by_question(session=session, normalized=normalize_question(text))
            if clash is not None and clash.id != entry.id:
                raise Conflict(f"this is the question of another entry: {clash.id}")
            embedding = None if vectors is None else vectors[0].tobytes()
            await self._add_phrasing(session, entry, text, embedding, source_request_id=None, now=now, actor=actor)
            view = await self._view(session, entry)
        await self.after_write()
        return view

    async def remove_phrasing(self, entry_id: str, phrasing_id: str, *, actor: str) -> KnowledgeBaseEntryView:
        now = self.clock()
        async with self.db.transaction() as session:
            entry = await self._active(session, entry_id, lock=True)
            storable = len(phrasing_id) <= 36 and "\x00" not in phrasing_id  # no such id can exist
            phrasing = await session.get(KnowledgeBasePhrasing, phrasing_id) if storable else None
            if phrasing is None or phrasing.entry_id != entry.id:
                raise NotFound("phrasing", phrasing_id)
            await session.delete(phrasing)
            entry.updated_at = now
            entry.revision = await repository.bump_kb_revision(session=session)
            repository.add_kb_change(
                session=session, entry=entry, at=now, action="phrasing removed", actor=actor, phrasing=phrasing.text
            )
            await session.flush()
            view = await self._view(session, entry)
        await self.after_write()
        return view

    async def _view(self, session: AsyncSession, entry: KnowledgeBaseEntry) -> KnowledgeBaseEntryView:
        phrasings = await repository.phrasings_of(session=session, entry_ids=[entry.id])
        return entry_view(entry, phrasings.get(entry.id, ()))

    @staticmethod
    def _vector_values(vectors: EntryVectors | None) -> dict[str, object]:
        if vectors is None:
            return {"question_embedding": None, "qa_embedding": None, "embedding_model": None}
        return {"question_embedding": vectors.question, "qa_embedding": vectors.qa, "embedding_model": vectors.model}

    async def create(self, *, question: str, answer: str, topic: str | None, actor: str) -> KnowledgeBaseEntryView:
        vectors = await self.entry_vectors(question, answer)
        now = self.clock()
        async with self.db.transaction() as session:
            existing = await repository.active_entry_by_question(
                session=session, normalized=normalize_question(question)
            )
            if existing is not None:
                raise Conflict(f"an entry with this question exists already: {existing.id}; edit it instead")
            learned = await self.learn(
                session=session,
                question=question,
                answer=answer,
                topic=topic,
                source_request_id=None,
                vectors=vectors,
                now=now,
                actor=actor,
            )
            view = await self._view(session, learned.entry)
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
            entry.answer, entry.normalized_answer = new_answer.strip(), normalize_question(new_answer)
            if topic is not None:
                entry.topic = topic or None
            for name, value in self._vector_values(vectors).items():
                setattr(entry, name, value)
            entry.updated_at = now
            entry.revision = await repository.bump_kb_revision(session=session)
            repository.add_kb_change(session=session, entry=entry, at=now, action="edited", actor=actor)
            view = await self._view(session, entry)
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
            view = await self._view(session, entry)
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
            phrasings = await repository.phrasings_of(session=session, entry_ids=[e.id for e in entries])
            return [entry_view(e, phrasings.get(e.id, ())) for e in entries]

    async def get(self, entry_id: str) -> tuple[KnowledgeBaseEntryView, list[dict[str, object]]]:
        async with self.db.read() as session:
            entry = await repository.get_entry(session=session, entry_id=entry_id)
            if entry is None:
                raise NotFound("knowledge base entry", entry_id)
            changes = await repository.kb_changes(session=session, entry_id=entry_id)
            history = [
                {
                    "at": c.at.isoformat(),
                    "action": c.action,
                    "actor": c.actor,
                    "question": c.question,
                    "answer": c.answer,
                    "topic": c.topic,
                    "phrasing": c.phrasing,
                }
                for c in changes
            ]
            return await self._view(session, entry), history

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
                phrasings = await repository.phrasings_of(
                    session=session, entry_ids=[e.id for e in entries], embeddings=True
                )
            model = self.embedder.name if self.embedder else None
            self.index.apply(
                (
                    IndexRow(
                        row=_EntryRow.of(e, phrasings.get(e.id, ())),
                        normalized_question=e.normalized_question,
                        question_embedding=e.question_embedding if e.embedding_model == model else None,
                        qa_embedding=e.qa_embedding if e.embedding_model == model else None,
                        phrasings=tuple(
                            PhrasingRow(p.id, p.text, p.normalized, p.embedding if p.embedding_model == model else None)
                            for p in phrasings.get(e.id, ())
                        ),
                    )
                    for e in entries
                ),
                revision,
            )
            self._checked_at = now
        for e in entries:
            self.changes.emit(Change(Subject.KNOWLEDGE_BASE, e.id))

    async def search(self, query: str) -> SearchResult:
        vectors = await self.embed_query(query)
        await self.sync(force=False)
        return await search(
            query,
            None if vectors is None else vectors[0],
            index=self.index,
            lexicon=self.lexicon,
            judge=None if self.judge is None else self.judge_pairs,
            verifier=self.verifier,
        )

    async def embed_query(self, query: str) -> np.ndarray | None:
        # The model's tokenizer lowercases and splits on whitespace, so texts differing only there
        # have the same vector.
        key = " ".join(query.lower().split())
        cached = self._query_vectors.get(key)
        if cached is None:
            cached = await self.embed([query])
            if cached is not None:
                if len(self._query_vectors) >= QUERY_CACHE:
                    self._query_vectors.pop(next(iter(self._query_vectors)))
                self._query_vectors[key] = cached
        return cached

    # --- start-up -----------------------------------------------------------------------------

    async def backfill_embeddings(self, batch: int = 64) -> int:
        """Embed entries written without the current model (older rows, or a model change)."""
        if self.embedder is None:
            return 0
        done = 0
        while True:
            async with self.db.read() as session:
                todo = await repository.without_embeddings(
                    session=session, table=KnowledgeBaseEntry, model=self.embedder.name, limit=batch
                )
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
        while True:
            async with self.db.read() as session:
                phrasings = await repository.without_embeddings(
                    session=session, table=KnowledgeBasePhrasing, model=self.embedder.name, limit=batch
                )
                work = [(p.id, p.text) for p in phrasings]
            if not work:
                break
            vectors = await self.embed([text for _, text in work])
            assert vectors is not None
            async with self.db.transaction() as session:
                revision = await repository.bump_kb_revision(session=session)
                for vector, (phrasing_id, _) in zip(vectors, work, strict=True):
                    phrasing = await session.get(KnowledgeBasePhrasing, phrasing_id)
                    entry = (
                        None
                        if phrasing is None
                        else await repository.get_entry(session=session, entry_id=phrasing.entry_id)
                    )
                    if phrasing is None or entry is None:
                        continue
                    phrasing.embedding, phrasing.embedding_model = vector.tobytes(), self.embedder.name
                    entry.revision = revision
            done += len(work)
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
                    entry_vectors = EntryVectors(
                        vectors[2 * n].tobytes(), vectors[2 * n + 1].tobytes(), self.embedder.name
                    )
                await self.learn(
                    session=session,
                    question=item["question"],
                    answer=item["answer"],
                    topic=item.get("topic"),
                    source_request_id=None,
                    vectors=entry_vectors,
                    now=now,
                    actor="starter KB",
                )
        log.info("loaded %d starter KB entries from %s", len(items), path)
        return len(items)
