"""Shared set-up for the benchmarks: the real KB service on a throw-away SQLite database."""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

BACKEND = Path(__file__).resolve().parent.parent / "backend"
sys.path.insert(0, str(BACKEND))

from app.config import DEFAULT_LEXICON  # noqa: E402
from app.db import Database  # noqa: E402
from app.services.kb.embeddings import load_embedder  # noqa: E402
from app.services.kb.judge import load_judge  # noqa: E402
from app.services.kb.lexicon import load_lexicon  # noqa: E402
from app.services.kb.service import KnowledgeBase  # noqa: E402


async def fresh_kb(embedder=None, lexicon: str = str(DEFAULT_LEXICON)) -> tuple[KnowledgeBase, Database]:  # type: ignore[no-untyped-def]
    path = Path(tempfile.mkdtemp(prefix="hitl-bench-")) / "kb.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.migrate()
    kb = KnowledgeBase(db, lexicon=load_lexicon(lexicon), embedder=embedder or load_embedder(), judge=load_judge())
    return kb, db


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells[1:])])


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0
