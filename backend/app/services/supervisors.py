"""Named supervisor accounts, each with its own bearer token.

A token is "<selector>.<secret>", shown once when the account is made; only its SHA-256 is kept.
Every request is checked against the database (no cache), so a revoked token stops working at once
in every API process. Accounts are revoked, never deleted: the names stay meaningful in timelines
and the KB's audit trail, and an install that ever had an account keeps auth on (revoking the last
one locks the API instead of opening it)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from app import repository
from app.db import Database
from app.models import Supervisor, utcnow
from app.services.errors import Conflict, NotFound

# Names that already mean someone else in timelines and audit trails.
RESERVED_NAMES = frozenset({"admin", "supervisor", "agent", "system", "timeout"})
MAX_NAME = 100
# While no account exists, each API process looks again at most this often (seconds): an account
# made by `python -m app supervisors add` turns auth on everywhere within that time.
RECHECK_SECONDS = 1.0
_SELECTOR = re.compile(r"[0-9a-f]{16}")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def name_key(name: str) -> str:
    """Two names that differ only in case or spacing are one name."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: Supervisor) -> Account:
        return cls(row.id, row.name, row.created_at, row.revoked_at)


@dataclass(frozen=True)
class Issued:
    """A new account and its token: the only time the token exists outside its holder's hands."""

    account: Account
    token: str


class SupervisorAccounts:
    def __init__(self, db: Database, *, admin_name: str, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock
        self._reserved = RESERVED_NAMES | {name_key(admin_name)}
        self._seen_one = False
        self._checked_at = float("-inf")

    def _clean_name(self, name: str) -> str:
        name = " ".join(name.split())
        if not name or len(name) > MAX_NAME:
            raise ValueError(f"a supervisor's name takes 1 to {MAX_NAME} characters")
        if any(unicodedata.category(ch).startswith("C") for ch in name):
            raise ValueError("a supervisor's name must not hold control characters")
        if not any(ch.isalnum() for ch in name):
            raise ValueError("a supervisor's name must contain a letter or a digit")
        if name_key(name) in self._reserved:
            raise ValueError(f"{name!r} already names someone else in the audit trail; choose another name")
        return name

    async def add(self, name: str) -> Issued:
        name = self._clean_name(name)
        selector = secrets.token_hex(8)
        token = f"{selector}.{secrets.token_urlsafe(32)}"
        taken = Conflict(f"there is already a supervisor named {name}; revoke them first, or choose another name")
        try:
            async with self.db.transaction() as session:
                if await repository.active_supervisor_by_name(session=session, name_key=name_key(name)):
                    raise taken
                row = Supervisor(
                    name=name,
                    name_key=name_key(name),
                    token_selector=selector,
                    token_hash=hash_token(token),
                    created_at=self.clock(),
                )
                session.add(row)
                await session.flush()
                account = Account.of(row)
        except IntegrityError as exc:  # the same name added at the same moment by another process
            raise taken from exc
        self._seen_one = True
        return Issued(account, token)

    async def list(self) -> list[Account]:
        async with self.db.read() as session:
            return [Account.of(row) for row in await repository.list_supervisors(session=session)]

    async def revoke(self, who: str) -> Account:
        """Revoke by id, or by the name of an active account. Revoking twice changes nothing."""
        async with self.db.transaction() as session:
            row = await repository.get_supervisor(session=session, supervisor_id=who.strip())
            if row is None:
                row = await repository.active_supervisor_by_name(session=session, name_key=name_key(who))
            if row is None:
                raise NotFound("active supervisor", who)
            if row.revoked_at is None:
                row.revoked_at = self.clock()
            return Account.of(row)

    async def identify(self, token: str) -> Account | None:
        """The active account whose token this is, if any."""
        selector, dot, _ = token.partition(".")
        if not dot or not _SELECTOR.fullmatch(selector):
            return None
        async with self.db.read() as session:
            row = await repository.supervisor_by_selector(session=session, selector=selector)
        if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_hash, hash_token(token)):
            return None
        return Account.of(row)

    async def exist(self) -> bool:
        """Whether any account was ever made (revoked ones count), which turns auth on."""
        if not self._seen_one and time.monotonic() - self._checked_at >= RECHECK_SECONDS:
            async with self.db.read() as session:
                self._seen_one = await repository.any_supervisor(session=session)
            self._checked_at = time.monotonic()
        return self._seen_one
