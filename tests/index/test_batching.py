"""The server's query batcher: concurrent single queries share encode calls and get their own vectors."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.index.embedder import BatchingEmbedder


class SlowCountingEmbedder:
    """A stand-in that makes batching observable: each call takes 20 ms and is counted."""

    name, dim, path = "fake", 3, Path(".")

    def __init__(self) -> None:
        self.calls: list[int] = []

    def embed(self, texts: Sequence[str], progress: Any = None) -> np.ndarray:
        self.calls.append(len(texts))
        time.sleep(0.02)
        return np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float32)


def test_concurrent_queries_are_encoded_together_and_answered_separately() -> None:
    inner = SlowCountingEmbedder()
    batcher = BatchingEmbedder(inner, wait_s=0.01)  # type: ignore[arg-type]
    texts = [f"query {'a' * n}" for n in range(12)]
    results: dict[str, np.ndarray] = {}

    def ask(text: str) -> None:
        results[text] = batcher.embed([text])

    threads = [threading.Thread(target=ask, args=(t,)) for t in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(inner.calls) == 12 and len(inner.calls) < 12, inner.calls
    for text in texts:
        assert results[text].shape == (1, 3) and results[text][0, 1] == text.count("a")
    assert batcher.embed(["x", "yy"]).shape == (2, 3), "multi-text calls go straight through"
