"""Who may read what: access groups, API users and their keys, in one place for CLI, API and HTTP.

A chunk without groups is visible to everyone; a chunk with groups only to a caller sharing one.
Keys are 256-bit random tokens, so a plain SHA-256 is the right hash (a slow password hash guards
low-entropy secrets; these are not). Lookups compare digests with hmac.compare_digest.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ragtune.config import CONFIG_FILE
from ragtune.errors import ConfigError, RagtuneError
from ragtune.groups import check_groups
from ragtune.layout import create_private_file
from ragtune.sqlite import ThreadConnections

KEY_PREFIX = "rt-"
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
@dataclass(frozen=True)
class Access:
    """Who is asking and what they narrowed the search to.

    A chunk without groups is visible to everyone; a chunk with groups only to a caller sharing one.
    `filters` match document metadata exactly ("source" matches as a glob).
    """

    groups: frozenset[str] = frozenset()
    filters: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, groups: Sequence[str] = (), filters: dict[str, str] | None = None) -> Access:
        return cls(frozenset(groups), tuple(sorted((filters or {}).items())))

    def may_read(self, chunk_groups: Sequence[str]) -> bool:
        return not chunk_groups or bool(self.groups.intersection(chunk_groups))


@dataclass(frozen=True)
class User:
    name: str
    groups: list[str] = field(default_factory=list)
    admin: bool = False


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class UserStore:
    """Every named caller: API users with keys (users.sqlite, revoked ones kept for the record), then
    the keyless `[users.NAME]` of ragtune.toml that CLI callers name with --as-user."""

    def __init__(self, path: Path, configured: Mapping[str, Sequence[str]] | None = None) -> None:
        self.configured = {name: list(groups) for name, groups in (configured or {}).items()}
        path.parent.mkdir(parents=True, exist_ok=True)
        create_private_file(path)  # key hashes: for the owner's eyes only
        self._connections = ThreadConnections(path, timeout=30)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, groups TEXT NOT NULL, admin INTEGER NOT NULL,"
            " key_sha256 TEXT NOT NULL UNIQUE, created REAL NOT NULL, revoked REAL)"
        )

    @property
    def db(self) -> sqlite3.Connection:
        return self._connections.db

    def add(self, name: str, groups: list[str], admin: bool = False) -> str:
        """Create (or re-key) a user; returns the new key, which is never stored in clear."""
        if not _NAME.match(name):
            raise ConfigError(f"user name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-'")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO users VALUES (?, ?, ?, ?, ?, NULL)",
                (name, json.dumps(check_groups(groups)), int(admin), _digest(key), time.time()),
            )
        return key

    def authenticate(self, key: str) -> User | None:
        if not key.startswith(KEY_PREFIX):
            return None
        digest = _digest(key)
        row = self.db.execute(
            "SELECT name, groups, admin, key_sha256 FROM users WHERE key_sha256 = ? AND revoked IS NULL",
            (digest,),
        ).fetchone()
        if row is None or not hmac.compare_digest(row[3], digest):
            return None
        return User(row[0], json.loads(row[1]), bool(row[2]))

    def get(self, name: str) -> User | None:
        """An active API user of that name, else one from config, else None."""
        row = self.db.execute(
            "SELECT name, groups, admin FROM users WHERE name = ? AND revoked IS NULL", (name,)
        ).fetchone()
        if row:
            return User(row[0], json.loads(row[1]), bool(row[2]))
        return User(name, self.configured[name]) if name in self.configured else None

    def names(self) -> builtins.list[str]:
        active = {str(u["name"]) for u in self.list() if not u["revoked"]}
        return sorted(active | set(self.configured))

    def revoke(self, name: str) -> None:
        with self.db:
            done = self.db.execute(
                "UPDATE users SET revoked = ? WHERE name = ? AND revoked IS NULL", (time.time(), name)
            )
        if done.rowcount == 0:
            raise ConfigError(f"no active user {name!r}")

    def list(self) -> list[dict[str, object]]:
        rows = self.db.execute(
            "SELECT name, groups, admin, created, revoked FROM users ORDER BY name"
        ).fetchall()
        return [
            {"name": r[0], "groups": json.loads(r[1]), "admin": bool(r[2]), "created": r[3], "revoked": r[4]}
            for r in rows
        ]

    def holders(self) -> dict[str, builtins.list[str]]:
        """group -> names of the active users (API and config) who hold it."""
        held: dict[str, builtins.list[str]] = {}
        for user in self.list():
            if not user["revoked"]:
                for group in user["groups"]:  # type: ignore[attr-defined]
                    held.setdefault(str(group), []).append(str(user["name"]))
        for name, groups in self.configured.items():
            for group in groups:
                held.setdefault(group, []).append(name)
        return held

    def close(self) -> None:
        self._connections.close()


def access_for(
    users: UserStore,
    *,
    groups: Sequence[str] | None = None,
    user: str | None = None,
    filters: dict[str, str] | None = None,
) -> Access:
    """The access of a caller named by groups, or by a user (an API user, else one of [users] in config)."""
    if groups and user:
        raise RagtuneError("give either groups or a user, not both")
    if user is not None:
        found = users.get(user)
        if found is None:
            raise ConfigError(
                f"unknown user {user!r} (known: {', '.join(users.names()) or 'none'}); "
                f"add one with `ragtune users add {user} --groups ...` or [users.{user}] in {CONFIG_FILE}"
            )
        groups = found.groups
    return Access.of(groups or (), filters)
