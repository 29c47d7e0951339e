"""Small helpers shared by the bench scripts: timing percentiles, memory, a result table."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

# Questions about examples/hr that the server benches send.
QUERIES = [
    "how many days of annual leave",
    "parental leave for the second parent",
    "expenses for train travel",
    "remote work from abroad",
    "pension contribution",
    "probation period length",
    "Lisbon office address",
    "learning budget per year",
]


def percentiles(samples_s: Sequence[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    values = np.asarray(samples_s) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_parts_mb() -> dict[str, float]:
    """Resident memory split: anonymous (the process's own) and file-backed (mapped page cache,
    which the kernel reclaims under pressure)."""
    parts = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("RssAnon:", "RssFile:")):
                parts[line.split(":")[0]] = int(line.split()[1]) / 1024
    return parts


def current_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="left" if column == columns[0] else "right")
    for row in rows:
        table.add_row(*(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row))
    Console(width=max(160, shutil.get_terminal_size().columns)).print(table)


def cli(ws: Path, *args: str) -> str:
    """Run the real `ragtune` command in a workspace; its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "ragtune.cli", *args], cwd=ws, capture_output=True, text=True, check=True
    )
    return done.stdout


def start_server(ws: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`ragtune serve` on a free loopback port, returned once /healthz answers."""
    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "ragtune.cli", "serve", "--port", str(port)],
        cwd=ws,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"ragtune serve exited with {server.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return server, url
        except httpx.HTTPError:
            time.sleep(0.5)


def stop_server(server: subprocess.Popen[bytes]) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=60)
