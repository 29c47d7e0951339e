"""Access rules belong to the source: who may read the files under a path, whatever command syncs them.

`ragtune ingest PATH --groups G` records `[[sources]] path = PATH, groups = G` in ragtune.toml. Every
later sync of a file applies the most specific rule that covers it, so the groups of a document no
longer depend on which folder an ingest was started from. The rules also fix each file's identity:
a file belongs to the outermost ruled folder above it, so it is one document whichever of its
folders a command named.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ragtune.config import SourceRule


def widens(old: Sequence[str], new: Sequence[str]) -> bool:
    """Whether going from groups `old` to `new` lets someone read who could not before.

    No groups is public: from restricted to public widens; so does adding a group not in `old`
    (its holders gain access). Narrowing (a subset) and staying public never widen.
    """
    if not old:
        return False
    return not new or not set(new) <= set(old)


def relative_path(root: Path, path: Path) -> str:
    """`path` as a rule or an origin spells it: relative to the workspace when possible, posix."""
    return Path(os.path.relpath(path.resolve(), root)).as_posix()


@dataclass(frozen=True)
class AccessRules:
    """The `[[sources]]` rules of a workspace, resolved against its root for lookups."""

    root: Path
    rules: tuple[SourceRule, ...]

    @cached_property
    def _resolved(self) -> list[tuple[Path, SourceRule]]:
        """File rules with their resolved paths (`sql:` rules name no file and are left out), once:
        a sync asks for every file."""
        return [((self.root / r.path).resolve(), r) for r in self.rules if not r.path.startswith("sql:")]

    def rule_for(self, path: Path) -> SourceRule | None:
        """The most specific rule covering `path` (its own, else its nearest ruled folder), or None."""
        target = path.resolve()
        covering = [(where, rule) for where, rule in self._resolved if target.is_relative_to(where)]
        if not covering:
            return None
        return max(covering, key=lambda pair: len(pair[0].parts))[1]

    def groups_for(self, path: Path) -> list[str]:
        rule = self.rule_for(path)
        return list(rule.groups) if rule else []

    def identity_root(self, path: Path) -> Path:
        """The folder a file's identity is relative to: the outermost ruled folder above `path`, else
        `path` itself (a folder) or its parent (a file)."""
        target = path.resolve()
        folders = [where for where, _ in self._resolved if where.is_dir() and target.is_relative_to(where)]
        if folders:
            return min(folders, key=lambda where: len(where.parts))
        return target if target.is_dir() else target.parent

    def rule_named(self, key: str) -> SourceRule | None:
        """The rule written for exactly `key` (e.g. `sql:offices`, which has no folder above it)."""
        return next((rule for rule in self.rules if rule.path == key), None)

    def with_rule(self, rule: SourceRule) -> AccessRules:
        kept = tuple(r for r in self.rules if (self.root / r.path).resolve() != (self.root / rule.path).resolve())
        return AccessRules(self.root, (*kept, rule))
