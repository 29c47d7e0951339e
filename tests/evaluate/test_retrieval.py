from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ragtune.errors import EvalError
from ragtune.evaluate.metrics import score_run
from ragtune.evaluate.retrieval import load_beir
from tests.conftest import HR, run_cli


def test_metrics_match_hand_computed_values() -> None:
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1, "d3": 1}}
    ranked = {"q1": ["x", "d1"], "q2": ["d3", "y", "d2"]}
    scores = score_run(qrels, ranked)
    ndcg_q1 = (1 / math.log2(3)) / 1.0
    ndcg_q2 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert scores["ndcg@10"] == pytest.approx((ndcg_q1 + ndcg_q2) / 2, abs=1e-4)
    assert scores["mrr@10"] == pytest.approx((0.5 + 1.0) / 2, abs=1e-4)
    assert scores["recall@10"] == 1.0


def test_a_query_without_results_counts_as_zero() -> None:
    scores = score_run({"q1": {"d1": 1}, "q2": {"d2": 1}}, {"q1": ["d1"], "q2": []})
    assert scores["recall@10"] == 0.5 and scores["mrr@10"] == 0.5


def test_malformed_beir_folders_are_reported_with_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(EvalError, match=r"corpus\.jsonl: not found"):
        load_beir(tmp_path)
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "text": "x"}\n{broken\n')
    with pytest.raises(EvalError, match=r"corpus.jsonl:2: not valid JSON"):
        load_beir(tmp_path)


def test_eval_retrieval_on_the_hr_beir_copy(tmp_path: Path) -> None:
    result = json.loads(run_cli("eval", "retrieval", str(HR / "beir"), "--json", cwd=tmp_path).stdout)
    assert result["docs"] == 34 and result["queries"] > 60
    assert set(result["results"]) == {"bm25", "dense", "hybrid"}
    for mode, metrics in result["results"].items():
        assert set(metrics) == {"ndcg@10", "recall@10", "recall@100", "mrr@10"}
        assert metrics["ndcg@10"] > 0.7, mode
    hybrid = result["results"]["hybrid"]["ndcg@10"]
    assert hybrid >= result["results"]["dense"]["ndcg@10"]
