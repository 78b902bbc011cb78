"""`python -m app`: serve the API, refusing an open bind without auth."""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from app.config import get_settings


def main() -> int:
    try:
        settings = get_settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        print(f"invalid settings: {problems}", file=sys.stderr)
        return 2
    if not settings.auth_enabled and not settings.bind_is_loopback():
        print(
            f"refusing to listen on {settings.host}: SUPERVISOR_TOKEN is not set, so anyone who can reach "
            "this address could read callers' questions and answer them. Set SUPERVISOR_TOKEN (and "
            "AGENT_TOKEN for the LiveKit worker), or bind to 127.0.0.1.",
            file=sys.stderr,
        )
        return 2
    if not settings.auth_enabled:
        print(
            f"auth is off (no SUPERVISOR_TOKEN): serving on loopback only, {settings.host}:{settings.port}",
            file=sys.stderr,
        )
    # Where a supervisor goes: the address this process serves (the bind address when it is 0.0.0.0
    # is this machine's every interface; the operator knows the public name).
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    shown = f"[{shown}]" if ":" in shown else shown
    print(f"supervisor console: http://{shown}:{settings.port}/", file=sys.stderr)
    uvicorn.run("app.main:app", host=settings.host, port=settings.port, proxy_headers=False, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
