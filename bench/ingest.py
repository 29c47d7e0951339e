"""Ingest throughput: `Workspace.ingest` vs raw sentence-transformers `encode` of the same chunks.

    python bench/ingest.py [--docs 1000]

Builds N Markdown documents from the HR sample's paragraphs (each document unique), then measures in
one run: (1) raw `SentenceTransformer.encode` of exactly the chunk texts ragtune would embed,
(2) a cold `ragtune ingest` (parse + chunk + embed + SQLite + snapshot), (3) an unchanged re-ingest.
Target: ours >= 0.90x raw chunks/s; unchanged re-ingest of 1,000 documents <= 2 s and 0 re-embeds.
At scale: `--docs 10000` (issue 15 asks for docs/s at 10k documents).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from _common import print_table

from ragtune.ingest.parsers import parse_file
from ragtune.ingest.sources import FileSource, SourceItem
from ragtune.workspace import Workspace

HR_DOCS = Path(__file__).resolve().parents[1] / "examples" / "hr" / "docs" / "policies"


def paragraphs() -> list[str]:
    found: list[str] = []
    for path in sorted(HR_DOCS.glob("*.md")):
        for block in parse_file(path, path.read_bytes()).blocks:
            found.extend(p for p in block.text.split("\n\n") if len(p.split()) > 12)
    return found


def write_corpus(folder: Path, count: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    pool = paragraphs()
    for i in range(count):
        body = "\n\n".join(rng.sample(pool, 3))
        (folder / f"doc-{i:05d}.md").write_text(f"# Memo {i}\n\nReference M-{i:05d}.\n\n{body}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        write_corpus(docs, args.docs)

        ws = Workspace.init(Path(tmp) / "ws")
        items = [i for i in FileSource(docs, origin="bench").items() if isinstance(i, SourceItem)]
        texts = [chunk.index_text for item in items for chunk in ws.chunk(item.load())]
        model = ws.embedder.model
        model.encode(texts[:64], batch_size=ws.embedder.batch_size)  # warm-up, both sides share it
        started = time.perf_counter()
        model.encode(
            texts, batch_size=ws.embedder.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        raw_s = time.perf_counter() - started

        started = time.perf_counter()
        report = ws.ingest([docs], show_progress=False)
        ours_s = time.perf_counter() - started
        started = time.perf_counter()
        again = ws.ingest([docs], show_progress=False)
        again_s = time.perf_counter() - started
        ws.close()

    raw_rate, ours_rate = len(texts) / raw_s, report.chunks_embedded / ours_s
    print_table(
        f"ingest: {args.docs} documents, {len(texts)} chunks, batch {ws.embedder.batch_size}",
        ["run", "seconds", "docs/s", "chunks/s", "ratio", "chunks embedded"],
        [
            ["raw sentence-transformers encode", raw_s, "-", raw_rate, 1.0, len(texts)],
            [
                "ragtune ingest (cold)",
                ours_s,
                args.docs / ours_s,
                ours_rate,
                ours_rate / raw_rate,
                report.chunks_embedded,
            ],
            ["ragtune ingest (unchanged)", again_s, args.docs / again_s, "-", "-", again.chunks_embedded],
        ],
    )


if __name__ == "__main__":
    main()
