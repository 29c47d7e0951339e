"""`[ingest] watch`: a running server keeps its folders in sync; a saved file is searchable with no command."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import init_workspace, workspace_config
from tests.serve.conftest import start_serve, stop_serve


def _hit_sources(url: str, query: str) -> list[str]:
    found = httpx.post(f"{url}/v1/search", json={"query": query, "k": 3}, timeout=30).json()
    return [hit["source"] for hit in found["hits"]]


def _until(check: Callable[[], bool], timeout: float = 60) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, "the change did not reach search in time"
        time.sleep(0.1)
    return time.monotonic() - started


def test_the_server_syncs_its_watched_folder(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "live").mkdir(parents=True)
    (ws / "live" / "parking.md").write_text(
        "# Parking\n\nThe car park opens at 7:00 and badges open the gate.\n"
    )
    init_workspace(ws, workspace_config() + '\n[ingest]\nwatch = ["live"]\n\n[serve]\nanonymous = true\n')
    process, url = start_serve(ws)
    try:
        _until(lambda: "parking.md" in _hit_sources(url, "When does the car park open?"))
        (ws / "live" / "bikes.md").write_text(
            "# Bicycles\n\nBike racks are behind building B, by the showers.\n"
        )
        _until(lambda: _hit_sources(url, "Where can I leave my bike?")[:1] == ["bikes.md"])
        (ws / "live" / "parking.md").unlink()
        _until(lambda: "parking.md" not in _hit_sources(url, "When does the car park open?"))
    finally:
        stop_serve(process)
