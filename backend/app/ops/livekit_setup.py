"""`python -m app livekit setup +14155550100`: the LiveKit side of a phone number, made idempotently.

Two objects, through LiveKit's server API (`livekit-api`): an inbound SIP trunk that accepts calls to
the number, and a dispatch rule that puts each call in a new room with this worker dispatched to it
(`LIVEKIT_AGENT_NAME`, in the rule's room configuration). Both are found by listing, by the name
`frontdesk-<number>` or by what they hold (the number; the trunk), so running it again changes
nothing, and a changed setting updates them in place instead of adding a second one.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
from livekit.api import LiveKitAPI, ServerError
from livekit.protocol.agent_dispatch import RoomAgentDispatch
from livekit.protocol.sip import (
    CreateSIPDispatchRuleRequest,
    CreateSIPInboundTrunkRequest,
    ListSIPDispatchRuleRequest,
    ListSIPInboundTrunkRequest,
    SIPDispatchRule,
    SIPDispatchRuleIndividual,
    SIPDispatchRuleInfo,
    SIPInboundTrunkInfo,
)

from app.config import Settings
from app.ops.settings import load_settings

PROG = "livekit setup"
E164 = re.compile(r"\+[1-9]\d{6,14}")
# Rooms are named call-<caller's number>_<random>, so a room in LiveKit's dashboard says what it is.
ROOM_PREFIX = "call-"
CREDENTIAL_SETTINGS = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
# What a call to LiveKit's API raises when it fails (TimeoutError is an OSError).
LIVEKIT_ERRORS = (ServerError, aiohttp.ClientError, OSError)


class SetupError(Exception):
    """What stops the command, in one line the operator can act on."""


@dataclass(frozen=True)
class Wanted:
    number: str
    agent_name: str
    # None leaves the trunk's allowed addresses as they are (LiveKit: empty accepts any address).
    allowed_addresses: tuple[str, ...] | None = None

    @property
    def name(self) -> str:
        return f"frontdesk-{self.number}"


@dataclass(frozen=True)
class Outcome:
    kind: str
    name: str
    object_id: str | None
    action: str

    def line(self) -> str:
        ident = f" {self.object_id}" if self.object_id else ""
        return f'{self.kind} "{self.name}"{ident}: {self.action}'


def missing_credentials(settings: Settings) -> list[str]:
    values = (settings.livekit_url, settings.livekit_api_key, settings.livekit_api_secret)
    return [name for name, value in zip(CREDENTIAL_SETTINGS, values, strict=True) if not value]


def connect(settings: Settings, *, timeout: float) -> LiveKitAPI:
    """A client for the configured project; call inside a running event loop (it opens a session)."""
    # No region failover: an operator command is rerun by hand, and a failed-over create could land twice.
    return LiveKitAPI(
        settings.livekit_url,
        settings.livekit_api_key,
        settings.livekit_api_secret,
        timeout=aiohttp.ClientTimeout(total=timeout),
        failover=False,
    )


def describe_failure(exc: BaseException, url: str | None) -> str:
    """One line for one of LIVEKIT_ERRORS: refused credentials, no server there, or a refused request."""
    if isinstance(exc, ServerError):
        if exc.status in (401, 403):
            return (
                f"LiveKit at {url} refused the credentials ({exc.code}: {exc.message}): "
                "check LIVEKIT_API_KEY and LIVEKIT_API_SECRET"
            )
        return f"LiveKit at {url} refused the request ({exc.code}: {exc.message})"
    return f"cannot reach LiveKit at {url} ({str(exc) or type(exc).__name__}): check LIVEKIT_URL"


def _at_most_one(ids: list[str], what: str) -> None:
    if len(ids) > 1:
        raise SetupError(f"{len(ids)} {what} ({', '.join(ids)}): delete all but one in LiveKit, then run this again")


def find_trunk(trunks: Sequence[SIPInboundTrunkInfo], wanted: Wanted) -> SIPInboundTrunkInfo | None:
    # A trunk made by hand for the number is adopted, not doubled: two would compete for its calls.
    found = [t for t in trunks if t.name == wanted.name or wanted.number in t.numbers]
    _at_most_one([t.sip_trunk_id for t in found], f"inbound trunks take {wanted.number}")
    return found[0] if found else None


def trunk_changes(trunk: SIPInboundTrunkInfo, wanted: Wanted) -> dict[str, list[str]]:
    """The trunk's fields that must change, with their new values."""
    changes = {}
    if wanted.number not in trunk.numbers:
        changes["numbers"] = [*trunk.numbers, wanted.number]
    if wanted.allowed_addresses is not None and sorted(trunk.allowed_addresses) != sorted(wanted.allowed_addresses):
        changes["allowed_addresses"] = list(wanted.allowed_addresses)
    return changes


def find_rule(rules: Sequence[SIPDispatchRuleInfo], wanted: Wanted, trunk_id: str | None) -> SIPDispatchRuleInfo | None:
    found = [r for r in rules if r.name == wanted.name or (trunk_id and trunk_id in r.trunk_ids)]
    _at_most_one([r.sip_dispatch_rule_id for r in found], f"dispatch rules match {wanted.number}")
    return found[0] if found else None


def wanted_rule(existing: SIPDispatchRuleInfo | None, wanted: Wanted, trunk_id: str) -> SIPDispatchRuleInfo:
    """`existing` with what this worker needs set, everything else (metadata, media...) kept."""
    rule = SIPDispatchRuleInfo(name=wanted.name)
    if existing is not None:
        rule.CopyFrom(existing)
    rule.rule.CopyFrom(SIPDispatchRule(dispatch_rule_individual=SIPDispatchRuleIndividual(room_prefix=ROOM_PREFIX)))
    if trunk_id not in rule.trunk_ids:
        # Ours by name but on a trunk since replaced; a rule that already has the trunk keeps its others.
        del rule.trunk_ids[:]
        rule.trunk_ids.append(trunk_id)
    # The worker takes the caller's number from the participant's attributes: it may not be hidden.
    rule.hide_phone_number = False
    if wanted.agent_name:
        # Only this worker: another agent dispatched by the rule would talk over it.
        ours = [a for a in rule.room_config.agents if a.agent_name == wanted.agent_name][:1]
        del rule.room_config.agents[:]
        rule.room_config.agents.extend(ours or [RoomAgentDispatch(agent_name=wanted.agent_name)])
    elif rule.HasField("room_config"):
        del rule.room_config.agents[:]
    return rule


def describe_rule(wanted: Wanted) -> str:
    agent = f'agent "{wanted.agent_name}"' if wanted.agent_name else "every worker (LIVEKIT_AGENT_NAME is empty)"
    return f"each call to a new room {ROOM_PREFIX}<caller>, {agent}"


async def _ensure_trunk(api: LiveKitAPI, wanted: Wanted, *, dry_run: bool) -> tuple[Outcome, str | None]:
    trunk = find_trunk((await api.sip.list_inbound_trunk(ListSIPInboundTrunkRequest())).items, wanted)
    if trunk is None:
        if dry_run:
            return Outcome("inbound trunk", wanted.name, None, f"would create for {wanted.number}"), None
        request = CreateSIPInboundTrunkRequest(
            trunk=SIPInboundTrunkInfo(
                name=wanted.name, numbers=[wanted.number], allowed_addresses=wanted.allowed_addresses or ()
            )
        )
        trunk = await api.sip.create_inbound_trunk(request)
        return Outcome("inbound trunk", trunk.name, trunk.sip_trunk_id, f"created for {wanted.number}"), (
            trunk.sip_trunk_id
        )
    changes = trunk_changes(trunk, wanted)
    if changes and not dry_run:
        await api.sip.update_inbound_trunk_fields(trunk.sip_trunk_id, **changes)
    fields = ", ".join(name.replace("_", " ") for name in changes)
    action = f"{'would update' if dry_run else 'updated'} ({fields})" if changes else "unchanged"
    return Outcome("inbound trunk", trunk.name, trunk.sip_trunk_id, action), trunk.sip_trunk_id


async def _ensure_rule(api: LiveKitAPI, wanted: Wanted, trunk_id: str | None, *, dry_run: bool) -> Outcome:
    """`trunk_id` is None only in a dry run whose trunk is still to be created."""
    existing = find_rule((await api.sip.list_dispatch_rule(ListSIPDispatchRuleRequest())).items, wanted, trunk_id)
    desired = None if trunk_id is None else wanted_rule(existing, wanted, trunk_id)
    if existing is not None and desired == existing:
        return Outcome("dispatch rule", existing.name, existing.sip_dispatch_rule_id, "unchanged")
    verb = "create" if existing is None else "update"
    if dry_run:
        name, rule_id = (wanted.name, None) if existing is None else (existing.name, existing.sip_dispatch_rule_id)
        return Outcome("dispatch rule", name, rule_id, f"would {verb}: {describe_rule(wanted)}")
    assert desired is not None, "only a dry run goes without the trunk"
    if existing is None:
        saved = await api.sip.create_dispatch_rule(CreateSIPDispatchRuleRequest(dispatch_rule=desired))
    else:
        saved = await api.sip.update_dispatch_rule(existing.sip_dispatch_rule_id, desired)
    return Outcome("dispatch rule", saved.name, saved.sip_dispatch_rule_id, f"{verb}d: {describe_rule(wanted)}")


async def setup(settings: Settings, wanted: Wanted, *, dry_run: bool, timeout: float = 10.0) -> list[Outcome]:
    """Make (or, with `dry_run`, only say) what the number needs; raises SetupError or LiveKit's errors."""
    async with connect(settings, timeout=timeout) as api:
        trunk, trunk_id = await _ensure_trunk(api, wanted, dry_run=dry_run)
        return [trunk, await _ensure_rule(api, wanted, trunk_id, dry_run=dry_run)]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app livekit setup",
        description="Create (or bring up to date) the LiveKit inbound SIP trunk for a phone number and the "
        "dispatch rule that sends each call to this worker. Running it again changes nothing.",
    )
    parser.add_argument("number", help="the phone number callers dial, in E.164 form (+14155550100)")
    parser.add_argument("--dry-run", action="store_true", help="say what would be created or updated; change nothing")
    parser.add_argument(
        "--allowed-address",
        action="append",
        metavar="IP_OR_CIDR",
        help="accept calls only from this address of your SIP provider (repeat for each; left as it is when not given)",
    )
    parser.add_argument("--env-file", help="read settings from this file too (the services' EnvironmentFile)")
    return parser


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    number = re.sub(r"[\s().-]", "", args.number)
    if not E164.fullmatch(number):
        print(f"{PROG}: {args.number!r} is not a phone number in E.164 form (+14155550100)", file=sys.stderr)
        return 2
    settings = load_settings(PROG, args.env_file)
    if settings is None:
        return 2
    missing = missing_credentials(settings)
    if missing:
        print(f"{PROG}: set {', '.join(missing)} (your LiveKit project's URL and API key)", file=sys.stderr)
        return 2
    allowed = tuple(args.allowed_address) if args.allowed_address else None
    wanted = Wanted(number=number, agent_name=settings.livekit_agent_name, allowed_addresses=allowed)
    try:
        outcomes = asyncio.run(setup(settings, wanted, dry_run=args.dry_run))
    except SetupError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except LIVEKIT_ERRORS as exc:
        print(f"{PROG}: {describe_failure(exc, settings.livekit_url)}", file=sys.stderr)
        return 1
    for outcome in outcomes:
        print(outcome.line())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
