"""Settings for the operator commands: the environment, then an env file, and a one-line error."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pydantic import ValidationError

from app.config import Settings


def load_settings(prog: str, env_file: str | None) -> Settings | None:
    """The settings as the services would see them; None (having said why on stderr) when they are invalid.

    `env_file` is the services' EnvironmentFile: an operator's shell does not have their environment.
    """
    if env_file is not None and not (Path(env_file).is_file() and os.access(env_file, os.R_OK)):
        print(f"{prog}: cannot read the env file {env_file}", file=sys.stderr)
        return None
    try:
        return Settings(_env_file=env_file) if env_file else Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper() or 'settings'}: {e['msg']}" for e in exc.errors())
        print(f"{prog}: invalid settings: {problems}", file=sys.stderr)
        return None
