"""No file can hold the ingest: parsing runs in a child process with a time and a memory limit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ragtune.errors import IngestError
from ragtune.ingest.isolation import ParserProcess
from ragtune.workspace import Workspace


def test_a_parse_past_the_time_limit_is_an_error_and_the_next_file_parses(tmp_path: Path) -> None:
    worker = ParserProcess(timeout_s=0.05, memory_mb=1024)
    try:
        slow = ("| a | b |\n|---|---|\n" + "| x | y |\n" * 200_000).encode()
        with pytest.raises(IngestError, match=r"parsing took over 0.05 s"):
            worker.parse(Path("table.md"), slow, 1)
        worker.timeout_s = 30
        parsed = worker.parse(Path("note.md"), b"# Note\n\nThe canteen opens at eight.\n", 1)
        assert parsed.title == "Note" and "canteen" in parsed.blocks[-1].text
    finally:
        worker.close()


def test_parser_errors_come_back_as_the_parsers_own_message() -> None:
    worker = ParserProcess(timeout_s=30, memory_mb=1024)
    try:
        with pytest.raises(IngestError, match="empty file"):
            worker.parse(Path("empty.md"), b"", 1)
    finally:
        worker.close()


def test_a_file_needing_too_much_memory_is_skipped_and_the_rest_indexed(
    make_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "policy.md").write_text("# Policy\n\nDesks are cleared every Friday.\n")
    with (kb / "huge.csv").open("w") as sink:  # ~35 MB of rows: far more than 256 MB once parsed
        sink.write("id,name,team,city\n")
        for i in range(1_000_000):
            sink.write(f"{i},person {i},team {i % 40},city {i % 17}\n")
    ws = make_workspace(config="[ingest]\nparse_memory_mb = 256\n")
    report = ws.ingest([kb], show_progress=False)
    failed = {f["path"]: f["error"] for f in report.failed}
    assert list(failed) == ["huge.csv"] and "memory" in failed["huge.csv"], failed
    assert report.added == 1
    assert ws.search("When are desks cleared?", k=1)[0].chunk.source == "policy.md"
