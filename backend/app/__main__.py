"""`python -m app`: serve the API (never beyond loopback without SUPERVISOR_TOKEN);
`python -m app supervisors ...`: named supervisor accounts (app/cli.py);
`python -m app livekit setup NUMBER`: the phone line's SIP trunk and dispatch rule (app/ops);
`python -m app doctor`: a deployment's preflight (app/ops)."""

from __future__ import annotations

import argparse
import sys

import uvicorn
from pydantic import ValidationError

from app import cli
from app.config import get_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app", description="Serve the API (no command), or manage supervisor accounts."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    cli.add_commands(commands)
    # Listed for --help; main() hands them their arguments before this parser sees any.
    commands.add_parser("doctor", help="check this deployment's wiring, one line per check")
    livekit = commands.add_parser(
        "livekit", help="`livekit setup NUMBER`: the SIP trunk and dispatch rule for a number"
    )
    livekit.add_argument("action", choices=["setup"])
    return parser


def main(argv: list[str]) -> int:
    # The operator commands parse their own arguments (`--help` included) and load the settings
    # themselves (`--env-file`); serving the API needs none of their imports.
    if argv[:1] == ["doctor"]:
        from app.ops import doctor

        return doctor.main(argv[1:])
    if argv[:2] == ["livekit", "setup"]:
        from app.ops import livekit_setup

        return livekit_setup.main(argv[2:])
    args = _parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        print(f"invalid settings: {problems}", file=sys.stderr)
        return 2
    if args.command == "supervisors":
        return cli.run_supervisors(settings, args)
    # Serving other machines takes SUPERVISOR_TOKEN; supervisor accounts turn auth on but never open
    # the server to the network (app/api/loopback.py).
    if settings.supervisor_token is None and not settings.bind_is_loopback():
        print(
            f"refusing to listen on {settings.host}: SUPERVISOR_TOKEN is not set, so anyone who can reach "
            "this address could read callers' questions and answer them. Set SUPERVISOR_TOKEN (and "
            "AGENT_TOKEN for the LiveKit worker), or bind to 127.0.0.1.",
            file=sys.stderr,
        )
        return 2
    if settings.supervisor_token is None:
        print(
            f"no SUPERVISOR_TOKEN: serving this machine only (loopback), {settings.host}:{settings.port}",
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
    sys.exit(main(sys.argv[1:]))
