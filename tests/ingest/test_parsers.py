from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragtune.errors import IngestError
from ragtune.ingest.parsers import parse_file
from tests.conftest import HR_DOCS


def parse(path: Path, rows_per_chunk: int = 1):
    return parse_file(path, path.read_bytes(), rows_per_chunk)


def test_markdown_front_matter_gives_title_groups_and_metadata() -> None:
    parsed = parse(HR_DOCS / "policies" / "salary-bands.md")
    assert parsed.groups == ["hr"]
    assert parsed.title.startswith("Salary Bands")
    assert "owner" in parsed.meta and "title" not in parsed.meta and "groups" not in parsed.meta
    assert all("---" not in block.text.splitlines()[0] for block in parsed.blocks)


def test_markdown_splits_on_headings_and_keeps_heading_path(tmp_path: Path) -> None:
    file = tmp_path / "guide.md"
    file.write_text(
        "# Guide\nintro\n## Leave\nleave text\n### Carry-over\ncarry text\n```\n# not a heading\n```\n"
        "## Pay\npay text\n"
    )
    blocks = parse(file).blocks
    by_text = {b.text.splitlines()[0]: b.heading for b in blocks}
    assert by_text["intro"] == ("Guide",)
    assert by_text["leave text"] == ("Guide", "Leave")
    assert by_text["carry text"] == ("Guide", "Leave", "Carry-over")
    assert by_text["pay text"] == ("Guide", "Pay")
    assert any("# not a heading" in b.text for b in blocks), "a heading inside a code fence is text"


def test_html_drops_navigation_footer_and_banners() -> None:
    parsed = parse(HR_DOCS / "intranet" / "benefits-overview.html")
    text = "\n".join(b.text for b in parsed.blocks)
    html = (HR_DOCS / "intranet" / "benefits-overview.html").read_text()
    assert "Cookie settings" in html and "Cookie settings" not in text
    assert "©" not in text
    assert any(b.heading for b in parsed.blocks), "headings of the main content become the heading path"


def test_pdf_gives_one_block_per_page() -> None:
    parsed = parse(HR_DOCS / "handbook" / "onboarding.pdf")
    pages = [b.page for b in parsed.blocks]
    assert pages == list(range(1, len(pages) + 1)) and len(pages) >= 4
    assert all(b.text.strip() for b in parsed.blocks)


def test_docx_keeps_headings_and_tables() -> None:
    parsed = parse(HR_DOCS / "handbook" / "travel-guidelines.docx")
    assert any(len(b.heading) >= 1 for b in parsed.blocks)
    assert any(":" in line and ";" in line for b in parsed.blocks for line in b.text.splitlines()), (
        "table rows"
    )


def test_csv_rows_keep_the_header(tmp_path: Path) -> None:
    parsed = parse(HR_DOCS / "data" / "holidays-2026.csv")
    first = parsed.blocks[0]
    assert first.row == 1 and "date:" in first.text and "name:" in first.text
    grouped = parse(HR_DOCS / "data" / "holidays-2026.csv", rows_per_chunk=5)
    assert [b.row for b in grouped.blocks][:3] == [1, 6, 11]
    assert grouped.blocks[0].text.count("date:") == 5


def test_json_and_jsonl_records_become_rows(tmp_path: Path) -> None:
    benefits = parse(HR_DOCS / "data" / "benefits.json")
    records = json.loads((HR_DOCS / "data" / "benefits.json").read_text())
    assert len(benefits.blocks) == len(records)
    faq = parse(HR_DOCS / "data" / "faq.jsonl")
    assert all(b.text.startswith("question:") for b in faq.blocks)
    assert faq.blocks[0].heading and faq.blocks[0].heading[0].endswith("?")
    nested = tmp_path / "nested.json"
    nested.write_text(json.dumps({"team": {"lead": "Ana", "tags": ["a", "b"]}}))
    assert "team.lead: Ana" in parse(nested).blocks[0].text


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("broken.pdf", b"%PDF-1.4\n this is not really a pdf", "not a readable PDF"),
        ("fake.docx", b"I am plain text pretending to be a docx", "not a valid DOCX"),
        ("binary.txt", b"abc\x00\x01\x02def", "binary data"),
        ("latin1.txt", "café".encode("latin-1"), "not valid UTF-8"),
        ("empty.md", b"", "no text to index"),
        ("blank.txt", b"   \n\n ", "no text to index"),
        ("table.xlsx", b"PK\x03\x04", "unsupported file type '.xlsx'"),
        ("bad.json", b'{"a": 1,,}', "invalid JSON at line 1"),
        ("bad.jsonl", b'{"a": 1}\n{oops}\n', "line 2 is not valid JSON"),
    ],
)
def test_bad_files_raise_a_clear_ingest_error(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    file = tmp_path / name
    file.write_bytes(content)
    with pytest.raises(IngestError, match=reason) as error:
        parse(file)
    assert str(error.value).startswith(name)


def test_encrypted_pdf_is_refused_with_a_reason(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(HR_DOCS / "handbook" / "security-awareness.pdf").pages:
        writer.add_page(page)
    writer.encrypt(user_password="secret", owner_password="owner")
    file = tmp_path / "locked.pdf"
    with file.open("wb") as handle:
        writer.write(handle)
    with pytest.raises(IngestError, match="encrypted"):
        parse(file)
