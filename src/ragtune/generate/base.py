"""The Generator protocol and the one place where a generation is timed.

Backends only yield text pieces; `run_generation` measures time to first token, generation time and
decode speed identically for every backend, so their figures can be compared.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypedDict


class Message(TypedDict):
    role: str
    content: str


@dataclass(frozen=True)
class GenerationParams:
    max_tokens: int = 256
    temperature: float = 0.0
    seed: int = 0
    stop: tuple[str, ...] = ()
    timeout_s: float = 120.0


class Generator(Protocol):
    """A chat model: local GGUF via llama.cpp, a transformers folder, or an OpenAI-compatible endpoint."""

    name: str
    context_window: int

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Prompt tokens these messages take once the chat template is applied (an estimate is fine)."""
        ...

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        """Yield the reply piece by piece (about one token each)."""
        ...


@dataclass
class Generation:
    text: str
    completion_tokens: int
    ttft_ms: float
    generate_ms: float
    tokens_per_s: float
    timed_out: bool = False
    notes: list[str] = field(default_factory=list)


def run_generation(
    generator: Generator,
    messages: Sequence[Message],
    params: GenerationParams,
    on_token: Callable[[str], None] | None = None,
) -> Generation:
    """Consume a backend's stream, timing it; stops cleanly at params.timeout_s.

    tokens_per_s is the decode speed: pieces after the first, over the time after the first.
    """
    started = time.perf_counter()
    first_at: float | None = None
    pieces: list[str] = []
    timed_out = False
    stream = generator.stream(messages, params)
    try:
        for piece in stream:
            now = time.perf_counter()
            if first_at is None:
                first_at = now
            if piece:
                pieces.append(piece)
                if on_token is not None:
                    on_token(piece)
            if now - started > params.timeout_s:
                timed_out = True
                break
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    ended = time.perf_counter()
    first_at = first_at or ended
    decode_s = ended - first_at
    speed = (len(pieces) - 1) / decode_s if len(pieces) > 1 and decode_s > 0 else 0.0
    notes = [f"generation stopped at the {params.timeout_s:g} s timeout"] if timed_out else []
    return Generation(
        text="".join(pieces).strip(),
        completion_tokens=len(pieces),
        ttft_ms=round((first_at - started) * 1000, 1),
        generate_ms=round((ended - started) * 1000, 1),
        tokens_per_s=round(speed, 1),
        timed_out=timed_out,
        notes=notes,
    )
