"""The setup's one-token smoke generation: real llama.cpp here, and a crash reported as words, not a segfault."""

from __future__ import annotations

import subprocess
import sys

from ragtune.generate.smoke import smoke_test


def test_the_installed_llama_cpp_generates_one_token() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "ragtune.generate.smoke"], capture_output=True, text=True, timeout=180
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("llama.cpp ok:") and "AVX2 = 1" in run.stdout
    assert "AVX512 = 1" not in run.stdout and "AMX_INT8 = 1" not in run.stdout, (
        "the portable build has no AVX-512/AMX"
    )


def test_a_crashing_build_is_reported_with_the_signal() -> None:
    ok, message = smoke_test(code="import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    assert not ok and "SIGSEGV" in message and "cannot run" in message


def test_a_failing_build_is_reported_with_its_error() -> None:
    ok, message = smoke_test(code="raise OSError('libllama.so: undefined symbol ggml_foo')")
    assert not ok and "undefined symbol ggml_foo" in message
