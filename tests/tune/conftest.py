"""A workspace over the HR policies (one of them restricted to group hr) with real synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import HR, init_workspace, run_cli

TUNE_CONFIG = """
[tune.generator]
batch_size = 2
max_length = 192
save_steps = 2
learning_rate = 2e-3

[synth]
n = 16
"""


@pytest.fixture(scope="module")
def synth_workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """(workspace, synth --json report): real SmolLM2 questions from the real index."""
    ws = tmp_path_factory.mktemp("synth") / "ws"
    init_workspace(ws)
    with (ws / "ragtune.toml").open("a") as config:
        config.write(TUNE_CONFIG)
    run_cli("ingest", str(HR / "docs" / "policies"), cwd=ws)
    report = json.loads(run_cli("synth", "--json", cwd=ws).stdout)
    return ws, report


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
