"""Access group names: checked once, wherever a name enters (ingest, rules, users, uploads, front matter)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ragtune.errors import ConfigError

_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
# Words a reader could take for "everyone": a group of that name would look public and is not.
RESERVED_GROUPS = frozenset({"public", "everyone", "all", "anonymous", "none", "nobody"})


def check_group(name: str) -> str:
    """A group name as given, or a ConfigError saying what is wrong with it.

    Names are literal labels; refusing the words that read as "everyone" keeps a reader of
    `groups: [all]` from believing a document is public when nobody can read it.
    """
    if not _GROUP.match(name):
        raise ConfigError(
            f"group name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-', starting with a letter or digit"
        )
    if name.lower() in RESERVED_GROUPS:
        raise ConfigError(
            f"group name {name!r} is reserved (it reads as 'everyone'); a document without groups is public"
        )
    return name


def check_groups(names: Sequence[str]) -> list[str]:
    """Every name checked, duplicates dropped, sorted: the one spelling a group list is stored in."""
    return sorted({check_group(name) for name in names})
