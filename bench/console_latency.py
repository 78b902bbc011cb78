"""How fast the supervisor console shows a change: API write -> visible in headless Chromium.

Starts `python -m app` on a throw-away SQLite database, opens the console, then N times: files a
request through the API and times until its card is on the page; answers it through the API and
times until the card is gone. Prints a table in milliseconds, counted from sending the API request
(includes its own work: embedding, KB write) and from its reply (the push to the page alone); both
include Playwright's own round trip of a few ms."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import httpx
from common import BACKEND, percentile, table
from playwright.sync_api import sync_playwright

N = int(os.environ.get("BENCH_N", "40"))
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = os.path.join(tempfile.mkdtemp(prefix="hitl-bench-"), "hitl.db")
    env = {k: v for k, v in os.environ.items() if k not in ("SUPERVISOR_TOKEN", "AGENT_TOKEN")}
    env.update(PORT=str(port), HOST="127.0.0.1", KB_SEED_FILE="", DATABASE_URL=f"sqlite+aiosqlite:///{db}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app"], cwd=BACKEND, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def main() -> None:
    if not shutil.which("chromium"):
        raise SystemExit("needs Debian's chromium: apt-get install -y chromium")
    proc, base = start_server()
    appear, vanish, appear_after, vanish_after = [], [], [], []
    try:
        api = httpx.Client(base_url=base, timeout=10)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)
            page = browser.new_page()
            page.goto(base + "/")
            page.locator("#live.on").wait_for()
            for i in range(N):
                word = "B" + uuid.uuid4().hex[:8]
                card = page.locator("#pending-list .card", has_text=word)
                t0 = time.perf_counter()
                rid = api.post(
                    "/api/help-requests", json={"customer_name": "Bench", "question": f"Do you do {word}?"}
                ).json()["id"]
                t1 = time.perf_counter()
                card.wait_for(state="visible")
                appear.append((time.perf_counter() - t0) * 1000)
                appear_after.append((time.perf_counter() - t1) * 1000)
                t0 = time.perf_counter()
                api.post(f"/api/help-requests/{rid}/response", json={"answer": "Yes."})
                t1 = time.perf_counter()
                card.wait_for(state="detached")
                vanish.append((time.perf_counter() - t0) * 1000)
                vanish_after.append((time.perf_counter() - t1) * 1000)
                if (i + 1) % 10 == 0:
                    print(f"{i + 1}/{N} changes", file=sys.stderr, flush=True)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(20)
    rows = [
        [
            name,
            N,
            f"{percentile(v, 50):.0f}",
            f"{percentile(v, 95):.0f}",
            f"{max(v):.0f}",
            f"{percentile(after, 50):.0f}",
            f"{percentile(after, 95):.0f}",
        ]
        for name, v, after in (
            ("new request shown", appear, appear_after),
            ("answered request removed", vanish, vanish_after),
        )
    ]
    print(table(["change", "n", "from request p50 ms", "p95", "max", "from API reply p50 ms", "p95"], rows))


if __name__ == "__main__":
    main()
