"""Sources list what they hold (with a content hash) before anything is parsed.

Listing first is what makes re-sync cheap: an item whose hash matches the index is never parsed,
chunked or embedded again.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote

from ragtune.errors import ConfigError, IngestError
from ragtune.groups import check_groups
from ragtune.ingest.isolation import parse_isolated
from ragtune.ingest.parsers import PARSER_VERSION, record_label, render_record
from ragtune.types import Document, Section


@dataclass
class SourceItem:
    """One document a source can produce; `load` parses it only when the hash says it changed."""

    source: str
    content_hash: str
    load: Callable[[], Document]


@dataclass
class Failure:
    """An item that could not be read; it is reported, skipped, and its old version is kept."""

    source: str
    error: str


class Source(Protocol):
    """Anything that can list documents: a folder of files, SQL rows, a BEIR corpus.

    `scope`: the part of `origin` this source lists ("" for all of it, else a folder prefix);
    a sync prunes only vanished documents inside it.
    """

    origin: str
    scope: str

    def items(self) -> Iterator[SourceItem | Failure]: ...


def _digest(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\x00")
    return digest.hexdigest()


def options_fingerprint(groups: Sequence[str], meta: dict[str, Any], chunking: dict[str, Any]) -> str:
    """Ingest options that change the indexed result; part of every content hash."""
    return json.dumps(
        {"groups": sorted(groups), "meta": meta, "chunking": chunking, "parser": PARSER_VERSION},
        sort_keys=True,
    )


# Never sources, whatever a link or a command line says: reading them can leak the process
# (/proc/self/environ) or block forever (/dev/zero, a FIFO).
_SYSTEM_ROOTS = tuple(Path(p) for p in ("/proc", "/sys", "/dev", "/run"))


def check_source_path(path: Path) -> Path:
    """The resolved path of a file or folder to ingest, or an IngestError saying why it cannot be one."""
    if not path.exists():
        raise IngestError(f"{path}: no such file or folder")
    resolved = path.resolve()
    if any(resolved.is_relative_to(system) for system in _SYSTEM_ROOTS):
        raise IngestError(f"{path}: a system folder ({resolved}), never a source")
    if not (resolved.is_dir() or stat.S_ISREG(resolved.stat().st_mode)):
        raise IngestError(f"{path}: not a regular file or folder")
    return resolved


def _unsafe(file: Path, root: Path) -> str | None:
    """Why a listed entry must not be read (a link, a device, a FIFO, a socket), or None.

    Links are never followed: one leaving the folder could reach anything readable by the process,
    and one inside it names a file that is indexed under its own name already.
    """
    try:
        mode = file.lstat().st_mode
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}"
    if stat.S_ISLNK(mode):
        target = file.resolve()
        if not target.exists():
            return "cannot read: a link to a missing file"
        if target.is_relative_to(root):
            return f"a link to {target.relative_to(root).as_posix()}, which is indexed under its own name"
        return "a link that leaves the source folder; links are not followed"
    if not stat.S_ISREG(mode):
        return "not a regular file (a device, FIFO or socket); skipped"
    return None


class FileSource:
    """Files under `path` (a folder or one file), named relative to `root`: the folder that gives each
    file its identity (the outermost ruled folder above it, see ingest/rules.py), so a file is one
    document whichever of its folders was named. `groups_for` gives each file its access groups."""

    def __init__(
        self,
        path: Path,
        *,
        origin: str,
        root: Path | None = None,
        groups_for: Callable[[Path], Sequence[str]] = lambda _: (),
        meta: dict[str, Any] | None = None,
        exclude: Sequence[str] = (),
        max_bytes: int = 50 * 1024 * 1024,
        rows_per_chunk: int = 1,
        fingerprint: str = "",
        parse_timeout_s: float = 60.0,
        parse_memory_mb: int = 2048,
    ) -> None:
        self.path = check_source_path(path)
        self.root = (root or (self.path if self.path.is_dir() else self.path.parent)).resolve()
        if not self.path.is_relative_to(self.root):
            raise IngestError(f"{path} is not under {self.root}")
        self.scope = "" if self.path == self.root else self.path.relative_to(self.root).as_posix()
        self.origin = origin
        self.groups_for = groups_for
        self.meta = dict(meta or {})
        self.exclude = list(exclude)
        self.max_bytes = max_bytes
        self.rows_per_chunk = rows_per_chunk
        self.fingerprint = fingerprint
        self.parse_timeout_s = parse_timeout_s
        self.parse_memory_mb = parse_memory_mb
        self.notices: list[tuple[str, str]] = []  # (source, message): kept, but worth saying

    def files(self) -> list[Path]:
        """Every candidate file, sorted; hidden files and folders and excluded patterns are left out.

        Folder links are not descended into (os.walk's default), so a link cannot loop or leave.
        """
        if self.path.is_file():
            return [self.path]
        found: list[Path] = []
        for folder, dirs, names in os.walk(self.path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names + [d for d in dirs if (Path(folder) / d).is_symlink()]):
                if name.startswith("."):
                    continue
                file = Path(folder) / name
                relative = file.relative_to(self.root).as_posix()
                if any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(name, p) for p in self.exclude):
                    continue
                found.append(file)
        return found

    def items(self) -> Iterator[SourceItem | Failure]:
        for file in self.files():
            source = file.relative_to(self.root).as_posix()
            if reason := _unsafe(file, self.root):
                yield Failure(source, reason)
                continue
            try:
                size = file.stat().st_size
                if size > self.max_bytes:
                    limit = self.max_bytes / 1024 / 1024
                    yield Failure(
                        source,
                        f"file is {size / 1024 / 1024:.1f} MB, over the {limit:g} MB limit "
                        "(ingest.max_file_mb)",
                    )
                    continue
                data = file.read_bytes()
            except OSError as exc:
                yield Failure(source, f"cannot read file: {exc.strerror or exc}")
                continue
            groups = sorted(set(self.groups_for(file)))
            digest = _digest(data, self.fingerprint, json.dumps(groups))
            yield SourceItem(source, digest, self._loader(file, source, data, groups))

    def _loader(self, file: Path, source: str, data: bytes, groups: list[str]) -> Callable[[], Document]:
        def load() -> Document:
            parsed = parse_isolated(
                file, data, self.rows_per_chunk, timeout_s=self.parse_timeout_s, memory_mb=self.parse_memory_mb
            )
            text, sections = parsed.assemble()
            return Document(
                source=source,
                origin=self.origin,
                title=parsed.title,
                text=text,
                sections=sections,
                groups=self._document_groups(source, groups, parsed.groups),
                meta={**parsed.meta, **self.meta},
            )

        return load

    def _document_groups(self, source: str, ruled: list[str], declared: list[str] | None) -> list[str]:
        """Front matter names a document's own readers and wins over its folder's rule, as documented,
        except that it cannot make public what a rule restricts (a document that was indexed already
        is guarded again at sync: no change widens it without --widen)."""
        if declared is None:
            return ruled
        try:
            declared = check_groups(declared)
        except ConfigError as exc:
            raise IngestError(f"front matter: {exc}") from exc
        if ruled and not declared:
            self.notices.append((source, f"front matter makes it public, but its rule says {ruled}; kept {ruled}"))
            return ruled
        return declared


def render_row(row: dict[str, Any], template: str | None) -> str:
    """A SQL row as text: the user's template (str.format with column names) or "column: value" lines."""
    if not template:
        return render_record(row)
    try:
        return template.format(**row)
    except (KeyError, IndexError, ValueError) as exc:
        columns = ", ".join(row)
        raise IngestError(
            f"--text-template refers to {exc} which is not a column (columns: {columns})"
        ) from exc


class SqlSource:
    """Rows of a SQL query through SQLAlchemy; each row is a document identified by its id column.

    The query runs completely before anything is written, so a bad URL or query changes nothing.
    """

    scope = ""

    def __init__(
        self,
        url: str,
        query: str,
        id_column: str,
        *,
        name: str | None = None,
        text_template: str | None = None,
        groups: Sequence[str] = (),
        fingerprint: str = "",
    ) -> None:
        self.name = name or table_name(query)
        self.origin = f"sql:{self.name}"
        self.groups = sorted(set(groups))
        self.fingerprint = fingerprint
        self.text_template = text_template
        self.rows = self._fetch(url, query, id_column)
        self.id_column = id_column

    @staticmethod
    def _fetch(url: str, query: str, id_column: str) -> list[dict[str, Any]]:
        import sqlalchemy
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

        try:
            engine = sqlalchemy.create_engine(url)
        except (ArgumentError, NoSuchModuleError, ValueError) as exc:
            # not chained: the parser's own message quotes the URL, password and all
            reason = hide_password(str(exc), url)
            raise IngestError(f"bad SQL URL {hide_password(url)!r}: {reason}") from None
        _read_only(engine)
        try:
            with engine.connect() as connection:
                result = connection.execute(sqlalchemy.text(query))
                rows = [dict(row._mapping) for row in result]
        except SQLAlchemyError as exc:
            message = hide_password(str(getattr(exc, "orig", None) or exc).splitlines()[0], url)
            raise IngestError(f"SQL query failed: {message}; nothing was changed") from exc
        finally:
            engine.dispose()
        if rows and id_column not in rows[0]:
            raise IngestError(
                f"--id-column {id_column!r} is not in the query's columns: {', '.join(rows[0])}"
            )
        return rows

    def items(self) -> Iterator[SourceItem | Failure]:
        seen: set[str] = set()
        for row in self.rows:
            row_id = str(row[self.id_column])
            source = f"sql:{self.name}:{row_id}"
            if row_id in seen:
                yield Failure(
                    source, f"duplicate id {row_id!r} in column {self.id_column!r}; only the first kept"
                )
                continue
            seen.add(row_id)
            text = render_row(row, self.text_template)
            yield SourceItem(source, _digest(text, self.fingerprint), self._loader(source, row, text))

    def _loader(self, source: str, row: dict[str, Any], text: str) -> Callable[[], Document]:
        def load() -> Document:
            label = record_label(row) or source
            return Document(
                source=source,
                origin=self.origin,
                title=f"{self.name}: {label}",
                text=text,
                sections=[Section(text, 0)],
                groups=list(self.groups),
                meta={"table": self.name, "row_id": str(row[self.id_column])},
            )

        return load


# What makes a session read-only, per SQLAlchemy dialect. Elsewhere the query runs in a transaction
# that is rolled back, which undoes plain writes but not DDL on engines that commit it at once.
_READ_ONLY = {
    "sqlite": "PRAGMA query_only = ON",
    "postgresql": "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
    "mysql": "SET SESSION TRANSACTION READ ONLY",
    "mariadb": "SET SESSION TRANSACTION READ ONLY",
}


def _read_only(engine: Any) -> None:
    """Open every connection of `engine` read-only where the database allows it: ingest only reads,
    and a query (or a URL) from a user must not be able to change the source."""
    from sqlalchemy import event

    statement = _READ_ONLY.get(engine.dialect.name)
    if statement is None:
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(statement)
        finally:
            cursor.close()


def hide_password(text: str, url: str | None = None) -> str:
    """`text` with the password of a database URL masked ("***"): the URL itself when `url` is None,
    else any mention of `url` or its password inside `text` (an error message quoting it)."""
    url = text if url is None else url
    match = re.search(r"://([^/?#@]*?):([^/?#]*)@", url)
    if match is None or not match.group(2):
        return text
    password = match.group(2)
    masked = text.replace(url, url[: match.start(2)] + "***" + url[match.end(2) :])
    for secret in {password, unquote(password)}:
        masked = masked.replace(secret, "***")
    return masked


def table_name(query: str) -> str:
    """A readable source name from 'SELECT ... FROM table ...', else a short hash of the query."""
    words = query.replace("\n", " ").split()
    lowered = [w.lower() for w in words]
    if "from" in lowered:
        position = lowered.index("from") + 1
        if position < len(words):
            return words[position].strip('`"[];,').split(".")[-1]
    return "query-" + hashlib.sha1(query.encode()).hexdigest()[:8]


class RecordSource:
    """In-memory records (id, title, text), as in a BEIR corpus; each record is one document."""

    scope = ""

    def __init__(
        self, records: Sequence[tuple[str, str, str]], *, origin: str, fingerprint: str = ""
    ) -> None:
        self.records = records
        self.origin = origin
        self.fingerprint = fingerprint

    def items(self) -> Iterator[SourceItem | Failure]:
        for record_id, title, text in self.records:
            if not text.strip() and not title.strip():
                yield Failure(record_id, "empty record")
                continue
            yield SourceItem(
                record_id, _digest(title, text, self.fingerprint), self._loader(record_id, title, text)
            )

    def _loader(self, record_id: str, title: str, text: str) -> Callable[[], Document]:
        def load() -> Document:
            body = text.strip() or title
            return Document(record_id, self.origin, title, body, [Section(body, 0)])

        return load
