"""KB search latency and memory at scale: p50/p99 of a search (query embedding included) and of a
KB write (embedding included) with 1k, 10k and 100k entries in the knowledge base.

    backend/.venv/bin/python bench/kb_scale.py [--sizes 1000 10000 100000] [--queries 300]

Entries are synthetic salon questions. Embedding 200k texts here would take about 20 minutes, so
1,000 distinct entries get real embeddings and the rest reuse them with a little noise: search cost
depends on the number of rows, not on what they say. Queries and writes use real embeddings."""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import random
import time
from datetime import UTC
from pathlib import Path

import numpy as np
from common import fresh_kb, percentile, table
from sqlalchemy import insert, update

from app.models import KnowledgeBaseEntry, KnowledgeBaseState
from app.questions import normalize_question
from app.services.kb.embeddings import load_embedder

ROOT = Path(__file__).resolve().parent.parent
SERVICES = [
    "women's haircut",
    "men's haircut",
    "kids' haircut",
    "blowout",
    "balayage",
    "partial highlights",
    "full highlights",
    "lowlights",
    "single-process color",
    "root touch-up",
    "keratin treatment",
    "perm",
    "beard trim",
    "hot towel shave",
    "updo",
    "bridal styling",
    "deep conditioning",
    "gel manicure",
    "pedicure",
    "eyebrow wax",
    "lash lift",
    "brow tint",
    "skin fade",
    "toner",
    "scalp treatment",
]
ASKS = [
    "How much is a {s}",
    "How long does a {s} take",
    "Can I book a {s}",
    "Do you do a {s}",
    "Is a deposit needed for a {s}",
    "Can I get a {s} as a walk-in",
    "Who does the best {s}",
    "Can I cancel a {s}",
    "Is there a discount on a {s}",
    "What should I do before a {s}",
]
WHEN = [
    "",
    " on Saturday",
    " on Sunday",
    " on a weekday",
    " in the morning",
    " in the evening",
    " next week",
    " for a wedding",
    " for prom",
    " for my daughter",
]


def synthetic(n: int) -> list[tuple[str, str]]:
    combos = itertools.product(range(10_000), SERVICES, ASKS, WHEN)
    out = []
    for variant, service, ask, when in combos:
        suffix = "" if variant == 0 else f" (option {variant})"
        question = ask.format(s=service) + when + suffix + "?"
        out.append((question, f"For a {service}{when}: call us and we'll sort it out (note {variant})."))
        if len(out) == n:
            return out
    return out


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def fill(kb, db, items: list[tuple[str, str]], base: np.ndarray, rng: np.random.Generator) -> None:  # type: ignore[no-untyped-def]
    from datetime import datetime
    from uuid import uuid4

    now = datetime.now(UTC)
    for start in range(0, len(items), 5000):
        rows = []
        for i, (question, answer) in enumerate(items[start : start + 5000], start):
            vectors = base[(2 * (i % (len(base) // 2))) : (2 * (i % (len(base) // 2))) + 2]
            noisy = vectors + rng.normal(0, 0.02, vectors.shape).astype(np.float32)
            noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
            rows.append(
                {
                    "id": str(uuid4()),
                    "question": question,
                    "normalized_question": normalize_question(question),
                    "answer": answer,
                    "normalized_answer": normalize_question(answer),
                    "topic": "synthetic",
                    "created_at": now,
                    "updated_at": now,
                    "times_used": 0,
                    "revision": 1,
                    "question_embedding": noisy[0].tobytes(),
                    "qa_embedding": noisy[1].tobytes(),
                    "embedding_model": kb.embedder.name,
                }
            )
        async with db.transaction() as session:
            await session.execute(insert(KnowledgeBaseEntry), rows)
            if start == 0:
                await session.execute(update(KnowledgeBaseState).values(revision=1))
        print(f"  {min(start + 5000, len(items)):>7} / {len(items)} entries written", flush=True)


async def measure(
    n: int, queries: list[str], base_items: list[tuple[str, str]], base: np.ndarray, embedder
) -> list[object]:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    kb, db = await fresh_kb(embedder)
    items = synthetic(n)
    await fill(kb, db, items, base, rng)
    gc.collect()
    before = rss_mb()
    started = time.perf_counter()
    await kb.sync()
    load_s = time.perf_counter() - started
    gc.collect()
    index_mb = rss_mb() - before
    searches, judged_twice = [], []
    for query in queries:
        kb._query_vectors.clear()  # every search pays for its query embedding
        started = time.perf_counter()
        result = await kb.search(query)
        searches.append((time.perf_counter() - started) * 1000)
        # The judge reads only candidates no check has ruled out: the searches it read two for are
        # the slowest kind, reported apart so the mix of questions does not hide them.
        if sum(c.judged is not None for c in result.candidates) == 2:
            judged_twice.append(searches[-1])
    writes = []
    for k in range(40):
        started = time.perf_counter()
        await kb.create(
            question=f"Do you offer service number {k} for {n} clients?",
            answer=f"Yes, service {k} is $50.",
            topic="bench",
            actor="bench",
        )
        writes.append((time.perf_counter() - started) * 1000)
    await db.dispose()
    return [
        f"{n:,}",
        f"{load_s:.1f}",
        f"{index_mb:.0f}",
        f"{percentile(searches, 50):.1f}",
        f"{percentile(searches, 99):.1f}",
        f"{len(judged_twice)}",
        f"{percentile(judged_twice, 99):.1f}" if judged_twice else "-",
        f"{percentile(writes, 50):.1f}",
        f"{percentile(writes, 99):.1f}",
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    embedder = load_embedder()
    assert embedder is not None, "the embedding model is not installed (make setup)"
    queries = []
    for name in ("kb_starter_eval.json", "kb_holdout_eval.json"):
        data = json.loads((ROOT / "bench" / "data" / name).read_text())
        queries += [p["q"] for p in data["positives"]] + data["negatives"]
    random.Random(3).shuffle(queries)
    queries = (queries * (args.queries // len(queries) + 1))[: args.queries]
    base_items = synthetic(1000)
    print("embedding 1,000 distinct synthetic entries (question, and question + answer) ...", flush=True)
    started = time.perf_counter()
    base = np.concatenate(
        [embedder.embed([t for q, a in base_items[i : i + 50] for t in (q, f"{q} {a}")]) for i in range(0, 1000, 50)]
    )
    print(f"  {2000 / (time.perf_counter() - started):.0f} texts/s")
    rows = []
    for n in args.sizes:
        print(f"KB of {n:,} entries:")
        rows.append(await measure(n, queries, base_items, base, embedder))
    print()
    print(
        table(
            [
                "entries",
                "index load s",
                "index MB",
                "search p50 ms",
                "search p99 ms",
                "searches judging 2",
                "their p99 ms",
                "write p50 ms",
                "write p99 ms",
            ],
            rows,
        )
    )
    print(f"(searches: {len(queries)} caller questions, each embedded afresh; writes: 40 new entries each)")


if __name__ == "__main__":
    asyncio.run(main())
