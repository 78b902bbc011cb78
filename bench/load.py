"""Load on the escalation path: simulated callers (KB search, then a help request) and supervisors
(list pending, answer one) against real server processes, with thousands of requests pending.

    backend/.venv/bin/python bench/load.py [--clients 16 64 256] [--seconds 10] [--pending 5000]
                                           [--setups sqlite postgres postgres-2] [--no-search]

Setups: `sqlite` (one process, the default database), `postgres` (one process) and `postgres-2`
(two processes on one database, clients spread over both). PostgreSQL comes from TEST_POSTGRES_URL
(default postgresql://postgres@127.0.0.1:5432/test; a fresh database per setup). Prints a table per
setup and writes bench/results/load-<setup>.json. Client and servers share this machine's cores,
so the figures are a floor, not a ceiling. The client is aiohttp: httpx's client costs ~20x more CPU
per request (a do-nothing FastAPI endpoint served 490 requests/s to 64 httpx clients on these two
cores, 11,300/s to 64 aiohttp ones), enough to be what a bench of it measured."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import httpx
from common import BACKEND, percentile, table

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# Under uvicorn's 5 s: the client drops an idle connection before the server can close it under a
# request on its way (a POST lost that way cannot be retried).
KEEPALIVE = 2.0
TIMEOUT = aiohttp.ClientTimeout(total=60)
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SUBJECTS = [
    "balayage",
    "a perm",
    "keratin",
    "a beard trim",
    "an updo",
    "gel nails",
    "lash extensions",
    "a scalp treatment",
    "hair extensions",
    "a bridal trial",
    "a gloss",
    "brow lamination",
    "a toner",
    "a fade",
    "a kids' cut",
]
ASKS = [
    "Do you do {s} on {d}?",
    "How much is {s} for my {w}?",
    "Can I book {s} for {d} morning?",
    "Is {s} ok if I'm {w}?",
    "Do you have {s} openings on {d}?",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
WHO = ["daughter", "son", "mother", "wedding party", "pregnant", "allergic to latex", "in a wheelchair", "new client"]


def question(rng: random.Random) -> str:
    return (
        rng.choice(ASKS).format(s=rng.choice(SUBJECTS), d=rng.choice(DAYS), w=rng.choice(WHO))
        + f" (ref {rng.randrange(10**6)})"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def create_pg_database() -> str:
    import asyncpg

    name = f"hitl_load_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        conn = await asyncpg.connect(PG_URL)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()

    asyncio.run(create())
    return PG_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1) + f"/{name}"


def start_servers(database_url: str, count: int, log_dir: Path) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    procs, bases = [], []
    for n in range(count):
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("SUPERVISOR_TOKEN", "AGENT_TOKEN")}
        env.update(DATABASE_URL=database_url, HOST="127.0.0.1", PORT=str(port), REQUEST_TIMEOUT_SECONDS="86400")
        log = (log_dir / f"server{n}.log").open("ab")
        procs.append(
            subprocess.Popen([sys.executable, "-m", "app"], cwd=BACKEND, env=env, stdout=log, stderr=subprocess.STDOUT)
        )
        bases.append(f"http://127.0.0.1:{port}")
        # One at a time: the first migrates and seeds the KB.
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{bases[-1]}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or procs[-1].poll() is not None:
                raise SystemExit(f"server {n} did not start; see {log_dir}")
            time.sleep(0.2)
    return procs, bases


class Stats:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}

    async def timed(self, name: str, call) -> object:  # type: ignore[no-untyped-def]
        """The response body as JSON, or None on an error (counted)."""
        started = time.perf_counter()
        try:
            async with call as response:
                # An error's body may not be JSON (uvicorn's 500 is text): the status says enough.
                body = await response.json() if response.status < 400 else None
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.errors[f"{name} {type(exc).__name__}"] = self.errors.get(f"{name} {type(exc).__name__}", 0) + 1
            return None
        self.latency.setdefault(name, []).append((time.perf_counter() - started) * 1000)
        if response.status >= 400:
            if response.status != 409:
                key = f"{name} {response.status}"
                self.errors[key] = self.errors.get(key, 0) + 1
            return None
        return body


async def caller(
    client: aiohttp.ClientSession, stats: Stats, stop: float, rng: random.Random, search: bool = True
) -> None:
    while time.monotonic() < stop:
        q = question(rng)
        if search:
            await stats.timed("search", client.get("/api/knowledge-base/search", params={"q": q}))
        await stats.timed(
            "escalate",
            client.post(
                "/api/help-requests", json={"customer_name": "Load", "question": q, "customer_contact": "+14155550100"}
            ),
        )


async def supervisor(client: aiohttp.ClientSession, stats: Stats, stop: float, rng: random.Random) -> None:
    while time.monotonic() < stop:
        listed = await stats.timed(
            "list pending", client.get("/api/help-requests", params={"status": "pending", "limit": 50})
        )
        if not listed:
            continue
        rid = rng.choice(listed)["id"]
        await stats.timed(
            "answer",
            client.post(
                f"/api/help-requests/{rid}/response",
                json={"answer": f"Yes, call us to book (ref {rng.randrange(10**6)})."},
            ),
        )


async def fill(bases: list[str], pending: int) -> None:
    rng = random.Random(1)
    connector = aiohttp.TCPConnector(limit=64, keepalive_timeout=KEEPALIVE)
    async with aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as client:
        sem = asyncio.Semaphore(32)

        async def one(n: int) -> None:
            async with sem:
                body = {"customer_name": "Waiting", "question": question(rng), "customer_contact": "+14155550100"}
                async with client.post(f"{bases[n % len(bases)]}/api/help-requests", json=body) as response:
                    response.raise_for_status()

        await asyncio.gather(*(one(n) for n in range(pending)))


async def phase(bases: list[str], clients: int, seconds: float, search: bool = True) -> dict[str, object]:
    stats = Stats()
    stop = time.monotonic() + seconds
    sessions = [
        aiohttp.ClientSession(
            base_url=b,
            connector=aiohttp.TCPConnector(limit=clients + 8, keepalive_timeout=KEEPALIVE),
            timeout=TIMEOUT,
        )
        for b in bases
    ]
    workers = []
    for n in range(clients):
        session, rng = sessions[n % len(sessions)], random.Random(n)
        # One supervisor for seven callers.
        workers.append(
            supervisor(session, stats, stop, rng) if n % 8 == 7 else caller(session, stats, stop, rng, search)
        )
    started = time.monotonic()
    await asyncio.gather(*workers)
    elapsed = time.monotonic() - started
    for s in sessions:
        await s.close()
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "endpoints": {
            name: {
                "count": len(v),
                "per_second": round(len(v) / elapsed, 1),
                "p50_ms": round(percentile(v, 50), 1),
                "p99_ms": round(percentile(v, 99), 1),
            }
            for name, v in sorted(stats.latency.items())
        },
        "errors": stats.errors,
    }


def run_setup(setup: str, args: argparse.Namespace) -> dict[str, object]:
    log_dir = Path(tempfile.mkdtemp(prefix=f"hitl-load-{setup}-"))
    url = f"sqlite+aiosqlite:///{log_dir / 'hitl.db'}" if setup == "sqlite" else create_pg_database()
    procs, bases = start_servers(url, 2 if setup == "postgres-2" else 1, log_dir)
    try:
        print(f"[{setup}] filling {args.pending:,} pending requests ...", flush=True)
        started = time.monotonic()
        asyncio.run(fill(bases, args.pending))
        print(f"[{setup}]   {args.pending / (time.monotonic() - started):.0f} creates/s while filling", flush=True)
        phases = []
        for clients in args.clients:
            print(f"[{setup}] {clients} clients for {args.seconds:g} s ...", flush=True)
            phases.append(asyncio.run(phase(bases, clients, args.seconds, search=not args.no_search)))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)
    return {
        "setup": setup,
        "processes": len(bases),
        "pending_at_start": args.pending,
        "search_first": not args.no_search,
        "phases": phases,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--no-search",
        action="store_true",
        help="callers escalate without a KB search first: the escalation path alone (each create embeds its question)",
    )
    parser.add_argument("--pending", type=int, default=5000)
    parser.add_argument(
        "--setups",
        nargs="+",
        default=["sqlite", "postgres", "postgres-2"],
        choices=["sqlite", "postgres", "postgres-2"],
    )
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    for setup in args.setups:
        result = run_setup(setup, args)
        result.update(machine=machine, date=datetime.now(UTC).isoformat(timespec="seconds"))
        name = f"load-{setup}" + ("-escalate-only" if args.no_search else "")
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
        rows = []
        for p in result["phases"]:  # type: ignore[attr-defined]
            for name, e in p["endpoints"].items():
                errors = sum(n for k, n in p["errors"].items() if k.startswith(name))
                rows.append([p["clients"], name, e["per_second"], e["p50_ms"], e["p99_ms"], errors])
        flow = "escalate only" if args.no_search else "search, then escalate"
        print(f"\n{setup} ({result['processes']} process(es), {args.pending:,} pending at start, {flow}; {machine})")
        print(table(["clients", "endpoint", "per s", "p50 ms", "p99 ms", "errors"], rows))


if __name__ == "__main__":
    main()
