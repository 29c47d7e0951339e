"""Live sync: seconds from a saved edit to a searchable and to a correctly answered fact.

    python bench/watch.py [--edits 5] [--no-answer]

A copy of examples/hr is watched by the real `ragtune ingest --watch` in a subprocess. Each edit
rewrites the annual-leave policy with a new number of days; this process then searches (and asks,
with the default generator) until the new number comes back. Baseline in the same run: the same edit
followed by a plain `ragtune ingest` command, the path without --watch. Targets: save to answer ≤ 2 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import cli, percentiles, print_table

from ragtune.workspace import Workspace

HR = Path(__file__).resolve().parents[1] / "examples" / "hr"
POLICY = "policies/annual-leave.md"
QUESTION = "How many days of paid annual leave do full-time employees get per year?"


def wait_for(found: str, check: Callable[[], str], timeout: float = 60) -> float:
    """Poll `check()` until its text holds `found`; the moment it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found in check():
            return time.perf_counter()
        time.sleep(0.02)
    raise TimeoutError(f"{found!r} did not come back within {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=5)
    parser.add_argument("--no-answer", action="store_true", help="Time search only (no generation).")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        shutil.copytree(HR / "docs", Path(tmp) / "kb")
        kb = Path(tmp) / "kb"
        root.mkdir()
        shutil.copy(HR / "ragtune.toml", root / "ragtune.toml")
        cli(root, "init", str(root))
        cli(root, "ingest", str(kb))
        ws = Workspace.open(root)
        policy = kb / POLICY
        original = policy.read_text()

        def top_text() -> str:
            return ws.search(QUESTION, k=1)[0].chunk.text

        def answer_text() -> str:
            return ws.ask(QUESTION).answer

        answer_text()  # load the generator before timing
        searchable = "--watch: save → searchable"
        answered = "--watch: save → answered (rag)"
        manual = "baseline: save, then `ragtune ingest` → searchable"
        rows: dict[str, list[float]] = {searchable: [], answered: [], manual: []}
        watcher = subprocess.Popen(
            [sys.executable, "-m", "ragtune.cli", "ingest", str(kb), "--watch", "--json"],
            cwd=root,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert watcher.stdout is not None
            json.loads(watcher.stdout.readline())  # the first sync round: the watch is live
            for edit in range(args.edits):
                days = 30 + edit
                saved = time.perf_counter()
                policy.write_text(
                    original.replace("25 days of paid annual leave", f"{days} days of paid annual leave")
                )
                rows[searchable].append(wait_for(f"{days} days", top_text) - saved)
                if not args.no_answer:
                    rows[answered].append(wait_for(str(days), answer_text) - saved)
                print(f"edit {edit + 1}: searchable {rows[searchable][-1]:.2f} s", flush=True)
                time.sleep(1)
        finally:
            watcher.terminate()
            watcher.wait()

        for edit in range(args.edits):  # baseline: the same edit, then a plain ingest command
            days = 40 + edit
            saved = time.perf_counter()
            policy.write_text(
                original.replace("25 days of paid annual leave", f"{days} days of paid annual leave")
            )
            cli(root, "ingest", str(kb))
            rows[manual].append(wait_for(f"{days} days", top_text) - saved)
        ws.close()

    print_table(
        f"save to result, examples/hr, {args.edits} edits (target: answered ≤ 2 s)",
        ["path", "p50 s", "p95 s"],
        [[name, *(v / 1000 for v in percentiles(s))] for name, s in rows.items() if s],
    )


if __name__ == "__main__":
    main()
