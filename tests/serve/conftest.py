"""A real `ragtune serve` on loopback over a copy of the HR workspace, with four users."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import run_cli

# Rate limits are proven in test_edge.py; here one key makes hundreds of requests a minute.
SERVE_CONFIG = "\n[serve]\nqueue_size = 1\nmax_upload_mb = 1\nrate_limit_per_minute = 0\n"
SECRETS = ("Salary Bands 2026", "69,000", "104,000", "157,500", "53,820", "salary-bands")


@dataclass
class Server:
    url: str
    workspace: Path
    keys: dict[str, str]
    process: subprocess.Popen[str]

    def client(self, user: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[user]}"} if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)

    def indexed_documents(self) -> int:
        """Every document in the index, restricted ones too: only an admin's /metrics says."""
        metrics = self.client("admin").get("/metrics").text
        line = next(x for x in metrics.splitlines() if x.startswith("ragtune_index_documents "))
        return int(float(line.split()[-1]))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _add_user(ws: Path, name: str, *flags: str) -> str:
    return run_cli("users", "add", name, *flags, cwd=ws).stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def server(hr_cli_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    ws = tmp_path_factory.mktemp("serve") / "ws"
    shutil.copytree(hr_cli_workspace, ws, symlinks=True)
    with (ws / "ragtune.toml").open("a") as config:
        config.write(SERVE_CONFIG)
    keys = {
        "admin": _add_user(ws, "admin", "--admin"),
        "dana": _add_user(ws, "dana", "--groups", "hr"),
        "bob": _add_user(ws, "bob"),
        "eve": _add_user(ws, "eve"),
    }
    run_cli("users", "revoke", "eve", cwd=ws)
    process, url = start_serve(ws)
    yield Server(url, ws, keys, process)
    stop_serve(process)


def start_serve(ws: Path) -> tuple[subprocess.Popen[str], str]:
    """The real `ragtune serve` on a free loopback port, returned once /healthz answers."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ragtune.cli", "serve", "--port", str(port)],
        cwd=ws,
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"ragtune serve exited {process.returncode}:\n{process.stdout.read() if process.stdout else ''}"
            )
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        raise AssertionError("ragtune serve did not come up")
    return process, url


def stop_serve(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
