"""Optional cross-encoder rerank of fused candidates; off unless `rerank.model` names a local folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError
from ragtune.types import Hit


class CrossEncoderReranker:
    """Rescores (query, chunk) pairs with a sentence-transformers CrossEncoder loaded offline."""

    def __init__(self, model: str, top_n: int = 20, device: str = "cpu") -> None:
        self.top_n = top_n
        path = Path(model).expanduser()
        if not (path / "config.json").exists():
            raise ConfigError(f"rerank.model {model!r} is not a local cross-encoder folder (no config.json)")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import CrossEncoder

        self.model: Any = CrossEncoder(str(path), device=device, local_files_only=True)

    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        if not hits:
            return hits
        scores = self.model.predict([(query, hit.chunk.index_text) for hit in hits], show_progress_bar=False)
        reranked = []
        for rank, (hit, score) in enumerate(
            sorted(zip(hits, scores, strict=True), key=lambda p: -float(p[1])), 1
        ):
            reranked.append(Hit(hit.chunk, float(score), {**hit.ranks, "rerank": rank}))
        return reranked
