"""Sources list what they hold (with a content hash) before anything is parsed.

Listing first is what makes re-sync cheap: an item whose hash matches the index is never parsed,
chunked or embedded again.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ragtune.errors import IngestError
from ragtune.ingest.parsers import PARSER_VERSION, parse_file, record_label, render_record
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
    """Anything that can list documents: a folder of files, SQL rows, a BEIR corpus."""

    origin: str

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


class FileSource:
    """Files under a root folder (or a single file); `source` is the path relative to the root."""

    def __init__(
        self,
        path: Path,
        *,
        origin: str,
        groups: Sequence[str] = (),
        meta: dict[str, Any] | None = None,
        exclude: Sequence[str] = (),
        max_bytes: int = 50 * 1024 * 1024,
        rows_per_chunk: int = 1,
        fingerprint: str = "",
    ) -> None:
        if not path.exists():
            raise IngestError(f"{path}: no such file or folder")
        self.path = path
        self.root = path if path.is_dir() else path.parent
        self.origin = origin
        self.groups = list(groups)
        self.meta = dict(meta or {})
        self.exclude = list(exclude)
        self.max_bytes = max_bytes
        self.rows_per_chunk = rows_per_chunk
        self.fingerprint = fingerprint

    def files(self) -> list[Path]:
        """Every candidate file, sorted; hidden files and folders and excluded patterns are left out."""
        if self.path.is_file():
            return [self.path]
        found: list[Path] = []
        for folder, dirs, names in os.walk(self.path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
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
            yield SourceItem(source, _digest(data, self.fingerprint), self._loader(file, source, data))

    def _loader(self, file: Path, source: str, data: bytes) -> Callable[[], Document]:
        def load() -> Document:
            parsed = parse_file(file, data, self.rows_per_chunk)
            text, sections = parsed.assemble()
            groups = parsed.groups if parsed.groups is not None else self.groups
            return Document(
                source=source,
                origin=self.origin,
                title=parsed.title,
                text=text,
                sections=sections,
                groups=sorted(set(groups)),
                meta={**parsed.meta, **self.meta},
            )

        return load


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
        self.name = name or _table_name(query)
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
            raise IngestError(f"bad SQL URL {url!r}: {exc}") from exc
        try:
            with engine.connect() as connection:
                result = connection.execute(sqlalchemy.text(query))
                rows = [dict(row._mapping) for row in result]
        except SQLAlchemyError as exc:
            message = str(getattr(exc, "orig", None) or exc).splitlines()[0]
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


def _table_name(query: str) -> str:
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
