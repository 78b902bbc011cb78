"""`python -m app supervisors add NAME | list | revoke NAME_OR_ID`: named supervisor accounts, made
and revoked against the database in DATABASE_URL (migrated first, so this works before the server
has ever started). A new token goes to stdout alone, everything else to stderr, so a script can take
it with `TOKEN=$(python -m app supervisors add Priya)`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime

from app.config import Settings
from app.db import Database
from app.services.errors import Conflict, NotFound
from app.services.supervisors import Account, SupervisorAccounts


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    supervisors = commands.add_parser("supervisors", help="add, list or revoke named supervisor accounts")
    actions = supervisors.add_subparsers(dest="action", required=True)
    actions.add_parser("add", help="make an account and print its token (shown only this once)").add_argument(
        "name", help="how the supervisor is named in timelines and the audit trail"
    )
    actions.add_parser("list", help="every account, revoked ones too")
    actions.add_parser("revoke", help="the account's token stops working at once").add_argument(
        "who", metavar="NAME_OR_ID", help="an active account's name, or an account's id"
    )


def run_supervisors(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_run(settings, args))


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _table(accounts: list[Account]) -> str:
    rows = [("ID", "NAME", "CREATED", "STATUS")] + [
        (a.id, a.name, _when(a.created_at), "active" if a.revoked_at is None else f"revoked {_when(a.revoked_at)}")
        for a in accounts
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join("  ".join(row[i].ljust(widths[i]) for i in range(3)) + "  " + row[3] for row in rows)


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    db = Database(settings.database_url)
    try:
        await db.migrate()
        accounts = SupervisorAccounts(db, admin_name=settings.supervisor_name)
        if args.action == "add":
            first = not await accounts.exist()
            issued = await accounts.add(args.name)
            print(
                f"Added {issued.account.name} (id {issued.account.id}). Give them the token printed here: "
                "it signs them in to the console, and is shown only this once.",
                file=sys.stderr,
            )
            print(issued.token)
            if first and settings.supervisor_token is None:
                print(
                    "This is the first supervisor account, so auth is now on: every API call needs a token, "
                    "and the agent needs AGENT_TOKEN.",
                    file=sys.stderr,
                )
        elif args.action == "list":
            print(_table(await accounts.list()))
        else:
            account = await accounts.revoke(args.who)
            assert account.revoked_at is not None
            print(
                f"Revoked {account.name} (id {account.id}) at {_when(account.revoked_at)}: their token no longer works."
            )
    except (ValueError, Conflict, NotFound) as exc:
        print(f"supervisors {args.action}: {exc}", file=sys.stderr)
        return 1
    finally:
        await db.dispose()
    return 0
