"""Builtin models: slices joined once and checked against a pinned sha256; a real Qwen answer end to end."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from ragtune.errors import ConfigError
from ragtune.generate.builtins import QWEN_05B, list_builtins, resolve_gguf
from tests.conftest import run_cli


def test_models_lists_every_builtin_with_size_and_install_state() -> None:
    rows = {row["name"]: row for row in json.loads(run_cli("models", "--json").stdout)}
    assert rows["builtin:smollm2-135m-instruct"]["installed"] is True
    assert rows["builtin:qwen2.5-coder-0.5b-instruct"]["installed"] is True, "the test extra installs it"
    assert rows["builtin:qwen2.5-coder-1.5b-instruct"]["size_mb"] == 1117
    assert all(row["install"] for row in rows.values())


def test_the_joined_qwen_file_has_the_pinned_hash_and_a_gguf_header() -> None:
    path = resolve_gguf(QWEN_05B.model)
    assert path.stat().st_size == QWEN_05B.size_bytes
    assert path.read_bytes()[:4] == b"GGUF"
    assert resolve_gguf(QWEN_05B.model) == path, "joined once, then reused"


def test_slices_that_do_not_match_the_pinned_hash_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ragtune.generate.builtins.MODEL_CACHE", tmp_path)
    tampered = replace(QWEN_05B, sha256="0" * 64, file_name="tampered.gguf")
    with pytest.raises(ConfigError, match="refusing to load"):
        tampered.path()
    assert list(tmp_path.iterdir()) == [], "nothing half-joined or unverified is left behind"


def test_an_unknown_builtin_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="ragtune models"):
        resolve_gguf("builtin:gpt-5")
    assert {row["name"] for row in list_builtins()} >= {"builtin:qwen2.5-coder-0.5b-instruct"}
