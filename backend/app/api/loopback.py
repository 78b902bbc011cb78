"""Without SUPERVISOR_TOKEN, the API belongs to this machine alone, however the server was started
(`make run`, or `uvicorn app.main:app --host 0.0.0.0` by hand). Supervisor accounts turn auth on
but do not open the server to the network: what a server exposes is decided by its configuration,
not by rows in its database."""

from __future__ import annotations

import ipaddress

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
REFUSAL = (
    "SUPERVISOR_TOKEN is not set, so this server only answers requests from this machine addressed to "
    "localhost, 127.0.0.1 or [::1] (supervisor accounts do not change that); set SUPERVISOR_TOKEN to serve others"
)


def _loopback_address(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _host_name(host: str) -> str:
    if host.startswith("["):  # [::1]:8000
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class LoopbackOnly:
    """Refuse a client on another machine, and a Host header naming anything but this machine: a web
    page elsewhere could otherwise reach the API through DNS rebinding."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            host = _host_name(Headers(scope=scope).get("host", "").lower())
            if (client is not None and not _loopback_address(client[0])) or host not in LOOPBACK_NAMES:
                await JSONResponse({"detail": REFUSAL}, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)
