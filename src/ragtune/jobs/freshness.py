"""The freshness probe: edit a fact in a scratch copy of the workspace, then time each strategy to the new answer.

The user's knowledge base and index are never touched: the edit is applied to a copy of the
document, synced through the normal ingest path, and every strategy is asked again. Strategies that
keep facts in weights cannot see the edit; for them the report gives the measured training time of
their adapter, or, with --retrain, actually regenerates training data and retrains, timing it.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

from ragtune.errors import EvalError
from ragtune.evaluate.freshness import read_edit
from ragtune.evaluate.metrics import contains_answer
from ragtune.ingest.sources import FileSource
from ragtune.jobs.tune import synth, tune_generator
from ragtune.layout import ACTIVE_FILE, Layout
from ragtune.strategies import STRATEGIES
from ragtune.workspace import Workspace


def _scratch_copy(ws: Workspace, target: Path) -> None:
    """ragtune.toml and the index state copied; trained adapters and embedders linked one by one."""
    target.mkdir(parents=True)
    copy = Layout(target)
    shutil.copy2(ws.layout.config_file, copy.config_file)
    copy.state.mkdir()
    ws.store.copy_to(copy.index(ws.layout.active_index().name))
    for name in (ws.layout.embedding_cache.name, ACTIVE_FILE):
        if (ws.layout.state / name).is_file():
            shutil.copy2(ws.layout.state / name, copy.state / name)
    for models in (ws.layout.adapters, ws.layout.embedders):  # linked: anything trained here stays here
        if models.is_dir():
            (copy.state / models.name).mkdir()
            for model in models.iterdir():
                if model.is_dir():
                    (copy.state / models.name / model.name).symlink_to(model.resolve())


@contextmanager
def _scratch(ws: Workspace, temp: Path) -> Iterator[Workspace]:
    """A scratch copy of the workspace, its index dropped afterwards (a Milvus copy outlives folders)."""
    _scratch_copy(ws, temp / "ws")
    scratch = Workspace.open(temp / "ws")
    try:
        yield scratch
    finally:
        scratch.store.drop()
        scratch.close()


def probe_freshness(
    ws: Workspace,
    edit_path: Path,
    strategies: list[str],
    adapters: dict[str, dict[str, Any]],
    *,
    retrain: bool = False,
    console: Console | None = None,
) -> dict[str, Any]:
    console = console or Console(stderr=True)
    edit = read_edit(edit_path)
    documents = [
        d
        for d in ws.store.documents(ws.everyone())
        if d.source == edit["file"] and not d.origin.startswith("sql:") and not ws.is_upload(d)
    ]
    if not documents:
        raise EvalError(f"{edit_path}: file {edit['file']!r} is not an ingested file in this workspace")
    if len(documents) > 1:
        folders = ", ".join(d.origin for d in documents)
        raise EvalError(f"{edit_path}: {edit['file']!r} names a file in several sources ({folders}); say which")
    document = documents[0]
    original = ws.root / document.origin / document.source
    if not original.is_file():
        raise EvalError(f"{edit_path}: {original} is gone; re-ingest before probing freshness")
    text = original.read_text(encoding="utf-8")
    if edit["old"] not in text:
        raise EvalError(f"{edit_path}: the old text {edit['old']!r} is not in {original}")

    with (
        tempfile.TemporaryDirectory(prefix="ragtune-freshness-") as temp,
        _scratch(ws, Path(temp)) as scratch,
    ):
        caller = document.groups
        before = {
            s: scratch.ask(edit["question"], strategy=s, groups=caller) for s in strategies
        }  # also warms up
        kb = Path(temp) / "kb"
        edited = kb / document.source
        edited.parent.mkdir(parents=True, exist_ok=True)
        edited.write_text(text.replace(edit["old"], edit["new"]), encoding="utf-8")
        started = time.perf_counter()
        source = FileSource(
            kb,
            origin=document.origin,
            groups_for=lambda _: document.groups,
            meta=document.meta,
            exclude=scratch.config.ingest.exclude,
            rows_per_chunk=scratch.config.chunking.rows_per_chunk,
        )
        report = scratch.sync(source, prune=False, show_progress=False)
        sync_seconds = time.perf_counter() - started
        if not report.changed:
            raise EvalError(f"{edit_path}: the edit did not change the indexed document")
        results: dict[str, Any] = {}
        for strategy in strategies:
            asked = time.perf_counter()
            after = scratch.ask(edit["question"], strategy=strategy, groups=caller)
            answer_seconds = time.perf_counter() - asked
            answers_new = bool(contains_answer(after.answer, [edit["new_answer"]]))
            row: dict[str, Any] = {
                "before": before[strategy].answer,
                "after": after.answer,
                "answered_old_before": bool(contains_answer(before[strategy].answer, [edit["old_answer"]])),
                "answers_new": answers_new,
                "update": "re-ingest" if STRATEGIES[strategy].retrieves else "retrain",
                "seconds_to_new": round(sync_seconds + answer_seconds, 2) if answers_new else None,
                "retrain_seconds": None,
            }
            if not STRATEGIES[strategy].retrieves:
                if strategy in adapters:
                    row["retrain_seconds"] = adapters[strategy].get("seconds")
                    row["retrain_source"] = "measured training time of the adapter (manifest)"
                else:
                    row["retrain_source"] = "the base model cannot be updated here"
            results[strategy] = row
        if retrain and "finetuned" in adapters:
            results["finetuned"].update(_retrain(scratch, edit, caller, console))
    return {"edit": edit, "sync_seconds": round(sync_seconds, 2), "strategies": results}


def _retrain(scratch: Workspace, edit: dict[str, str], caller: list[str], console: Console) -> dict[str, Any]:
    """The fine-tuning way to learn a changed fact: new synthetic data from the edited documents, a new run."""
    started = time.perf_counter()
    synth_report = synth(scratch, out=scratch.layout.synth_questions, show_progress=False)
    report = tune_generator(
        scratch,
        Path(synth_report.train_chat),
        readers=synth_report.readers,  # the data came from these chunks alone
        name="freshness-retrain",
        show_progress=False,
    )
    seconds = time.perf_counter() - started
    scratch.config.tune.adapter = "freshness-retrain"
    after = scratch.ask(edit["question"], strategy="finetuned", groups=caller)
    answers_new = bool(contains_answer(after.answer, [edit["new_answer"]]))
    console.print(f"[dim]retrained in {seconds:.0f}s ({report.steps} steps)[/dim]")
    return {
        "after_retrain": after.answer,
        "answers_new_after_retrain": answers_new,
        "retrain_seconds": round(seconds, 1),
        "retrain_source": "measured now: synth + tune generator on the edited documents",
        "seconds_to_new": round(seconds, 1) if answers_new else None,
    }
