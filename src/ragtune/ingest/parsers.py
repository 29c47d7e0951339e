"""File formats -> parsed blocks of text, each with its structure (heading path, page, row).

Every parser uses a well-kept library and raises IngestError with a reason a person can act on;
the sync step turns that into one "skipped" line and goes on with the other files.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragtune.errors import IngestError
from ragtune.types import Section

PARSER_VERSION = "1"


@dataclass
class Block:
    """A structural piece of a file before offsets are assigned."""

    text: str
    heading: tuple[str, ...] = ()
    page: int | None = None
    row: int | None = None


@dataclass
class ParsedFile:
    title: str
    blocks: list[Block]
    meta: dict[str, Any] = field(default_factory=dict)
    groups: list[str] | None = None

    def assemble(self) -> tuple[str, list[Section]]:
        """Join blocks into one document text; each section records where it starts in it."""
        parts: list[str] = []
        sections: list[Section] = []
        offset = 0
        for block in self.blocks:
            text = block.text.strip()
            if not text:
                continue
            if parts:
                offset += 2
            sections.append(Section(text, offset, block.heading, block.page, block.row))
            parts.append(text)
            offset += len(text)
        return "\n\n".join(parts), sections


def _title_from_name(path: Path) -> str:
    return path.stem.replace("-", " ").replace("_", " ").strip().capitalize()


def decode_text(data: bytes, name: str) -> str:
    """Bytes -> str for text formats; binary content is refused rather than indexed as garbage."""
    if b"\x00" in data[:65536]:
        raise IngestError(f"{name}: contains binary data (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestError(f"{name}: not valid UTF-8 text (byte {exc.start}); convert it to UTF-8") from exc


def markdown_blocks(content: str) -> tuple[list[Block], str | None]:
    """Split Markdown on its headings (found by markdown-it, so code fences are respected).

    Returns the blocks, each with its heading path, and the first level-1 heading if any.
    """
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(content)
    lines = content.splitlines()
    headings: list[tuple[int, int, int, str]] = []  # (first line, end line, level, text)
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.map is not None:
            headings.append((token.map[0], token.map[1], int(token.tag[1]), tokens[index + 1].content))

    blocks: list[Block] = []
    first_h1 = next((text for _, _, level, text in headings if level == 1), None)
    body_start = 0
    stack: list[tuple[int, str]] = []
    for first_line, end_line, level, text in [*headings, (len(lines), len(lines), 0, "")]:
        body = "\n".join(lines[body_start:first_line]).strip()
        if body:
            blocks.append(Block(body, tuple(t for _, t in stack)))
        if level == 0:
            break
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, text))
        body_start = end_line
    return blocks, first_h1


def parse_markdown(path: Path, data: bytes) -> ParsedFile:
    import frontmatter

    text = decode_text(data, path.name)
    try:
        post = frontmatter.loads(text)
    except Exception as exc:  # YAML errors come in many classes
        raise IngestError(f"{path.name}: front matter is not valid YAML: {exc}") from exc
    meta = dict(post.metadata)
    if _too_many_nodes(meta, limit=10_000):
        raise IngestError(
            f"{path.name}: front matter expands to over 10,000 values (YAML aliases?); keep it small"
        )
    groups = meta.pop("groups", None)
    if isinstance(groups, str):
        groups = [g.strip() for g in groups.split(",") if g.strip()]
    if groups is not None and not (isinstance(groups, list) and all(isinstance(g, str) for g in groups)):
        raise IngestError(f"{path.name}: front matter 'groups' must be a list of names, got {groups!r}")
    blocks, first_h1 = markdown_blocks(post.content)
    title = str(meta.pop("title", None) or first_h1 or _title_from_name(path))
    return ParsedFile(title, blocks, _jsonable(meta), groups)


def _too_many_nodes(value: Any, limit: int) -> bool:
    """Count values breadth-first, stopping at `limit`: YAML aliases can make a tiny file expand to billions."""
    pending, seen = [value], 0
    while pending:
        item = pending.pop()
        seen += 1
        if seen > limit:
            return True
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False


def parse_text(path: Path, data: bytes) -> ParsedFile:
    return ParsedFile(_title_from_name(path), [Block(decode_text(data, path.name))])


_BOILERPLATE_TAGS = [
    "script",
    "style",
    "noscript",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "iframe",
    "svg",
]
_BOILERPLATE_HINT = re.compile(r"cookie|consent|banner|breadcrumb|sidebar|skip-link|newsletter|share", re.I)


def parse_html(path: Path, data: bytes) -> ParsedFile:
    """Keep the page's main content: navigation, header, footer, asides and banners are dropped."""
    from bs4 import BeautifulSoup, Tag
    from markdownify import markdownify

    soup = BeautifulSoup(decode_text(data, path.name), "html.parser")
    title_tag = soup.find("title")
    page_title = title_tag.get_text(" ", strip=True) if title_tag else ""
    for tag in soup.find_all(_BOILERPLATE_TAGS):
        tag.decompose()
    for tag in soup.find_all(True):
        if not isinstance(tag, Tag) or tag.attrs is None:
            continue
        hints = " ".join([str(tag.get("id") or ""), *(tag.get("class") or [])])
        if _BOILERPLATE_HINT.search(hints) and tag.name not in ("html", "body", "main", "article"):
            tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    markdown = markdownify(str(root), heading_style="ATX", strip=["a", "img"])
    blocks, first_h1 = markdown_blocks(markdown)
    return ParsedFile(first_h1 or page_title or _title_from_name(path), blocks)


def parse_pdf(path: Path, data: bytes) -> ParsedFile:
    """One block per page, so that citations can name the page."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise IngestError(f"{path.name}: PDF is encrypted with a password; decrypt it first")
        pages = [page.extract_text() or "" for page in reader.pages]
        info_title = (reader.metadata.title if reader.metadata else None) or ""
    except IngestError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise IngestError(f"{path.name}: not a readable PDF ({exc})") from exc
    except Exception as exc:  # pypdf raises assorted errors on damaged files
        raise IngestError(f"{path.name}: not a readable PDF ({type(exc).__name__}: {exc})") from exc
    if not any(page.strip() for page in pages):
        raise IngestError(f"{path.name}: PDF has no extractable text (scanned images?); run OCR first")
    blocks = [Block(text, page=number) for number, text in enumerate(pages, start=1)]
    return ParsedFile(str(info_title).strip() or _title_from_name(path), blocks)


MAX_EXPANDED_BYTES = 512 * 1024 * 1024


def _check_expansion(path: Path, data: bytes) -> None:
    """Refuse an archive whose members would expand past MAX_EXPANDED_BYTES (a zip bomb)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            expanded = sum(member.file_size for member in archive.infolist())
    except zipfile.BadZipFile as exc:
        raise IngestError(f"{path.name}: not a valid DOCX file ({exc})") from exc
    if expanded > MAX_EXPANDED_BYTES:
        raise IngestError(
            f"{path.name}: would expand to {expanded / 1e9:.1f} GB (over {MAX_EXPANDED_BYTES / 1e6:.0f} MB); "
            "a zip bomb or a damaged file"
        )


def parse_docx(path: Path, data: bytes) -> ParsedFile:
    """Headings ("Heading N" styles) become the heading path; tables become "column: value" lines."""
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    _check_expansion(path, data)
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise IngestError(f"{path.name}: not a valid DOCX file ({exc})") from exc
    except Exception as exc:  # python-docx raises PackageNotFoundError and others on fakes
        raise IngestError(f"{path.name}: not a valid DOCX file ({type(exc).__name__}: {exc})") from exc

    title = (document.core_properties.title or "").strip()
    blocks: list[Block] = []
    stack: list[tuple[int, str]] = []
    lines: list[str] = []

    def flush() -> None:
        if lines:
            blocks.append(Block("\n".join(lines), tuple(t for _, t in stack)))
            lines.clear()

    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            style = item.style.name if item.style is not None and item.style.name else ""
            text = item.text.strip()
            if not text:
                continue
            if style == "Title":
                title = title or text
            elif style.startswith("Heading"):
                flush()
                level = int(style.split()[-1]) if style.split()[-1].isdigit() else 1
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, text))
            else:
                lines.append(text)
        elif isinstance(item, Table):
            rows = [[cell.text.strip() for cell in row.cells] for row in item.rows]
            if rows:
                header, *body = rows
                for cells in body or [header]:
                    lines.append(
                        "; ".join(f"{h}: {c}" if h else c for h, c in zip(header, cells, strict=False))
                    )
    flush()
    if not title and stack:
        title = stack[0][1]
    return ParsedFile(title or _title_from_name(path), blocks)


def render_record(record: dict[str, Any]) -> str:
    """A row as "key: value" lines; nested objects get dotted keys so nothing is lost."""
    lines: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
            lines.append(f"{prefix}: {', '.join(str(v) for v in value)}")
        elif isinstance(value, list):
            for number, inner in enumerate(value, start=1):
                walk(f"{prefix}[{number}]", inner)
        elif value is not None and str(value).strip() != "":
            lines.append(f"{prefix}: {value}")

    walk("", record)
    return "\n".join(lines)


_LABEL_KEYS = ("title", "name", "question", "subject", "city", "date", "id")


def record_label(record: dict[str, Any]) -> str:
    """A short name for a row, used as its heading in citations."""
    for key in _LABEL_KEYS:
        value = record.get(key)
        if isinstance(value, str | int | float) and str(value).strip():
            return str(value).strip()[:80]
    return ""


def record_blocks(records: Iterable[dict[str, Any]], rows_per_chunk: int) -> list[Block]:
    """Rows grouped `rows_per_chunk` at a time; each row keeps its column names."""
    blocks: list[Block] = []
    group: list[tuple[int, dict[str, Any]]] = []
    for number, record in enumerate(records, start=1):
        group.append((number, record))
        if len(group) == rows_per_chunk:
            blocks.append(_rows_block(group))
            group = []
    if group:
        blocks.append(_rows_block(group))
    return blocks


def _rows_block(group: list[tuple[int, dict[str, Any]]]) -> Block:
    text = "\n\n".join(render_record(record) for _, record in group)
    label = record_label(group[0][1]) if len(group) == 1 else ""
    return Block(text, (label,) if label else (), row=group[0][0])


def parse_csv(path: Path, data: bytes, rows_per_chunk: int = 1) -> ParsedFile:
    text = decode_text(data, path.name)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    try:
        rows = [{k: v for k, v in row.items() if k is not None} for row in reader]
    except csv.Error as exc:
        raise IngestError(f"{path.name}: malformed CSV at line {reader.line_num}: {exc}") from exc
    if not reader.fieldnames:
        raise IngestError(f"{path.name}: CSV has no header row")
    return ParsedFile(_title_from_name(path), record_blocks(rows, rows_per_chunk))


def _as_records(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return [v if isinstance(v, dict) else {"value": v} for v in value]
    if isinstance(value, dict):
        lists = [
            v for v in value.values() if isinstance(v, list) and v and all(isinstance(i, dict) for i in v)
        ]
        if len(lists) == 1:
            return list(lists[0])
        return [value]
    return [{"value": value}]


def parse_json(path: Path, data: bytes, rows_per_chunk: int = 1) -> ParsedFile:
    try:
        value = json.loads(decode_text(data, path.name))
    except json.JSONDecodeError as exc:
        raise IngestError(
            f"{path.name}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    return ParsedFile(_title_from_name(path), record_blocks(_as_records(value), rows_per_chunk))


def parse_jsonl(path: Path, data: bytes, rows_per_chunk: int = 1) -> ParsedFile:
    records: list[dict[str, Any]] = []
    for number, line in enumerate(decode_text(data, path.name).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.extend(_as_records(json.loads(line)))
        except json.JSONDecodeError as exc:
            raise IngestError(f"{path.name}: line {number} is not valid JSON: {exc.msg}") from exc
    return ParsedFile(_title_from_name(path), record_blocks(records, rows_per_chunk))


def _jsonable(meta: dict[str, Any]) -> dict[str, Any]:
    """Front matter may hold dates and other YAML types; keep them as JSON-friendly values."""
    return json.loads(json.dumps(meta, default=str))


Parser = Callable[[Path, bytes, int], ParsedFile]

PARSERS: dict[str, Parser] = {
    ".md": lambda p, d, _: parse_markdown(p, d),
    ".markdown": lambda p, d, _: parse_markdown(p, d),
    ".txt": lambda p, d, _: parse_text(p, d),
    ".text": lambda p, d, _: parse_text(p, d),
    ".html": lambda p, d, _: parse_html(p, d),
    ".htm": lambda p, d, _: parse_html(p, d),
    ".pdf": lambda p, d, _: parse_pdf(p, d),
    ".docx": lambda p, d, _: parse_docx(p, d),
    ".csv": parse_csv,
    ".tsv": parse_csv,
    ".json": parse_json,
    ".jsonl": parse_jsonl,
    ".ndjson": parse_jsonl,
}


def parse_file(path: Path, data: bytes, rows_per_chunk: int = 1) -> ParsedFile:
    """Parse by extension; an unsupported extension is an IngestError like any other bad input."""
    parser = PARSERS.get(path.suffix.lower())
    if parser is None:
        supported = ", ".join(sorted(PARSERS))
        raise IngestError(
            f"{path.name}: unsupported file type '{path.suffix or '(none)'}' (supported: {supported})"
        )
    try:
        parsed = parser(path, data, rows_per_chunk)
    except IngestError:
        raise
    except RecursionError as exc:
        raise IngestError(f"{path.name}: nested too deeply to parse (hostile or broken file)") from exc
    except ValueError as exc:  # e.g. an integer of thousands of digits, Python's int-string limit
        raise IngestError(f"{path.name}: unreadable value ({exc})") from exc
    if not any(block.text.strip() for block in parsed.blocks):
        raise IngestError(f"{path.name}: no text to index (empty file)")
    return parsed
