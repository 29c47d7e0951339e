"""The optional rerank step with a real cross-encoder built offline from the packaged MiniLM weights.

No cross-encoder with trained weights ships as a package, so the test model has an untrained scoring
head: the test proves the wiring (candidates rescored, re-sorted, cut to k), not ranking quality.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ragtune.errors import ConfigError
from ragtune.index.embedder import SentenceTransformerEmbedder
from ragtune.index.rerank import CrossEncoderReranker
from ragtune.workspace import Workspace
from tests.conftest import HR_DOCS


@pytest.fixture(scope="module")
def cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("cross-encoder")
    model = CrossEncoder(str(SentenceTransformerEmbedder().path), num_labels=1, local_files_only=True)
    model.save(str(folder))
    return folder


def test_rerank_rescores_and_reorders_candidates(
    make_workspace: Callable[..., Workspace], cross_encoder_dir: Path
) -> None:
    ws = make_workspace(config=f'[rerank]\nmodel = "{cross_encoder_dir}"\ntop_n = 12\n')
    ws.ingest([HR_DOCS / "policies"], show_progress=False)
    hits = ws.search("how many days of annual leave", k=5)
    assert len(hits) == 5
    assert [h.ranks["rerank"] for h in hits] == [1, 2, 3, 4, 5]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    reranker = ws.retriever.reranker
    assert reranker is not None
    direct = reranker.model.predict([("how many days of annual leave", hits[0].chunk.index_text)])
    assert float(direct[0]) == pytest.approx(hits[0].score, abs=1e-4)


def test_rerank_model_must_be_a_local_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a local cross-encoder folder"):
        CrossEncoderReranker(str(tmp_path / "missing"))
