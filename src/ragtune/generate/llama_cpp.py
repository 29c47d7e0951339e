"""llama.cpp through llama-cpp-python: the default backend, on a GGUF file (shipped or your own)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

from ragtune.errors import ContextLengthError, GenerateError
from ragtune.generate.base import GenerationParams, Message
from ragtune.generate.builtins import BUILTINS, MODEL_CACHE, resolve_gguf

BUILTIN_GGUF = BUILTINS  # the names `generator.model` accepts as builtin:...
__all__ = ["BUILTIN_GGUF", "MODEL_CACHE", "LlamaCppGenerator", "resolve_gguf"]


class LlamaCppGenerator:
    def __init__(
        self,
        model: str,
        *,
        context_window: int = 2048,
        threads: int = 0,
        lora_path: str | None = None,
    ) -> None:
        self.path = resolve_gguf(model)
        self.name = model
        self.context_window = context_window
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise GenerateError(
                "the llama_cpp backend needs llama-cpp-python (./scripts/setup.sh installs it)"
            ) from exc
        with open(self.path, "rb") as handle:
            if handle.read(4) != b"GGUF":
                raise GenerateError(f"{self.path}: not a GGUF file (bad magic bytes); check generator.model")
        kwargs: dict[str, Any] = {
            "model_path": str(self.path),
            "n_ctx": context_window,
            "n_threads": threads or max(1, os.cpu_count() or 1),
            "verbose": False,
        }
        if lora_path:
            kwargs["lora_path"] = lora_path
        try:
            with _quiet():
                self.llama = Llama(**kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            raise GenerateError(f"cannot load {self.path}: {exc} (corrupt or unsupported GGUF?)") from exc

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Content tokens plus a margin per message for the chat template's role markers."""
        return sum(len(self.llama.tokenize(m["content"].encode(), add_bos=False)) + 8 for m in messages) + 8

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        chunks = self.llama.create_chat_completion(
            messages=list(messages),  # type: ignore[arg-type]
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            seed=params.seed,
            stop=list(params.stop) or None,
            stream=True,
        )
        try:
            for chunk in chunks:
                delta: Any = chunk["choices"][0]["delta"]  # type: ignore[index]
                content = delta.get("content")
                if content:
                    yield str(content)
        except ValueError as exc:  # llama-cpp-python: "Requested tokens (N) exceed context window of M"
            if "context window" not in str(exc):
                raise
            raise ContextLengthError(f"the prompt does not fit {self.name}'s context: {exc}") from exc


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """llama.cpp prints model metadata to stderr on load even with verbose=False; hide it."""
    with open(os.devnull, "w") as devnull:
        saved = os.dup(2)
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
