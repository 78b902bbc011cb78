"""The worker in production (`start`): a SIGTERM during a call lets the call finish, takes no new
call meanwhile, and the worker then exits 0. The real worker process, registered with a stand-in
for LiveKit's dispatch; only the WebRTC room is a stand-in (tests/agent/worker_in_stand_in_room.py)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from livekit.protocol.agent import WorkerStatus

from app.config import BACKEND_DIR
from tests.agent.livekit_dispatch_stand_in import DispatchStandIn

LAUNCHER = Path(__file__).with_name("worker_in_stand_in_room.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class Worker:
    def __init__(self, proc: subprocess.Popen[str], log: Path, health_port: int) -> None:
        self.proc, self.log, self.health_url = proc, log, f"http://127.0.0.1:{health_port}/"

    def running(self) -> bool:
        return self.proc.poll() is None

    def log_records(self) -> list[dict[str, object]]:
        records = []
        for line in self.log.read_text().splitlines():
            if line.startswith("{"):
                records.append(json.loads(line))
        return records


@pytest.fixture
def dispatch() -> DispatchStandIn:
    return DispatchStandIn(agent_name="frontdesk")


@pytest.fixture
def worker(dispatch: DispatchStandIn, tmp_path: Path) -> Iterator[Worker]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "LLM_", "VOICE_"))}
    port = _free_port()
    env = {
        **clean,
        "PYTHONPATH": str(BACKEND_DIR),
        "LIVEKIT_URL": dispatch.url,
        "LIVEKIT_API_KEY": "APIstandin",
        "LIVEKIT_API_SECRET": "stand-in-secret-of-32-characters",
        "LIVEKIT_AGENT_NAME": "frontdesk",
        "WORKER_HTTP_PORT": str(port),
        # Nothing answers there: the greeting cannot be spoken, which no part of the drain needs.
        "LLM_BASE_URL": "http://127.0.0.1:9/v1",
        "HITL_URL": "http://127.0.0.1:9",
        "STAND_IN_CALLS": str(tmp_path),
    }
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(LAUNCHER), "start"],
            cwd=BACKEND_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        yield Worker(proc, log, port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_sigterm_during_a_call_lets_it_finish_then_exits_0(
    dispatch: DispatchStandIn, worker: Worker, tmp_path: Path
) -> None:
    _wait_until(dispatch.registered.is_set, 90, "the worker to register")
    assert httpx.get(worker.health_url, timeout=5).status_code == 200

    assert dispatch.offer_call("call-1")
    _wait_until((tmp_path / "call-1.connected").exists, 30, "the agent to join the call")
    _wait_until(lambda: any(r.get("message") == "call started" for r in worker.log_records()), 30, "the call to start")

    worker.proc.send_signal(signal.SIGTERM)
    _wait_until(lambda: WorkerStatus.WS_FULL in dispatch.statuses, 30, "the worker to report itself full")
    assert not dispatch.offer_call("call-2"), "a draining worker took a new call"
    time.sleep(2)
    assert worker.running(), "the worker left a call in progress"

    (tmp_path / "call-1.hangup").touch()
    assert worker.proc.wait(60) == 0

    records = worker.log_records()
    assert [r for r in records if r.get("message") == "call ended"]
    assert not (tmp_path / "call-2.connected").exists()
    # Every line the call's process wrote once the call began names the call. (The worker's own
    # lines about that process, from its supervisor, carry the process's pid too.)
    [started] = [i for i, r in enumerate(records) if r.get("message") == "call started"]
    call_pid = records[started]["pid"]
    from_the_call = [
        r
        for r in records[started:]
        if r["pid"] == call_pid and not str(r.get("code.file.path")).endswith("supervised_proc.py")
    ]
    assert {r.get("call_id") for r in from_the_call} == {"call-1"}, from_the_call
