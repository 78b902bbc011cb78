"""Answer-or-escalate quality on labelled sets: recall, wrong answers and search latency, per set and
per group (tuned apart from held-out), beside plain MiniLM cosine similarity as a baseline.

    backend/.venv/bin/python bench/kb_eval.py [--lexicon PATH|''] [--misses] [SET.json ...]

Each set holds `entries` (written into an empty KB as supervisors' answers), `positives` ({q,
expect}: the entry whose answer the caller should hear) and `negatives` (no entry answers them:
the agent must escalate). A wrong answer is a positive matched to another entry or a negative
matched to any entry. Groups: `tuned` (shared/eval/kb_dev.json, bench/data/tuned/: the judge's bar
is chosen on them), `salon` (bench/data/kb_*.json: earlier salon sets, tuned on long ago) and
`held-out` (bench/data/heldout/: run once per shipped decision, after it was chosen; a set whose
results changed the decision moves to tuned/). The baseline answers with the entry of highest
cosine similarity (query ~ question + answer) when it reaches 0.65."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import numpy as np
from common import DEFAULT_LEXICON, fresh_kb, percentile, table

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
BASELINE_THRESHOLD = 0.65


def default_sets() -> list[tuple[str, Path]]:
    sets = [("tuned", ROOT.parent / "shared" / "eval" / "kb_dev.json")]
    sets += [("tuned", p) for p in sorted((DATA / "tuned").glob("*.json"))]
    sets += [("salon", p) for p in sorted(DATA.glob("kb_*.json"))]
    sets += [("held-out", p) for p in sorted((DATA / "heldout").glob("*.json"))]
    return sets


class Tally:
    def __init__(self) -> None:
        self.entries = self.positives = self.negatives = self.found = self.wrong = 0
        self.base_found = self.base_wrong = 0
        self.latencies: list[float] = []

    def add(self, other: Tally) -> None:
        for name in ("entries", "positives", "negatives", "found", "wrong", "base_found", "base_wrong"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.latencies += other.latencies

    def row(self, name: str) -> list[object]:
        asked = self.positives + self.negatives
        return [
            name,
            self.entries,
            self.positives,
            self.negatives,
            f"{self.found / self.positives:.2f}",
            self.wrong,
            f"{100 * self.wrong / asked:.1f}",
            f"{self.base_found / self.positives:.2f}",
            self.base_wrong,
            f"{percentile(self.latencies, 50):.1f}",
            f"{percentile(self.latencies, 99):.1f}",
        ]


async def evaluate(path: Path, lexicon: str, show_misses: bool) -> Tally:
    data = json.loads(path.read_text())
    kb, db = await fresh_kb(lexicon=lexicon)
    assert kb.embedder is not None, "the model package is not installed"
    ids = []
    for entry in data["entries"]:
        view = await kb.create(
            question=entry["question"], answer=entry["answer"], topic=entry.get("topic"), actor="bench"
        )
        ids.append(view.id)
    docs = kb.embedder.embed([f"{e['question']} {e['answer']}" for e in data["entries"]])
    await kb.search("warm-up")
    tally = Tally()
    tally.entries, tally.positives, tally.negatives = len(ids), len(data["positives"]), len(data["negatives"])
    cases = [(c["q"], c["expect"]) for c in data["positives"]] + [(q, None) for q in data["negatives"]]
    for query, expect in cases:
        started = time.perf_counter()
        result = await kb.search(query)
        tally.latencies.append((time.perf_counter() - started) * 1000)
        sims = docs @ kb.embedder.embed([query])[0]
        best = int(np.argmax(sims))
        if sims[best] >= BASELINE_THRESHOLD:
            if best == expect:
                tally.base_found += 1
            else:
                tally.base_wrong += 1
        if result.match and expect is not None and result.match.id == ids[expect]:
            tally.found += 1
        elif result.match:
            tally.wrong += 1
            should = "should escalate" if expect is None else f"should be {data['entries'][expect]['question']!r}"
            print(f"  WRONG  {query!r} ({should}) -> {result.match.question!r}")
        elif show_misses and expect is not None:
            mine = next((c for c in result.candidates if c.entry.id == ids[expect]), None)
            why = f"{mine.score:.2f}/{mine.judged}, {mine.rejected}" if mine else "not among the candidates"
            print(f"  miss   {query!r} -> {data['entries'][expect]['question']!r}: {why}")
    await db.dispose()
    return tally


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="*", type=Path, help="sets to run (default: every set, grouped)")
    parser.add_argument("--lexicon", default=str(DEFAULT_LEXICON), help="KB_LEXICON_FILE to use ('' for none)")
    parser.add_argument("--misses", action="store_true", help="print each answerable question that escalated, and why")
    args = parser.parse_args()
    sets = [("", p) for p in args.sets] or default_sets()
    rows, groups = [], {}
    for group, path in sets:
        print(f"evaluating {path.name} ...", flush=True)
        tally = await evaluate(path, args.lexicon, args.misses)
        rows.append(tally.row(f"{group + ': ' if group else ''}{path.stem}"))
        groups.setdefault(group, Tally()).add(tally)
    rows += [tally.row(f"**{group or 'all'} total**") for group, tally in groups.items()]
    print(f"\nlexicon: {args.lexicon or 'none'}")
    print(
        table(
            [
                "set",
                "entries",
                "answerable",
                "unanswerable",
                "recall",
                "wrong",
                "wrong per 100",
                "cosine recall",
                "cosine wrong",
                "search p50 ms",
                "search p99 ms",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
