"""Retriever tuning: a real MiniLM fine-tune on synthetic pairs, then an atomic switch of the index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragtune.errors import DataError, RagtuneError
from ragtune.tune.retriever import load_pairs
from ragtune.workspace import Workspace
from tests.conftest import run_cli


def test_pairs_files_report_bad_lines(tmp_path: Path) -> None:
    bad = tmp_path / "pairs.jsonl"
    bad.write_text('{"query": "leave?", "positive": "25 days"}\n{"query": "no positive"}\n')
    with pytest.raises(DataError, match=r"pairs.jsonl:2: expected"):
        load_pairs(bad, {}, 0.2, 0)
    missing = tmp_path / "q.jsonl"
    missing.write_text('{"question": "leave?", "chunk_id": "gone"}\n')
    with pytest.raises(DataError, match=r"q.jsonl:1: chunk 'gone' is not in the index"):
        load_pairs(missing, {}, 0.2, 0)


def test_plain_pairs_get_a_seeded_validation_share(tmp_path: Path) -> None:
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"query": f"q{i}", "positive": f"p{i}"}) + "\n" for i in range(10)))
    pairs = load_pairs(data, {}, 0.2, 0)
    assert sum(p.split == "val" for p in pairs) == 2
    assert [p.split for p in pairs] == [p.split for p in load_pairs(data, {}, 0.2, 0)]


@pytest.mark.slow  # a real model
def test_tune_retriever_measures_and_switches_the_index(synth_workspace: tuple[Path, dict]) -> None:
    ws, synth = synth_workspace
    before = json.loads(
        run_cli("search", "paid annual leave entitlement", "--mode", "dense", "--json", cwd=ws).stdout
    )["hits"]
    report = json.loads(
        run_cli(
            "tune",
            "retriever",
            "--data",
            synth["out"],
            "--public",
            "--epochs",
            "3",
            "--name",
            "mini",
            "--json",
            cwd=ws,
        ).stdout
    )
    assert set(report["before"]) == set(report["after"]) == {"ndcg@10", "recall@10", "mrr@10"}
    assert all(0 <= v <= 1 for v in [*report["before"].values(), *report["after"].values()])
    assert report["switched"] and report["reembedded_chunks"] > 0
    active = json.loads((ws / ".ragtune" / "active.json").read_text())
    assert active["index"] == "index-mini" and Path(active["embedder"]).name == "mini"
    assert (ws / ".ragtune" / "index" / "index.sqlite").is_file(), "the previous index is kept"
    status = json.loads(run_cli("status", "--json", cwd=ws).stdout)
    assert status["model"].endswith("mini") and status["chunks"] > 0
    after = json.loads(
        run_cli("search", "paid annual leave entitlement", "--mode", "dense", "--json", cwd=ws).stdout
    )["hits"]
    assert after[0]["source"] == before[0]["source"] == "annual-leave.md"
    assert after[0]["score"] != before[0]["score"]
    manifest = json.loads((ws / ".ragtune" / "embedders" / "mini" / "manifest.json").read_text())
    assert manifest["kind"] == "retriever" and manifest["metrics"]["after"] == report["after"]


@pytest.mark.slow  # a real model
def test_a_failed_re_embed_leaves_the_old_index_serving(
    synth_workspace: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws_root, _ = synth_workspace
    ws = Workspace.open(ws_root)
    active_before = ws.active()
    model_before = ws.store.stats()["model"]

    def broken_embed(*args: object, **kwargs: object) -> object:
        raise RagtuneError("disk full (simulated)")

    monkeypatch.setattr("ragtune.index.local_store.embed_with_cache", broken_embed)
    with pytest.raises(RagtuneError, match="disk full"):
        ws.switch_embedder(ws.embedder, "broken")
    assert ws.active() == active_before
    assert not (ws_root / ".ragtune" / "index-broken").exists()
    reopened = Workspace.open(ws_root)
    assert reopened.store.stats()["model"] == model_before
    assert reopened.search("annual leave", k=1)[0].chunk.source == "annual-leave.md"
