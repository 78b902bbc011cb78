"""`livekit setup` against a stand-in for LiveKit's server API: idempotent, dry-run safe, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from livekit.protocol.agent_dispatch import RoomAgentDispatch
from livekit.protocol.room import RoomConfiguration
from livekit.protocol.sip import SIPDispatchRule, SIPDispatchRuleDirect, SIPDispatchRuleInfo, SIPInboundTrunkInfo

from app.config import BACKEND_DIR
from app.ops import livekit_setup
from tests.ops.conftest import closed_port_url
from tests.ops.standins import LiveKitStandIn

NUMBER = "+14155550100"
NAME = f"frontdesk-{NUMBER}"


@dataclass
class Run:
    code: int
    out: list[str]
    err: str


Setup = Callable[..., Run]


@pytest.fixture
def setup(clean_env: pytest.MonkeyPatch, livekit: LiveKitStandIn, capsys: pytest.CaptureFixture[str]) -> Setup:
    """Runs the command in this process with the stand-in's credentials, `env` overriding them."""

    def run(*argv: str, **env: str) -> Run:
        values = {
            "LIVEKIT_URL": livekit.url,
            "LIVEKIT_API_KEY": livekit.api_key,
            "LIVEKIT_API_SECRET": livekit.api_secret,
            "LIVEKIT_AGENT_NAME": "frontdesk",
            **env,
        }
        for name, value in values.items():
            clean_env.setenv(name, value)
        code = livekit_setup.main(list(argv))
        captured = capsys.readouterr()
        return Run(code, captured.out.splitlines(), captured.err)

    return run


def _only_rule(livekit: LiveKitStandIn) -> SIPDispatchRuleInfo:
    assert len(livekit.rules) == 1, livekit.rules
    return next(iter(livekit.rules.values()))


def test_second_run_changes_nothing(setup: Setup, livekit: LiveKitStandIn) -> None:
    first = setup(NUMBER)
    assert first.code == 0, first.err
    assert first.out == [
        f'inbound trunk "{NAME}" ST_0001: created for {NUMBER}',
        f'dispatch rule "{NAME}" SDR_0002: created: each call to a new room call-<caller>, agent "frontdesk"',
    ]
    (trunk,) = livekit.trunks.values()
    assert (trunk.name, list(trunk.numbers)) == (NAME, [NUMBER])
    rule = _only_rule(livekit)
    assert list(rule.trunk_ids) == [trunk.sip_trunk_id]
    assert rule.rule.dispatch_rule_individual.room_prefix == "call-"
    assert [a.agent_name for a in rule.room_config.agents] == ["frontdesk"]
    assert not rule.hide_phone_number

    # Again, the way an operator runs it: a separate process, the module as a command.
    env = {**os.environ, "LIVEKIT_URL": livekit.url, "LIVEKIT_AGENT_NAME": "frontdesk"}
    env.update(LIVEKIT_API_KEY=livekit.api_key, LIVEKIT_API_SECRET=livekit.api_secret)
    second = subprocess.run(
        [sys.executable, "-m", "app.ops.livekit_setup", "+1 (415) 555-0100"],
        cwd=BACKEND_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == [
        f'inbound trunk "{NAME}" ST_0001: unchanged',
        f'dispatch rule "{NAME}" SDR_0002: unchanged',
    ]
    assert livekit.writes() == ["CreateSIPInboundTrunk", "CreateSIPDispatchRule"]
    assert len(livekit.trunks) == 1 and len(livekit.rules) == 1


def test_dry_run_creates_nothing(setup: Setup, livekit: LiveKitStandIn) -> None:
    run = setup(NUMBER, "--dry-run")
    assert run.code == 0, run.err
    assert run.out == [
        f'inbound trunk "{NAME}": would create for {NUMBER}',
        f'dispatch rule "{NAME}": would create: each call to a new room call-<caller>, agent "frontdesk"',
    ]
    assert livekit.writes() == []
    assert not livekit.trunks and not livekit.rules


def test_a_changed_agent_name_updates_the_rule_in_place(setup: Setup, livekit: LiveKitStandIn) -> None:
    assert setup(NUMBER).code == 0
    dry = setup(NUMBER, "--dry-run", LIVEKIT_AGENT_NAME="concierge")
    assert (
        dry.out[1]
        == f'dispatch rule "{NAME}" SDR_0002: would update: each call to a new room call-<caller>, agent "concierge"'
    )
    assert [a.agent_name for a in _only_rule(livekit).room_config.agents] == ["frontdesk"]

    run = setup(NUMBER, LIVEKIT_AGENT_NAME="concierge")
    assert run.code == 0, run.err
    assert run.out == [
        f'inbound trunk "{NAME}" ST_0001: unchanged',
        f'dispatch rule "{NAME}" SDR_0002: updated: each call to a new room call-<caller>, agent "concierge"',
    ]
    assert [a.agent_name for a in _only_rule(livekit).room_config.agents] == ["concierge"]
    assert len(livekit.trunks) == 1


def test_a_worker_without_a_name_gets_a_rule_without_dispatch(setup: Setup, livekit: LiveKitStandIn) -> None:
    run = setup(NUMBER, LIVEKIT_AGENT_NAME="")
    assert run.code == 0, run.err
    assert run.out[1].endswith("every worker (LIVEKIT_AGENT_NAME is empty)")
    assert not _only_rule(livekit).HasField("room_config")
    assert setup(NUMBER, LIVEKIT_AGENT_NAME="").out[1].endswith(": unchanged")


def test_objects_made_by_hand_are_adopted_and_fixed(setup: Setup, livekit: LiveKitStandIn) -> None:
    livekit.trunks["ST_hand"] = SIPInboundTrunkInfo(
        sip_trunk_id="ST_hand", name="Twilio line", numbers=["+14155550199", NUMBER]
    )
    livekit.rules["SDR_hand"] = SIPDispatchRuleInfo(
        sip_dispatch_rule_id="SDR_hand",
        name="salon calls",
        trunk_ids=["ST_hand"],
        metadata="kept",
        hide_phone_number=True,
        rule=SIPDispatchRule(dispatch_rule_direct=SIPDispatchRuleDirect(room_name="everyone")),
        room_config=RoomConfiguration(empty_timeout=30, agents=[RoomAgentDispatch(agent_name="old-bot")]),
    )
    run = setup(NUMBER)
    assert run.code == 0, run.err
    assert run.out == [
        'inbound trunk "Twilio line" ST_hand: unchanged',
        'dispatch rule "salon calls" SDR_hand: updated: each call to a new room call-<caller>, agent "frontdesk"',
    ]
    rule = _only_rule(livekit)
    assert rule.rule.WhichOneof("rule") == "dispatch_rule_individual"
    assert [a.agent_name for a in rule.room_config.agents] == ["frontdesk"]
    assert (rule.metadata, rule.room_config.empty_timeout, rule.hide_phone_number) == ("kept", 30, False)
    assert list(livekit.trunks["ST_hand"].numbers) == ["+14155550199", NUMBER]


def test_a_trunk_deleted_by_hand_is_made_again_and_the_rule_follows(setup: Setup, livekit: LiveKitStandIn) -> None:
    assert setup(NUMBER).code == 0
    livekit.trunks.clear()
    dry = setup(NUMBER, "--dry-run")
    assert [line.split(": ", 1)[1] for line in dry.out] == [
        f"would create for {NUMBER}",
        'would update: each call to a new room call-<caller>, agent "frontdesk"',
    ]
    assert list(_only_rule(livekit).trunk_ids) == ["ST_0001"]

    run = setup(NUMBER)
    assert run.out[0] == f'inbound trunk "{NAME}" ST_0003: created for {NUMBER}'
    assert run.out[1].startswith(f'dispatch rule "{NAME}" SDR_0002: updated')
    assert list(_only_rule(livekit).trunk_ids) == ["ST_0003"]


def test_allowed_addresses_are_set_when_given_and_kept_when_not(setup: Setup, livekit: LiveKitStandIn) -> None:
    assert setup(NUMBER).code == 0
    run = setup(NUMBER, "--allowed-address", "203.0.113.0/24", "--allowed-address", "198.51.100.7")
    assert run.out[0] == f'inbound trunk "{NAME}" ST_0001: updated (allowed addresses)'
    assert setup(NUMBER).out[0] == f'inbound trunk "{NAME}" ST_0001: unchanged'
    assert list(livekit.trunks["ST_0001"].allowed_addresses) == ["203.0.113.0/24", "198.51.100.7"]


def test_two_trunks_for_the_number_stop_it(setup: Setup, livekit: LiveKitStandIn) -> None:
    for ident in ("ST_a", "ST_b"):
        livekit.trunks[ident] = SIPInboundTrunkInfo(sip_trunk_id=ident, name=ident, numbers=[NUMBER])
    run = setup(NUMBER)
    assert run.code == 1
    assert run.err == (
        f"livekit setup: 2 inbound trunks take {NUMBER} (ST_a, ST_b): delete all but one in LiveKit, then run this again\n"
    )
    assert livekit.writes() == []


def test_refused_credentials_are_one_clear_line(setup: Setup, livekit: LiveKitStandIn) -> None:
    run = setup(NUMBER, LIVEKIT_API_SECRET="not-the-secret-but-long-enough-for-hs256")
    assert run.code == 1
    assert run.out == []
    assert run.err.startswith(f"livekit setup: LiveKit at {livekit.url} refused the credentials (unauthenticated: ")
    assert run.err.endswith("check LIVEKIT_API_KEY and LIVEKIT_API_SECRET\n")
    assert run.err.count("\n") == 1
    assert livekit.writes() == []


def test_unreachable_server_names_the_url(setup: Setup) -> None:
    url = closed_port_url()
    run = setup(NUMBER, LIVEKIT_URL=url)
    assert run.code == 1
    assert run.err.startswith(f"livekit setup: cannot reach LiveKit at {url} (")
    assert run.err.endswith("check LIVEKIT_URL\n")


def test_missing_settings_are_named(setup: Setup) -> None:
    run = setup(NUMBER, LIVEKIT_URL="", LIVEKIT_API_SECRET="")
    assert (run.code, run.err) == (
        2,
        "livekit setup: set LIVEKIT_URL, LIVEKIT_API_SECRET (your LiveKit project's URL and API key)\n",
    )


def test_a_number_not_in_e164_is_refused(setup: Setup, livekit: LiveKitStandIn) -> None:
    run = setup("415-555-0100")
    assert run.code == 2
    assert "not a phone number in E.164 form" in run.err
    assert livekit.calls == []
