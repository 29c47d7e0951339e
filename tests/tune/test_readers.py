"""Tuned models carry their readers: what an adapter or embedder learnt from decides who may use it.

Nothing trains here. The refusal comes before any model loads, so an adapter folder whose manifest the
real manifest code wrote proves it; where a job must write that manifest, its trainer is stood in
for. tests/tune/test_generator.py trains for real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ragtune import jobs
from ragtune.access import Access
from ragtune.config import GeneratorTuneConfig
from ragtune.errors import AccessDeniedError, DataError, TuneError
from ragtune.evaluate.questions import read_questions
from ragtune.manifest import READERS, Manifest, readers_of
from ragtune.tune.generator import TuneReport
from ragtune.tune.retriever import Pair, load_pairs, mine_hard_negatives
from ragtune.workspace import Workspace
from tests.conftest import HR, HR_DOCS, init_workspace, run_cli

RESTRICTED_TRAINING = '\n[synth]\ninclude_restricted = true\n\n[tune.raft]\ntarget = "quote"\n'


def policies_workspace(make_workspace: Callable[..., Workspace], config: str = "") -> Workspace:
    """The HR policies, salary-bands.md among them in group hr (its front matter)."""
    ws = make_workspace(config=config)
    ws.ingest([HR_DOCS / "policies"], show_progress=False)
    assert ws.store.groups() == {"hr"}
    return ws


def write_adapter(ws: Workspace, name: str = "tone", **fields: Any) -> Path:
    """An adapter folder as far as access goes: its manifest, written by the real manifest code."""
    folder = ws.layout.adapter(name)
    Manifest(folder, {"name": name, "kind": "generator-lora", "base_model": "none", **fields}).write()
    return folder


def policy_questions(tmp_path: Path) -> Path:
    """HR questions about the policies, sources as the policies folder names them, one of them on salaries."""
    rows = [
        {**r, "gold_doc": r["gold_doc"].removeprefix("policies/")}
        for r in read_questions(HR / "questions.jsonl")
        if (r["gold_doc"] or "").startswith("policies/")
    ]
    salary = [r for r in rows if r["gold_doc"] == "salary-bands.md"][:2]
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows[:4] + salary))
    return path


def stand_in_trainer(data: Path, run_dir: Path, config: GeneratorTuneConfig, **kwargs: Any) -> TuneReport:
    """Writes the manifest train_generator would (what the job passes it), without training."""
    fields = {"name": run_dir.name, "base_model": config.base_model, **kwargs["manifest_extra"]}
    Manifest(run_dir, fields).write()
    return TuneReport(str(run_dir / "adapter"), 0.0, None, 0, 0.0, 0.0)


def test_readers_are_the_union_of_every_group_learnt_from(tmp_path: Path) -> None:
    assert readers_of([["hr"], [], ["finance", "hr"]]) == ["finance", "hr"]
    assert readers_of([]) == [], "public text only: every caller may use the model"
    Manifest(tmp_path / "old", {"name": "old"}).write()
    Manifest(tmp_path / "new", {"name": "new", READERS: ["hr"]}).write()
    assert Manifest.read(tmp_path / "old").readers is None, "trained before readers were recorded"
    assert Manifest.read(tmp_path / "new").readers == ["hr"]


def test_raft_records_the_groups_of_its_data_and_of_every_passage_it_shows(
    make_workspace: Callable[..., Workspace], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ragtune.jobs.tune.train_generator", stand_in_trainer)
    ws = policies_workspace(make_workspace, RESTRICTED_TRAINING)
    questions = policy_questions(tmp_path)
    _, built = jobs.tune_raft(ws, questions, readers=["finance"], name="raft", show_progress=False)
    shown = [e["messages"][0]["content"] for e in built.examples]
    assert any('source="salary-bands.md"' in prompt for prompt in shown), "a passage of group hr is shown"
    manifest = Manifest.read(ws.layout.adapter("raft"))
    assert manifest.readers == ["finance", "hr"], "the data file's groups and the passages' groups"

    with pytest.raises(AccessDeniedError, match="lacks finance") as refused:
        ws.check_model_access("hybrid", Access.of(["hr"]))
    assert refused.value.missing == ["finance"]
    ws.check_model_access("hybrid", Access.of(["hr", "finance"]))
    assert "hybrid" not in ws.strategies(Access.of(["hr"]))
    assert "hybrid" in ws.strategies(Access.of(["hr", "finance"]))


def test_raft_on_public_training_access_learns_from_public_passages_only(
    make_workspace: Callable[..., Workspace], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ragtune.jobs.tune.train_generator", stand_in_trainer)
    ws = policies_workspace(make_workspace, '\n[tune.raft]\ntarget = "quote"\n')
    jobs.tune_raft(ws, policy_questions(tmp_path), readers=[], name="raft", show_progress=False)
    assert Manifest.read(ws.layout.adapter("raft")).readers == []
    ws.check_model_access("hybrid", Access())


def test_tuning_on_a_file_needs_to_be_told_who_may_read_it(make_workspace: Callable[..., Workspace]) -> None:
    ws = make_workspace(warm=False)
    with pytest.raises(TuneError, match=r"readers=\[GROUPS\].*readers=\[\]"):
        jobs.tune_generator(ws, HR / "style.jsonl")
    with pytest.raises(TuneError, match="say who may read it"):
        jobs.tune_raft(ws, HR / "questions.jsonl")
    assert not ws.layout.adapters.exists() or not any(ws.layout.adapters.iterdir()), "nothing started"


def test_retriever_pairs_come_only_from_chunks_training_may_read(
    make_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    ws = policies_workspace(make_workspace)
    chunks = ws.store.all_chunks(None)
    salary = next(c for c in chunks if c.source == "salary-bands.md")
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"question": "What is the L3 midpoint?", "chunk_id": salary.chunk_id}) + "\n")
    by_id = {c.chunk_id: c for c in chunks}
    with pytest.raises(DataError, match="training may not read"):
        load_pairs(data, by_id, 0.2, 0, allowed=ws.training_access())
    (pair,) = load_pairs(data, by_id, 0.2, 0, allowed=ws.everyone())
    assert pair.groups == {"hr"}

    public = [c for c in chunks if not c.groups]
    query = "salary band midpoint senior engineer"
    mined = Pair(query, "a passage of the user's own", "text:own")
    mine_hard_negatives(ws.retriever, [mined], ws.training_access(), public, 0)
    assert mined.negative and "Senior Engineer" not in mined.negative and mined.groups == frozenset()
    restricted = Pair(query, "a passage of the user's own", "text:own")
    mine_hard_negatives(ws.retriever, [restricted], ws.everyone(), chunks, 0)
    assert restricted.groups == {"hr"}, "a negative from salary-bands.md brings its group"


def test_a_model_trained_before_readers_were_recorded_counts_as_learnt_from_every_group(
    make_workspace: Callable[..., Workspace],
) -> None:
    ws = policies_workspace(make_workspace)
    folder = write_adapter(ws)
    with pytest.raises(AccessDeniedError, match=r"lacks hr\. Retrain it, or.*\"readers\": \[\]") as refused:
        ws.ask("What is the L3 midpoint?", strategy="finetuned")
    assert refused.value.missing == ["hr"] and folder not in ws._tuned, "refused before the model loads"
    ws.check_model_access("finetuned", Access.of(["hr"]))
    public = make_workspace("public")
    public.ingest([HR_DOCS / "policies" / "annual-leave.md"], show_progress=False)
    write_adapter(public)
    public.check_model_access("finetuned", Access())  # an index without groups: nothing to withhold


def test_a_tuned_embedders_readers_bound_every_strategy_that_retrieves(
    make_workspace: Callable[..., Workspace],
) -> None:
    ws = policies_workspace(make_workspace)
    embedder = ws.layout.embedder("mini")
    Manifest(embedder, {"name": "mini", "kind": "retriever", READERS: ["hr"]}).write()
    ws.layout.write_active(embedder, "index")  # the same index folder: only the pointer matters here
    with pytest.raises(AccessDeniedError, match=r"rag refused: the tuned embedder .* lacks hr"):
        ws.ask("How many days of annual leave?", strategy="rag")
    assert ws.strategies(Access()) == ["base"] and ws.strategies(Access.of(["hr"])) == ["base", "rag"]
    with pytest.raises(AccessDeniedError, match="lacks hr"):
        ws.search("How many days of annual leave?")  # `ragtune search` too, not only the HTTP route
    assert ws.search("How many days of annual leave?", groups=["hr"])
    with pytest.raises(AccessDeniedError, match="compare: questions asked as a caller with no groups"):
        jobs.compare(ws, HR / "questions.jsonl", ["rag"], report_dir=ws.root / "report", show_progress=False)


def test_the_cli_refuses_a_tuned_model_in_one_line(make_workspace: Callable[..., Workspace]) -> None:
    ws = policies_workspace(make_workspace)
    write_adapter(ws, **{READERS: ["hr"]})
    result = run_cli("ask", "What is the L3 midpoint?", "--strategy", "finetuned", cwd=ws.root, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "finetuned refused: adapter 'tone' learnt from text of groups hr" in result.stderr
    assert "the caller lacks hr" in result.stderr


def run_cli_without_terminal(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real `ragtune`, as a script runs it: stdin is not a terminal, so nothing may be asked."""
    return subprocess.run(
        [sys.executable, "-m", "ragtune.cli", *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},  # as run_cli: the error on one line
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize(
    "command",
    [
        ["tune", "generator", "--data", str(HR / "style.jsonl")],
        ["tune", "raft", "--data", str(HR / "questions.jsonl")],
        ["tune", "retriever", "--data", str(HR / "questions.jsonl")],
        ["tune", "tone", "--data", str(HR / "style.jsonl")],
    ],
    ids=["generator", "raft", "retriever", "tone"],
)
def test_tuning_on_a_data_file_refuses_in_a_script_without_groups_or_public(
    tmp_path: Path, command: list[str]
) -> None:
    ws = init_workspace(tmp_path / "ws")
    result = run_cli_without_terminal(*command, cwd=ws)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "say who may read it: pass --groups G1,G2" in result.stderr and "--public" in result.stderr
    assert not (ws / ".ragtune" / "adapters").exists() and not (ws / ".ragtune" / "embedders").exists()


def test_groups_and_public_are_exclusive_and_describe_a_data_file(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    both = ["tune", "generator", "--data", str(HR / "style.jsonl"), "--groups", "hr", "--public"]
    assert "give --groups or --public, not both" in run_cli_without_terminal(*both, cwd=ws).stderr
    alone = run_cli_without_terminal("tune", "raft", "--groups", "hr", cwd=ws)
    assert alone.returncode == 1 and "--groups / --public describe a --data file" in alone.stderr
