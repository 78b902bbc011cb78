"""Answer-or-escalate quality on labelled sets: recall, wrong answers, and search latency.

    backend/.venv/bin/python bench/kb_eval.py [SET.json ...] [--misses]

Each set holds `entries` (loaded into an empty KB), `positives` ({q, expect}: the entry whose
answer the caller should hear) and `negatives` (no entry answers them: the agent must escalate).
A wrong answer is a positive matched to another entry or a negative matched to any entry."""
from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from common import fresh_kb, percentile, table

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SETS = [
    ROOT.parent / "shared" / "eval" / "kb_dev.json",
    ROOT / "bench" / "data" / "kb_starter_eval.json",
    ROOT / "bench" / "data" / "kb_holdout_eval.json",
]


async def evaluate(path: Path, show_misses: bool) -> list[object]:
    data = json.loads(path.read_text())
    kb, db = await fresh_kb()
    ids = []
    for entry in data["entries"]:
        view = await kb.create(question=entry["question"], answer=entry["answer"], topic=entry.get("topic"), actor="bench")
        ids.append(view.id)
    await kb.search("warm-up")
    latencies, found, wrong = [], 0, []
    for case in data["positives"]:
        started = time.perf_counter()
        result = await kb.search(case["q"])
        latencies.append((time.perf_counter() - started) * 1000)
        if result.match and result.match.id == ids[case["expect"]]:
            found += 1
        elif result.match:
            wrong.append(f"WRONG  {case['q']!r} -> {result.match.question!r}")
        elif show_misses:
            mine = next((c for c in result.candidates if c.entry.id == ids[case["expect"]]), None)
            why = f"{mine.score:.2f}, {mine.rejected}" if mine else "not among the candidates"
            print(f"  miss   {case['q']!r}: {why}")
    for query in data["negatives"]:
        started = time.perf_counter()
        result = await kb.search(query)
        latencies.append((time.perf_counter() - started) * 1000)
        if result.match:
            wrong.append(f"WRONG  {query!r} (should escalate) -> {result.match.question!r}")
    for line in wrong:
        print("  " + line)
    await db.dispose()
    positives = len(data["positives"])
    return [path.name, len(data["entries"]), positives, len(data["negatives"]), f"{found / positives:.2f}",
            len(wrong), f"{percentile(latencies, 50):.1f}", f"{percentile(latencies, 99):.1f}"]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="*", type=Path, default=DEFAULT_SETS)
    parser.add_argument("--misses", action="store_true", help="print each answerable question that escalated, and why")
    args = parser.parse_args()
    rows = []
    for path in args.sets:
        print(f"evaluating {path} ...")
        rows.append(await evaluate(path, args.misses))
    print()
    print(table(["set", "entries", "answerable", "unanswerable", "recall", "wrong answers", "search p50 ms", "search p99 ms"], rows))


if __name__ == "__main__":
    asyncio.run(main())
