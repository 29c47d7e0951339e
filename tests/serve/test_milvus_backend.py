"""The HR workspace on `[index] backend = "milvus"`: the real CLI ingests into a real Milvus server, a real
`ragtune serve` answers /v1/search from it with each caller's groups, and an ingest beside the running
server is searchable there without a restart."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx

from tests.conftest import HR_DOCS, init_workspace, run_cli, workspace_config
from tests.serve.conftest import SECRETS, start_serve, stop_serve


def _sources(url: str, key: str, query: str, k: int = 10) -> list[str]:
    found = httpx.post(
        f"{url}/v1/search",
        json={"query": query, "k": k},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    assert found.status_code == 200, found.text
    return [hit["source"] for hit in found.json()["hits"]]


def test_the_milvus_backend_serves_search_with_access_and_live_ingest(
    tmp_path: Path, milvus_uri: str, milvus_collection: str
) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(HR_DOCS, docs)
    ws = init_workspace(
        tmp_path / "ws",
        workspace_config()
        + f'\n[index]\nbackend = "milvus"\nuri = "{milvus_uri}"\ncollection = "{milvus_collection}"\n',
    )
    run_cli("ingest", str(docs), cwd=ws)
    stats = run_cli("status", "--json", cwd=ws).stdout
    assert '"backend": "milvus"' in stats and milvus_collection in stats
    assert not list((ws / ".ragtune").rglob("index.sqlite")), "the index lives in the server, not on disk"
    keys = {
        name: run_cli("users", "add", name, *flags, cwd=ws).stdout.strip().splitlines()[-1]
        for name, flags in (("dana", ("--groups", "hr")), ("bob", ()))
    }
    process, url = start_serve(ws)
    try:
        salary = "salary band midpoint for L3 senior engineer"
        assert "policies/salary-bands.md" in _sources(url, keys["dana"], salary)
        bob = httpx.post(
            f"{url}/v1/search",
            json={"query": salary, "k": 50},
            headers={"Authorization": f"Bearer {keys['bob']}"},
        )
        assert bob.status_code == 200 and bob.json()["hits"]
        assert not any(secret in bob.text for secret in SECRETS), "the ACL is applied before top-k"

        (docs / "policies" / "parking.md").write_text(
            "# Parking\n\nThe staff car park opens at 6:45 and visitors park on level minus two.\n"
        )
        run_cli("ingest", str(docs), cwd=ws)  # a second process writes while the server runs
        deadline = time.monotonic() + 30
        while _sources(url, keys["bob"], "When does the staff car park open?", k=3)[:1] != [
            "policies/parking.md"
        ]:
            assert time.monotonic() < deadline, "the server never saw the other process's ingest"
            time.sleep(0.5)
    finally:
        stop_serve(process)
