"""Data-parallel LoRA training, for real: two gloo ranks on this CPU, launched by `accelerate launch`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import HR, init_workspace, run_cli

pytestmark = pytest.mark.slow  # real models: `pytest -m "not slow"` skips these

TUNE_CONFIG = "\n[tune.generator]\nbatch_size = 2\nmax_length = 192\nval_fraction = 0\n"


def test_two_ranks_train_disjoint_shards_into_the_adapter_that_serves(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    with (ws / "ragtune.toml").open("a") as config:
        config.write(TUNE_CONFIG)
    launch = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",  # torchrun underneath; without a GPU every rank runs on the CPU over gloo
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "ragtune.cli",
    ]
    data = ["--data", str(HR / "style.jsonl"), "--public"]
    tune = ["tune", "generator", *data, "--epochs", "1", "--name", "dp", "--json"]
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    result = subprocess.run(
        [*launch, *tune], cwd=ws, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]

    report = json.loads(result.stdout)  # one JSON document: only rank 0 reports
    examples = len((HR / "style.jsonl").read_text().splitlines())
    assert report["steps"] == examples // (2 * 2), "each step takes a batch of 2 on each of 2 ranks"

    run_dir = ws / ".ragtune" / "adapters" / "dp"
    shards = [json.loads((run_dir / "shards" / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [s["rank"] for s in shards] == [0, 1] and all(s["world_size"] == 2 for s in shards)
    first, second = (set(s["fingerprints"]) for s in shards)
    assert len(first) == len(second) == examples // 2
    assert not first & second, "the ranks trained on different examples"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["world_size"] == 2 and manifest["steps"] == report["steps"]

    answer = json.loads(
        run_cli("ask", "--strategy", "finetuned", "--json", "How many days of annual leave?", cwd=ws).stdout
    )
    assert answer["debug"]["adapter"] == "dp" and answer["answer"].strip()
    assert answer["debug"]["generator"].startswith(manifest["base_model"])
