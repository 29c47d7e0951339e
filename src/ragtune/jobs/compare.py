"""compare and advise on a workspace: thin orchestration over ragtune.evaluate."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ragtune.access import Access
from ragtune.config import NeedsConfig
from ragtune.errors import AccessDeniedError, ConfigError, EvalError, RagtuneError
from ragtune.evaluate.advise import recommend
from ragtune.evaluate.compare import (
    Costs,
    Judge,
    check_questions_file,
    judge_kind,
    parse_strategies,
    run_compare,
)
from ragtune.evaluate.questions import read_questions
from ragtune.generate import params_from
from ragtune.jobs.freshness import probe_freshness
from ragtune.manifest import Manifest
from ragtune.strategies import STRATEGIES
from ragtune.tune.data import load_examples
from ragtune.workspace import Workspace


def compare(
    ws: Workspace,
    questions: Path,
    strategies: Sequence[str] = ("base", "rag", "finetuned", "hybrid"),
    *,
    report_dir: Path | None = None,
    freshness: Path | None = None,
    retrain: bool = False,
    style: Path | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """The same questions through each strategy, a report and a recommendation (see evaluate.compare)."""
    check_questions_file(questions)
    chosen = parse_strategies(list(strategies))
    if style is None and ws.config.compare.style:
        style = ws.root / ws.config.compare.style
    notes: list[str] = []
    adapters: dict[str, dict[str, Any]] = {}
    active = []
    for name in chosen:
        if STRATEGIES[name].tuned:
            adapter = ws.adapter_dir(name)
            if adapter is None:
                notes.append(
                    f"{name}: skipped, no tuned adapter yet (run `ragtune tune generator` or `ragtune tune raft`)"
                )
                continue
            adapters[name] = Manifest.read(adapter).data
        active.append(name)
    if not active:
        raise EvalError("no strategy can run: " + "; ".join(notes))
    _check_callers(ws, questions, active)
    if ws.store.stats()["chunks"] == 0 and any(STRATEGIES[s].retrieves for s in active):
        raise EvalError("the index is empty: ingest documents before comparing strategies that retrieve")
    probe = None
    if freshness is not None:
        edit = freshness

        def probe(ran: list[str], manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
            return probe_freshness(ws, edit, ran, manifests, retrain=retrain, console=ws.console)

    folder = report_dir or ws.layout.new_report_dir()
    result = run_compare(
        ws.ask,
        ws.retriever,
        questions,
        active,
        folder,
        cfg=ws.config.compare,
        needs=ws.config.needs,
        generation=params_from(ws.config.generator),
        adapters=adapters,
        costs=_costs(ws),
        about={"workspace": str(ws.root), "generator": ws.config.generator.model},
        judge=_judge(ws),
        style_answers=[example.completion for example in load_examples(style)] if style else (),
        skipped=[name for name in chosen if name not in active],
        notes=notes,
        freshness=probe,
        show_progress=show_progress,
        console=ws.console,
    )
    ws.layout.mark_latest_report(folder)
    return result


def _check_callers(ws: Workspace, questions: Path, strategies: list[str]) -> None:
    """Every question's caller (its "groups", else the public caller) must be allowed every model
    compared, checked before the first answer rather than half way through the run."""
    rows = read_questions(questions)
    callers = sorted({tuple(sorted(str(g) for g in row.get("groups") or [])) for row in rows})
    for strategy in strategies:
        for groups in callers:
            try:
                ws.check_model_access(strategy, Access.of(groups))
            except AccessDeniedError as exc:
                who = f"groups {', '.join(groups)}" if groups else "no groups (public)"
                raise AccessDeniedError(
                    f"compare: questions asked as a caller with {who}: {exc}. Give those questions the "
                    f'"groups" of a caller who may use it, or leave {strategy} out of --strategies',
                    exc.missing,
                ) from exc


def _costs(ws: Workspace) -> Costs:
    """Seconds already spent on the index and on a tuned embedder (from its manifest)."""
    active = ws.active()
    embedder = Path(active["embedder"]) if active else None
    retriever_seconds = 0.0
    if embedder is not None and Manifest.exists(embedder):
        retriever_seconds = float(Manifest.read(embedder).get("seconds", 0.0))
    return Costs(ws.ingest_seconds(), retriever_seconds, tuned_retriever=bool(active))


def _judge(ws: Workspace) -> Judge | None:
    if judge_kind(ws.config.compare.judge, ws.config.generator.backend) != "llm":
        return None
    params = replace(params_from(ws.config.generator), max_tokens=3, temperature=0.0)
    return Judge(ws.generator, params)


def advise(ws: Workspace, needs: dict[str, Any], report: Path | None = None) -> tuple[dict[str, Any], Path]:
    """A recommendation from needs and a compare report (default: the latest one)."""
    try:
        checked = NeedsConfig.model_validate(needs)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"needs: {problems}") from exc
    folder = report or ws.layout.latest_report()
    if folder is None or not (folder / "report.json").is_file():
        raise RagtuneError(
            "no finished compare report to advise from: run `ragtune compare --questions Q.jsonl` first"
            + (f" ({folder} has no report.json)" if folder else "")
        )
    return recommend(json.loads((folder / "report.json").read_text()), checked), folder
