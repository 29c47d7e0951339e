"""Hostile files of every supported format, made fresh by each test (our own cases, not a fixed list).

Each entry is (file name, bytes, a word the skip reason must contain). They are files a real team
meets: exports nested past any parser's stack, numbers longer than Python will parse, binaries with
a text extension, archives that expand a thousandfold, YAML that references itself.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

Hostile = tuple[str, bytes, str]


def _deep_json(depth: int) -> bytes:
    return ("[" * depth + "1" + "]" * depth).encode()


def _zip_bomb_docx() -> bytes:
    """A .docx whose document.xml would expand to over 1 GB (the zip holds a few MB)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            block = b"\0" * (1 << 20)
            for _ in range(1100):
                member.write(block)
    return buffer.getvalue()


def _yaml_bomb() -> bytes:
    lines = ["---", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [" + ",".join([f"*{previous}"] * 9) + "]")
    lines += ["---", "# Policy", "Nothing to see."]
    return "\n".join(lines).encode()


def hostile_files(include_large: bool = True) -> list[Hostile]:
    files: list[Hostile] = [
        ("deep.json", _deep_json(3000), "nested"),
        ("deep-object.json", ('{"a":' * 3000 + "1" + "}" * 3000).encode(), "nested"),
        ("huge-number.json", ("[" + "9" * 5000 + "]").encode(), "digits"),
        ("deep-line.jsonl", b'{"ok": 1}\n' + _deep_json(5000) + b"\n", "nested"),
        (
            "deep.html",
            ("<html><body>" + "<div>" * 1500 + "text" + "</div>" * 1500 + "</body></html>").encode(),
            "nested",
        ),
        ("nul-bytes.txt", b"annual leave\x00\x00\x00 policy", "binary"),
        ("nul-bytes.md", b"# Title\n\x00\x01\x02", "binary"),
        ("nul-bytes.csv", b"a,b\n1,\x00\n", "binary"),
        ("latin1.txt", "caf\xe9 menu".encode("latin-1"), "UTF-8"),
        ("not-a-pdf.pdf", b"this is plain text pretending to be a PDF", "PDF"),
        ("truncated.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog", "PDF"),
        ("not-a-docx.docx", b"PK\x03\x04 garbage that is no zip", "DOCX"),
        ("empty.md", b"", "empty"),
        ("only-spaces.txt", b"   \n\n\t  ", "empty"),
        ("bad.json", b'{"a": ', "JSON"),
        ("bad-line.jsonl", b'{"a": 1}\n{"b": \n', "JSON"),
        ("bad-frontmatter.md", b"---\ngroups: [unclosed\n---\n# x\n", "YAML"),
        ("yaml-bomb.md", _yaml_bomb(), "front matter"),
        ("odd name \u2603 (copy) #1.md", b"\xff\xfe not utf-8 \xff", "UTF-8"),
    ]
    if include_large:
        files.append(("bomb.docx", _zip_bomb_docx(), "expand"))
        files.append(("huge-field.csv", b"a,b\n1," + b"x" * 200_000 + b"\n", "CSV"))
    return files


GOOD = {
    "good-policy.md": b"# Gardening leave\n\nStaff on notice take 14 days of gardening leave.\n",
    "good-table.csv": b"city,manager\nReykjavik,Sigrun Jonsdottir\n",
    "good-data.json": json.dumps([{"title": "Canteen", "opens": "07:30"}]).encode(),
}


def write_files(folder: Path, files: list[Hostile]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data, _ in files:
        (folder / name).write_bytes(data)
    for name, data in GOOD.items():
        (folder / name).write_bytes(data)
