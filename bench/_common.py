"""Small helpers shared by the bench scripts: timing percentiles, memory, a result table."""

from __future__ import annotations

import resource
from collections.abc import Sequence

import numpy as np
from rich.console import Console
from rich.table import Table


def percentiles(samples_s: Sequence[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    values = np.asarray(samples_s) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
    Console().print(table)
