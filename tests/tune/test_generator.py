"""Real LoRA training runs (a few steps of SmolLM2-135M on the CPU) through the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import HR, init_workspace, run_cli

pytestmark = pytest.mark.slow  # real models or a real server: `pytest -m "not slow"` skips these

TUNE_CONFIG = "\n[tune.generator]\nbatch_size = 2\nmax_length = 192\nsave_steps = 2\n"


@pytest.fixture(scope="module")
def tuned_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("tune") / "ws"
    init_workspace(ws)
    with (ws / "ragtune.toml").open("a") as config:
        config.write(TUNE_CONFIG)
    run_cli("ingest", str(HR / "docs" / "policies"), cwd=ws)
    return ws


def test_tune_generator_writes_an_adapter_with_its_manifest(tuned_workspace: Path) -> None:
    report = json.loads(
        run_cli(
            "tune",
            "generator",
            "--data",
            str(HR / "style.jsonl"),
            "--public",
            "--max-steps",
            "3",
            "--name",
            "tone",
            "--json",
            cwd=tuned_workspace,
        ).stdout
    )
    assert {"adapter", "train_loss", "val_loss", "steps", "seconds", "tokens_per_s"} <= set(report)
    assert report["steps"] == 3 and report["tokens_per_s"] > 0 and report["train_loss"] > 0
    assert report["val_loss"] is not None, "a validation share is held out when no --val is given"
    adapter = Path(report["adapter"])
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    manifest = json.loads((adapter.parent / "manifest.json").read_text())
    assert manifest["base_model"] == "builtin:smollm2-135m-instruct"
    assert len(manifest["base_model_sha256"]) == 64 and len(manifest["data_sha256"]) == 64
    assert manifest["examples"]["train"] + manifest["examples"]["val"] == 24
    assert manifest["hyperparameters"]["lora_r"] == 16 and manifest["steps"] == 3
    assert manifest["readers"] == [], "--public: every caller may use it"


def test_finetuned_and_hybrid_strategies_use_the_adapter(tuned_workspace: Path) -> None:
    _ensure_tone_adapter(tuned_workspace)
    question = "How many days of paid annual leave do full-time employees get per year?"
    finetuned = json.loads(
        run_cli("ask", question, "--strategy", "finetuned", "--json", cwd=tuned_workspace).stdout
    )
    assert finetuned["strategy"] == "finetuned" and finetuned["answer"] and finetuned["passages"] == []
    hybrid = json.loads(
        run_cli("ask", question, "--strategy", "hybrid", "--json", cwd=tuned_workspace).stdout
    )
    assert hybrid["strategy"] == "hybrid" and hybrid["passages"]
    assert hybrid["passages"][0]["source"] == "annual-leave.md"


def test_bad_training_data_is_reported_by_line_and_nothing_is_trained(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    init_workspace(ws)
    data = tmp_path / "bad.jsonl"
    data.write_text('{"prompt": "ok", "completion": "fine"}\n{"prompt": "", "completion": "x"}\nnot json\n')
    result = run_cli(
        "tune", "generator", "--data", str(data), "--public", "--name", "bad", cwd=ws, check=False
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{data}:2:" in result.stderr and f"{data}:3: not valid JSON" in result.stderr
    assert not (ws / ".ragtune" / "adapters" / "bad" / "manifest.json").exists()


def test_an_interrupted_run_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    init_workspace(ws)
    with (ws / "ragtune.toml").open("a") as config:
        config.write(TUNE_CONFIG + "keep_checkpoints = 0\n")  # all kept: what bench/tuning.py's curve reads
    args = [
        "tune",
        "generator",
        "--data",
        str(HR / "style.jsonl"),
        "--public",
        "--max-steps",
        "6",
        "--name",
        "long",
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "ragtune.cli", *args],
        cwd=ws,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoint = ws / ".ragtune" / "adapters" / "long" / "checkpoints" / "checkpoint-2"
    deadline = time.monotonic() + 300
    while (
        not (checkpoint / "trainer_state.json").exists()
        and time.monotonic() < deadline
        and process.poll() is None
    ):
        time.sleep(0.2)
    assert process.poll() is None, "training ended before it could be interrupted"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (ws / ".ragtune" / "adapters" / "long" / "manifest.json").exists()

    report = json.loads(run_cli(*args, "--resume", "--json", cwd=ws).stdout)
    assert report["resumed_from_step"] >= 2 and report["steps"] == 6
    kept = sorted(p.name for p in checkpoint.parent.glob("checkpoint-*"))
    assert kept == ["checkpoint-2", "checkpoint-4", "checkpoint-6"]


def _ensure_tone_adapter(ws: Path) -> None:
    if not (ws / ".ragtune" / "adapters" / "tone" / "manifest.json").exists():
        run_cli(
            "tune",
            "generator",
            "--data",
            str(HR / "style.jsonl"),
            "--public",
            "--max-steps",
            "3",
            "--name",
            "tone",
            cwd=ws,
        )


def test_export_merges_the_adapter_and_llama_cpp_serves_the_gguf(tuned_workspace: Path) -> None:
    from safetensors.numpy import load_file

    from ragtune.generate import GenerationParams, run_generation
    from ragtune.generate.llama_cpp import LlamaCppGenerator
    from ragtune.generate.transformers_backend import TransformersGenerator
    from ragtune.models import hf_model_dir

    _ensure_tone_adapter(tuned_workspace)
    report = json.loads(run_cli("export", "tone", "--quant", "f16", "--json", cwd=tuned_workspace).stdout)
    merged = load_file(str(Path(report["safetensors"]) / "model.safetensors"))
    base = load_file(str(hf_model_dir("builtin:smollm2-135m-instruct") / "model.safetensors"))
    name = "model.layers.0.self_attn.q_proj.weight"
    assert merged[name].shape == base[name].shape and abs(merged[name] - base[name]).max() > 0, (
        "LoRA merged in"
    )
    assert report["gguf"].endswith("model-f16.gguf") and report["bytes"]["gguf"] > 100e6

    adapter = tuned_workspace / ".ragtune" / "adapters" / "tone" / "adapter"
    peft = TransformersGenerator("builtin:smollm2-135m-instruct", adapter=str(adapter))
    gguf = LlamaCppGenerator(report["gguf"])
    params = GenerationParams(max_tokens=12)
    for question in ("What is annual leave?", "How do I book a holiday?"):
        messages = [{"role": "user", "content": question}]
        assert run_generation(gguf, messages, params).text == run_generation(peft, messages, params).text

    answer = json.loads(
        run_cli(
            "ask", "How do I book leave?", "--strategy", "finetuned", "--json", cwd=tuned_workspace
        ).stdout
    )
    assert answer["debug"]["generator"] == report["gguf"], "finetuned runs the export through llama.cpp"


def test_a_gguf_file_is_a_base_model_to_tune(
    tuned_workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A team's own GGUF (here: the tone export) is dequantised once into the cache and trained on."""
    from ragtune import models
    from ragtune.config import GeneratorTuneConfig
    from ragtune.tune.generator import train_generator

    _ensure_tone_adapter(tuned_workspace)
    export = tuned_workspace / ".ragtune" / "adapters" / "tone" / "export"
    if not list(export.glob("*.gguf")):
        run_cli("export", "tone", "--quant", "f16", cwd=tuned_workspace)
    gguf = next(export.glob("*.gguf"))
    monkeypatch.setattr(models, "MODEL_CACHE", tmp_path / "cache")
    config = GeneratorTuneConfig(base_model=str(gguf), batch_size=2, max_length=192)
    report = train_generator(HR / "style.jsonl", tmp_path / "run", config, max_steps=1, show_progress=False)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert report.steps == 1 and manifest["base_model"] == str(gguf)
    folder = Path(manifest["base_model_dir"])
    assert folder.parent == tmp_path / "cache" and (folder / "model.safetensors").is_file()
    assert models.hf_model_dir(str(gguf)) == folder, "dequantised once, then reused"


def test_gguf_export_without_the_converter_says_how_to_get_it(tuned_workspace: Path) -> None:
    _ensure_tone_adapter(tuned_workspace)
    env_var = {"RAGTUNE_LLAMA_CPP": str(tuned_workspace / "no-llama-cpp")}
    result = run_cli(
        "export", "tone", "--out", str(tuned_workspace / "out"), cwd=tuned_workspace, check=False, env=env_var
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "convert_hf_to_gguf.py" in result.stderr and "scripts/setup.sh" in result.stderr
    assert not (tuned_workspace / "out").exists(), "it fails before merging anything"
    missing = run_cli("export", "nope", cwd=tuned_workspace, check=False)
    assert missing.returncode == 1 and "no adapter 'nope'; trained adapters: tone" in missing.stderr


def test_freshness_retrain_really_retrains_in_the_scratch_copy(tuned_workspace: Path, tmp_path: Path) -> None:
    """--retrain: synth + LoRA training on the edited copy, timed; the real workspace gets no new adapter."""
    _ensure_tone_adapter(tuned_workspace)
    with (tuned_workspace / "ragtune.toml").open("a") as config:
        config.write("\n[synth]\nn = 8\n\n[compare]\nconsistency_questions = 0\n")
    edit = tmp_path / "edit.json"
    edit.write_text(
        json.dumps(
            {
                "file": "annual-leave.md",
                "old": "25 days of paid annual leave",
                "new": "27 days of paid annual leave",
                "question": "How many days of paid annual leave do full-time employees get per year?",
                "old_answer": "25",
                "new_answer": "27",
            }
        )
    )
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps({"id": "leave", "question": "How many days of annual leave?", "answers": ["25"]}) + "\n"
    )
    args = [
        "compare",
        "--questions",
        str(questions),
        "--strategies",
        "finetuned",
        "--report",
        str(tmp_path / "r"),
    ]
    result = json.loads(
        run_cli(*args, "--freshness", str(edit), "--retrain", "--json", cwd=tuned_workspace).stdout
    )
    probe = result["freshness"]["strategies"]["finetuned"]
    assert probe["update"] == "retrain" and probe["retrain_seconds"] > 0
    assert probe["retrain_source"].startswith("measured now") and "after_retrain" in probe
    adapters = sorted(p.name for p in (tuned_workspace / ".ragtune" / "adapters").iterdir())
    assert "freshness-retrain" not in adapters, "retraining happens in the scratch copy only"
    assert "25 days" in (HR / "docs" / "policies" / "annual-leave.md").read_text()
