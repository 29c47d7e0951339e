"""Each backend against a real engine: llama.cpp in-process, and llama.cpp's OpenAI-compatible server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragtune.config import GeneratorConfig
from ragtune.errors import ConfigError, GenerateError
from ragtune.generate import GenerationParams, load_generator, run_generation
from ragtune.generate.llama_cpp import LlamaCppGenerator, resolve_gguf

MESSAGES = [{"role": "user", "content": "Say hello to the new colleague in one sentence."}]


@pytest.fixture(scope="module")
def llama() -> LlamaCppGenerator:
    return LlamaCppGenerator("builtin:smollm2-135m-instruct", context_window=1024)


def test_llama_cpp_generates_and_streams_with_timings(llama: LlamaCppGenerator) -> None:
    pieces: list[str] = []
    result = run_generation(llama, MESSAGES, GenerationParams(max_tokens=24), on_token=pieces.append)  # type: ignore[arg-type]
    assert result.text and "".join(pieces).strip() == result.text
    assert 1 < result.completion_tokens <= 24
    assert result.ttft_ms > 0 and result.generate_ms >= result.ttft_ms and result.tokens_per_s > 0


def test_llama_cpp_is_deterministic_at_temperature_zero(llama: LlamaCppGenerator) -> None:
    params = GenerationParams(max_tokens=16, temperature=0.0, seed=1)
    first = run_generation(llama, MESSAGES, params).text  # type: ignore[arg-type]
    assert run_generation(llama, MESSAGES, params).text == first  # type: ignore[arg-type]


def test_generation_stops_at_the_timeout(llama: LlamaCppGenerator) -> None:
    result = run_generation(llama, MESSAGES, GenerationParams(max_tokens=200, timeout_s=0.05))  # type: ignore[arg-type]
    assert result.timed_out and "timeout" in result.notes[0]


def test_missing_and_corrupt_gguf_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such GGUF file"):
        resolve_gguf(str(tmp_path / "missing.gguf"))
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a model at all")
    with pytest.raises(GenerateError, match="not a GGUF file"):
        LlamaCppGenerator(str(fake))
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(resolve_gguf("builtin:smollm2-135m-instruct").read_bytes()[:100_000])
    with pytest.raises(GenerateError, match="cannot load"):
        LlamaCppGenerator(str(truncated))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    """llama-cpp-python's own OpenAI-compatible server, on loopback, with an API key."""
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(resolve_gguf("builtin:smollm2-135m-instruct")),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "1024",
            "--api_key",
            "test-key",
            "--model_alias",
            "smollm2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("llama_cpp.server did not start")
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_openai_backend_against_a_real_server(llama_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGTUNE_TEST_KEY", "test-key")
    generator = load_generator(
        GeneratorConfig(
            backend="openai", base_url=llama_server, model="smollm2", api_key_env="RAGTUNE_TEST_KEY"
        )
    )
    pieces: list[str] = []
    result = run_generation(generator, MESSAGES, GenerationParams(max_tokens=16), on_token=pieces.append)  # type: ignore[arg-type]
    assert result.text and len(pieces) > 1, "the answer arrives as a stream"


def test_openai_backend_reports_a_wrong_key(llama_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGTUNE_TEST_KEY", "wrong-key")
    generator = load_generator(
        GeneratorConfig(
            backend="openai", base_url=llama_server, model="smollm2", api_key_env="RAGTUNE_TEST_KEY"
        )
    )
    with pytest.raises(GenerateError, match="rejected the API key"):
        run_generation(generator, MESSAGES, GenerationParams(max_tokens=4))  # type: ignore[arg-type]


def test_openai_backend_reports_an_unreachable_endpoint() -> None:
    generator = load_generator(
        GeneratorConfig(
            backend="openai", base_url=f"http://127.0.0.1:{_free_port()}/v1", model="x", timeout_s=5
        )
    )
    with pytest.raises(GenerateError, match="cannot reach"):
        run_generation(generator, MESSAGES, GenerationParams(max_tokens=4))  # type: ignore[arg-type]


def test_transformers_backend_on_the_dequantised_packaged_model() -> None:
    generator = load_generator(GeneratorConfig(backend="transformers", model="builtin:smollm2-135m-instruct"))
    assert generator.count_tokens(MESSAGES) > 5  # type: ignore[arg-type]
    pieces: list[str] = []
    result = run_generation(generator, MESSAGES, GenerationParams(max_tokens=12), on_token=pieces.append)  # type: ignore[arg-type]
    assert result.text and len(pieces) > 1
    assert result.completion_tokens <= 12
