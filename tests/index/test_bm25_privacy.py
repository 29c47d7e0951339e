"""What a caller sees of BM25 must not depend on chunks the caller cannot read."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ragtune.workspace import Workspace


def _scores(ws: Workspace, query: str, mode: str) -> list[tuple[str, float, dict[str, float]]]:
    return [(h.chunk.source, round(h.score, 9), h.scores) for h in ws.search(query, k=5, mode=mode)]


def test_restricted_chunks_holding_a_word_do_not_change_what_others_see(
    make_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    public = tmp_path / "public"
    public.mkdir()
    (public / "team.md").write_text("# Sales\n\nCamille Moreau runs the Lisbon sales team.\n")
    (public / "office.md").write_text("# Office\n\nThe Lisbon office opens at eight.\n")
    restricted = tmp_path / "restricted"
    restricted.mkdir()
    for i in range(30):
        (restricted / f"case-{i}.md").write_text(f"# Case {i}\n\nA grievance about Moreau, case {i}.\n")

    alone = make_workspace("alone")
    alone.ingest([public], show_progress=False)
    beside = make_workspace("beside")
    beside.ingest([public], show_progress=False)
    beside.ingest([restricted], groups=["hr"], show_progress=False)

    for mode in ("bm25", "hybrid"):
        assert _scores(alone, "Moreau", mode) == _scores(beside, "Moreau", mode), mode
    hr = [h.chunk.source for h in beside.search("Moreau", k=3, mode="bm25", groups=["hr"])]
    assert any(source.startswith("case-") for source in hr), "the restricted chunks are there for hr"
