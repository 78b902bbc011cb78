from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Settings
from tests.ops.standins import LiveKitStandIn


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """Settings come from the test alone: none from the developer's environment or a `.env` file."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


@pytest.fixture
def livekit() -> Iterator[LiveKitStandIn]:
    standin = LiveKitStandIn()
    yield standin
    standin.close()


def closed_port_url(path: str = "") -> str:
    """A loopback URL nothing listens on: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
