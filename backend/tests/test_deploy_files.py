"""The deployment files in deploy/ are checked by the tools that will read them, not only written:
systemd's own verifier for the units, Caddy's for the Caddyfile; the example settings file names
only settings the app has."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from app.config import BACKEND_DIR, Settings

DEPLOY = BACKEND_DIR.parent / "deploy"
UNITS = ["frontdesk-api.service", "frontdesk-worker.service"]


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing: .ci/run installs it")
        pytest.skip(f"{name} is not installed (apt-get install -y {'systemd' if 'systemd' in name else name})")
    return found


def test_systemd_units_verify(tmp_path: Path) -> None:
    verify = _tool("systemd-analyze")
    # The units name /opt/frontdesk, where docs/deploy.md installs the app: here, this checkout.
    paths = []
    for unit in UNITS:
        text = (DEPLOY / unit).read_text()
        text = text.replace("/opt/frontdesk", str(BACKEND_DIR.parent))
        text = text.replace("/etc/frontdesk/frontdesk.env", str(DEPLOY / "frontdesk.env.example"))
        (tmp_path / unit).write_text(text)
        paths.append(str(tmp_path / unit))
    done = subprocess.run([verify, "verify", "--man=no", *paths], capture_output=True, text=True, timeout=60)
    # An unknown key is only a warning to systemd, and a unit that silently lost a setting is wrong.
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_units_run_what_exists() -> None:
    for unit in UNITS:
        start = next(line for line in (DEPLOY / unit).read_text().splitlines() if line.startswith("ExecStart="))
        module = start.split(" -m ", 1)[1].split()[0]
        assert (BACKEND_DIR / (module.replace(".", "/") + ".py")).exists() or (
            BACKEND_DIR / module.replace(".", "/") / "__main__.py"
        ).exists(), start


def test_caddyfile_validates(tmp_path: Path) -> None:
    caddy = _tool("caddy")
    # HOME: where Caddy would keep certificates; validating writes none, but keep it out of the tree.
    env = {**os.environ, "FRONTDESK_DOMAIN": "frontdesk.salon.example", "HOME": str(tmp_path)}
    done = subprocess.run(
        [caddy, "validate", "--adapter", "caddyfile", "--config", str(DEPLOY / "Caddyfile")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0 and "Valid configuration" in done.stdout + done.stderr, done.stderr


def test_example_settings_are_settings_the_app_reads() -> None:
    known = {name.upper() for name in Settings.model_fields}
    keys = [
        line.split("=", 1)[0]
        for line in (DEPLOY / "frontdesk.env.example").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert keys and set(keys) <= known, sorted(set(keys) - known)
