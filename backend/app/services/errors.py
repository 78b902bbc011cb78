"""Domain errors; the API maps each to an HTTP status in one place (app/main.py)."""

from __future__ import annotations

from typing import Any


class NotFound(Exception):
    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} {ident} not found")


class InvalidTransition(Exception):
    """The request already left `pending`: `message` says who closed it, when and how, and `current`
    is its state now, so a client can show whose answer the caller got."""

    def __init__(self, message: str, current: dict[str, Any]) -> None:
        super().__init__(message)
        self.current = current


class Conflict(Exception):
    """The change would clash with the current state (a duplicate question, say)."""
