"""The same questions through every strategy, measured the same way: ragtune's reason to exist.

run (resumable: one JSON line per strategy x question in DIR/runs.jsonl) -> per-strategy summary
with bootstrap 95% intervals -> freshness probe (optional) -> recommendation -> report files.
The report files are written only when every answer is in, so a partial run never looks complete.
"""

from __future__ import annotations

import hashlib
import json
import resource
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.progress import Progress

from ragtune import __version__
from ragtune.errors import DataError, EvalError, RagtuneError
from ragtune.evaluate.freshness import probe_freshness
from ragtune.evaluate.metrics import (
    answer_sentences,
    bootstrap_ci,
    citation_precision,
    contains_answer,
    exact_match,
    groundedness,
    per_query_retrieval,
    token_f1,
)
from ragtune.evaluate.questions import is_unanswerable, read_questions
from ragtune.generate import Message, params_from, run_generation
from ragtune.progress import progress_bar
from ragtune.strategies import STRATEGIES, get_strategy
from ragtune.types import Answer

if TYPE_CHECKING:
    from ragtune.workspace import Workspace

LATEST = "latest.txt"  # in .ragtune/reports: where the last finished report went

# Per-question values averaged (with intervals) into the summary, and where each one applies.
MEAN_METRICS = (
    "accuracy",
    "exact_match",
    "f1",
    "semantic",
    "refusal_accuracy",
    "groundedness",
    "citation_precision",
    "recall@k",
    "mrr@k",
    "ndcg@10",
    "tone",
)


def parse_strategies(value: str | Sequence[str]) -> list[str]:
    names = [s.strip() for s in (value.split(",") if isinstance(value, str) else value) if s.strip()]
    if not names:
        raise RagtuneError("no strategies given; use e.g. --strategies base,rag,finetuned,hybrid")
    for name in names:
        get_strategy(name)
    return list(dict.fromkeys(names))


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _caller(question: dict[str, Any]) -> list[str]:
    groups = question.get("groups") or []
    return [str(g) for g in groups]


def _style_vectors(ws: Workspace, style: Path | None) -> np.ndarray | None:
    if style is None:
        return None
    from ragtune.tune.data import load_examples

    answers = [example.completion for example in load_examples(style)]
    return ws.embedder.embed(answers)


JUDGE_SYSTEM = (
    "You check facts. Given passages and a statement, reply with one word: yes if the passages support "
    "the statement, no if they do not."
)


def llm_groundedness(ws: Workspace, answer: str, passages: list[str]) -> float | None:
    """Share of answer sentences the generator, as a judge, says the passages support."""
    sentences = answer_sentences(answer)
    if not sentences or not passages:
        return None
    context = "\n\n".join(passages)
    params = replace(params_from(ws.config.generator), max_tokens=3, temperature=0.0)
    supported = 0
    for sentence in sentences:
        messages: list[Message] = [
            {"role": "system", "content": JUDGE_SYSTEM},
            {
                "role": "user",
                "content": f"Passages:\n{context}\n\nStatement: {sentence}\n\nSupported (yes/no)?",
            },
        ]
        verdict = run_generation(ws.generator, messages, params).text.strip().lower()
        supported += verdict.startswith("yes")
    return supported / len(sentences)


def judge_kind(ws: Workspace) -> str:
    judge = ws.config.compare.judge
    if judge == "auto":
        return "llm" if ws.config.generator.backend == "openai" else "local"
    return judge


def score_answer(
    ws: Workspace, question: dict[str, Any], answer: Answer, style: np.ndarray | None
) -> dict[str, float | None]:
    """Every per-question metric of one answer (None where it does not apply)."""
    accepted = [a for a in question.get("answers", []) if a.strip()]
    text = answer.answer
    refused = answer.refused
    scores: dict[str, float | None] = dict.fromkeys(MEAN_METRICS)
    scores["refusal_accuracy"] = float(refused == is_unanswerable(question))
    vector = ws.embedder.embed([text])[0]
    if accepted:
        scores["accuracy"] = contains_answer(text, accepted)
        scores["exact_match"] = exact_match(text, accepted)
        scores["f1"] = token_f1(text, accepted)
        scores["semantic"] = float(np.max(ws.embedder.embed(accepted) @ vector))
        cited = [c.chunk.source for c in answer.citations]
        scores["citation_precision"] = citation_precision(cited, question.get("gold_doc"))
    if answer.passages and not refused:
        support = [c.chunk.text for c in answer.citations] or [h.chunk.text for h in answer.passages]
        if judge_kind(ws) == "llm":
            scores["groundedness"] = llm_groundedness(ws, text, support)
        elif answer.verification is not None:  # the sentence check every answer already carries
            scores["groundedness"] = answer.verification["supported_share"]
        else:
            scores["groundedness"] = groundedness(text, support)
    if style is not None and not refused:
        scores["tone"] = float(np.max(style @ vector))
    return scores


def _retrieval_scores(ws: Workspace, questions: list[dict[str, Any]], k: int) -> dict[str, dict[str, float]]:
    """Doc-level Recall@k / MRR@k / nDCG@10 of the workspace retriever against gold_doc."""
    judged = [q for q in questions if q.get("gold_doc")]
    ranked: dict[str, list[str]] = {}
    for q in judged:
        sources: list[str] = []
        for hit in ws.retriever.retrieve(q["question"], k=k * 3, access=ws.caller(_caller(q))):
            if hit.chunk.source not in sources:
                sources.append(hit.chunk.source)
        ranked[str(q["id"])] = sources[:k]
    qrels = {str(q["id"]): {str(q["gold_doc"]): 1} for q in judged}
    table = per_query_retrieval(qrels, ranked, k) if qrels else {}
    return {
        q: {"recall@k": v[f"recall@{k}"], "mrr@k": v[f"mrr@{k}"], "ndcg@10": v["ndcg@10"]}
        for q, v in table.items()
    }


class CompareRun:
    """One comparison in one folder: answers are appended as they come, so a rerun resumes."""

    def __init__(self, ws: Workspace, questions_path: Path, strategies: list[str], folder: Path) -> None:
        self.ws = ws
        self.questions_path = questions_path
        self.questions = read_questions(questions_path)
        self.strategies = strategies
        self.folder = folder
        self.runs_path = folder / "runs.jsonl"
        self.header = {
            "questions": str(questions_path),
            "questions_sha256": _file_sha(questions_path),
            "strategies": strategies,
        }

    def open(self) -> list[dict[str, Any]]:
        """Records already answered (a resumed run), after checking they belong to this comparison."""
        self.folder.mkdir(parents=True, exist_ok=True)
        header_path = self.folder / "run.json"
        if header_path.is_file():
            stored = json.loads(header_path.read_text())
            if stored["questions_sha256"] != self.header["questions_sha256"]:
                raise EvalError(
                    f"{self.folder} holds a comparison of another question set; choose another --report folder"
                )
        header_path.write_text(json.dumps(self.header, indent=2))
        if not self.runs_path.is_file():
            return []
        done = []
        for line in self.runs_path.read_text().splitlines():
            try:
                done.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut by the interruption: answered again
        return done


def run_compare(
    ws: Workspace,
    questions_path: Path,
    strategies: list[str],
    report_dir: Path,
    *,
    freshness: Path | None = None,
    retrain: bool = False,
    style: Path | None = None,
    show_progress: bool = True,
    console: Console | None = None,
) -> dict[str, Any]:
    """Answer, score, summarise, recommend, write the report; returns the summary (compare --json)."""
    from ragtune.evaluate.advise import recommend
    from ragtune.evaluate.report import write_report

    console = console or Console(stderr=True)
    cfg = ws.config.compare
    started = time.perf_counter()
    run = CompareRun(ws, questions_path, strategies, report_dir)
    notes: list[str] = []
    active: list[str] = []
    adapters: dict[str, dict[str, Any]] = {}
    for name in strategies:
        if STRATEGIES[name].tuned:
            adapter = ws.adapter_dir(name)
            if adapter is None:
                notes.append(
                    f"{name}: skipped, no tuned adapter yet (run `ragtune tune generator` or `ragtune tune raft`)"
                )
                continue
            adapters[name] = json.loads((adapter / "manifest.json").read_text())
        active.append(name)
    if not active:
        raise EvalError("no strategy can run: " + "; ".join(notes))
    if ws.store.stats()["chunks"] == 0 and any(STRATEGIES[s].retrieves for s in active):
        raise EvalError("the index is empty: ingest documents before comparing strategies that retrieve")

    style_vectors = _style_vectors(ws, style)
    records = run.open()
    done = {(r["strategy"], r["id"]) for r in records}
    todo = [(s, q) for s in active for q in run.questions if (s, str(q["id"])) not in done]
    consistency_runs = cfg.consistency_questions * cfg.consistency_repeats
    progress = progress_bar("compare", console, show_progress)
    with progress, run.runs_path.open("a") as sink:
        task = progress.add_task("compare", total=len(todo) + consistency_runs * len(active), info="")
        if records:
            notes.append(f"resumed: {len(records)} answers were already in {run.runs_path}")
        for strategy, question in todo:
            progress.update(task, info=f"{strategy} · {question['id']}")
            before = resource.getrusage(resource.RUSAGE_SELF)
            answer = ws.ask(question["question"], strategy=strategy, groups=_caller(question))
            after = resource.getrusage(resource.RUSAGE_SELF)
            record: dict[str, Any] = {
                "strategy": strategy,
                "id": str(question["id"]),
                "answer": answer.answer,
                "refused": answer.refused,
                "citations": [{"source": c.chunk.source, "text": c.chunk.text} for c in answer.citations],
                "passages": [h.chunk.source for h in answer.passages],
                "timings": answer.timings,
                "model": answer.debug.get("generator", ""),
                "verification": answer.verification,
                "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 4),
                "scores": score_answer(ws, question, answer, style_vectors),
            }
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
            sink.flush()
            records.append(record)
            progress.advance(task)
        consistency = _consistency(ws, run.questions, active, cfg, progress, task)

    retrieval = _retrieval_scores(ws, run.questions, cfg.retrieval_k)
    for record in records:
        if STRATEGIES[record["strategy"]].retrieves and record["id"] in retrieval:
            record["scores"].update(retrieval[record["id"]])
    fresh = None
    if freshness is not None:
        fresh = probe_freshness(ws, freshness, active, adapters, retrain=retrain, console=console)
    summary = summarise(ws, run.questions, records, active, adapters, consistency)
    result: dict[str, Any] = {
        "questions": str(questions_path),
        "n_questions": len(run.questions),
        "strategies": summary,
        "freshness": fresh,
        "skipped": [n for n in strategies if n not in active],
        "notes": notes,
        "seconds": round(time.perf_counter() - started, 1),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "ragtune_version": __version__,
        "workspace": str(ws.root),
        "generator": ws.config.generator.model,
        "groundedness_judge": judge_kind(ws),
        "embedder": ws.embedder.name,
    }
    result["recommendation"] = recommend(result, ws.config.needs)
    result["report"] = str(write_report(result, run.questions, records, report_dir))
    pointer = ws.state_dir / "reports" / LATEST
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.write_text(str(report_dir.resolve()))
    return result


def _consistency(
    ws: Workspace,
    questions: list[dict[str, Any]],
    strategies: list[str],
    cfg: Any,
    progress: Progress,
    task: Any,
) -> dict[str, float | None]:
    """Mean pairwise cosine of answers to the same question under different sampling seeds."""
    chosen = [q for q in questions if not is_unanswerable(q)][: cfg.consistency_questions]
    base = params_from(ws.config.generator)
    found: dict[str, float | None] = {}
    for strategy in strategies:
        if not chosen or cfg.consistency_repeats < 1:
            found[strategy] = None
            continue
        per_question = []
        for question in chosen:
            texts = []
            for seed in range(1, cfg.consistency_repeats + 1):
                params = replace(base, seed=seed, temperature=cfg.consistency_temperature)
                texts.append(
                    ws.ask(
                        question["question"], strategy=strategy, groups=_caller(question), params=params
                    ).answer
                )
                progress.advance(task)
            vectors = ws.embedder.embed(texts)
            pairs = [
                float(vectors[i] @ vectors[j]) for i in range(len(texts)) for j in range(i + 1, len(texts))
            ]
            per_question.append(float(np.mean(pairs)) if pairs else 1.0)
        found[strategy] = round(float(np.mean(per_question)), 4)
    return found


def summarise(
    ws: Workspace,
    questions: list[dict[str, Any]],
    records: list[dict[str, Any]],
    strategies: list[str],
    adapters: dict[str, dict[str, Any]],
    consistency: dict[str, float | None],
) -> dict[str, dict[str, Any]]:
    """Per strategy: each metric's mean and 95% interval, latency, cost, and the counts behind them."""
    cfg = ws.config.compare
    ids = {str(q["id"]) for q in questions}
    unanswerable = {str(q["id"]) for q in questions if is_unanswerable(q)}
    index_seconds = ws.ingest_seconds()
    retriever_seconds = 0.0
    if ws.active():
        manifest = Path(ws.active()["embedder"]) / "manifest.json"
        if manifest.is_file():
            retriever_seconds = float(json.loads(manifest.read_text()).get("seconds", 0.0))
    summary: dict[str, dict[str, Any]] = {}
    for strategy in strategies:
        mine = [r for r in records if r["strategy"] == strategy and r["id"] in ids]
        row: dict[str, Any] = {"n": len(mine)}
        for metric in MEAN_METRICS:
            values = [r["scores"].get(metric) for r in mine if r["scores"].get(metric) is not None]
            row[metric] = round(float(np.mean(values)), 4) if values else None
            low, high = bootstrap_ci(values) if values else (float("nan"), float("nan"))
            row[f"{metric}_ci"] = None if np.isnan(low) else [round(low, 4), round(high, 4)]
            row[f"{metric}_n"] = len(values)
        total_ms = [r["timings"]["retrieve_ms"] + r["timings"]["generate_ms"] for r in mine]
        generated = [r["timings"] for r in mine if r["timings"]["completion_tokens"]]
        row.update(
            {
                "latency_p50_ms": _percentile(total_ms, 50),
                "latency_p95_ms": _percentile(total_ms, 95),
                "latencies_ms": [round(v, 1) for v in total_ms],
                "ttft_p50_ms": _percentile([t["ttft_ms"] for t in generated], 50),
                "retrieve_p50_ms": _percentile([r["timings"]["retrieve_ms"] for r in mine], 50),
                "generate_p50_ms": _percentile([t["generate_ms"] for t in generated], 50),
                "tokens_per_s": round(float(np.mean([t["tokens_per_s"] for t in generated])), 1)
                if generated
                else None,
                "cpu_s_per_query": round(float(np.mean([r["cpu_s"] for r in mine])), 3) if mine else None,
                "unanswerable_refused": _share([r["refused"] for r in mine if r["id"] in unanswerable]),
                "answerable_refused": _share([r["refused"] for r in mine if r["id"] not in unanswerable]),
                "consistency": consistency.get(strategy),
                "training_seconds": float(adapters.get(strategy, {}).get("seconds", 0.0))
                + (retriever_seconds if STRATEGIES[strategy].retrieves else 0.0),
                "index_build_seconds": index_seconds if STRATEGIES[strategy].retrieves else 0.0,
                "adapter": adapters.get(strategy, {}).get("name"),
                "model": next((r.get("model") for r in mine if r.get("model")), None),
                "parts": _parts(strategy, adapters, bool(ws.active())),
            }
        )
        if cfg.cpu_hour_price > 0 and row["cpu_s_per_query"] is not None:
            row["money_per_1000_queries"] = round(
                row["cpu_s_per_query"] * 1000 / 3600 * cfg.cpu_hour_price, 4
            )
            row["money_training"] = round(row["training_seconds"] / 3600 * cfg.cpu_hour_price, 4)
        summary[strategy] = row
    return summary


def _share(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def _percentile(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if len(values) else None


def _parts(strategy: str, adapters: dict[str, dict[str, Any]], tuned_retriever: bool) -> list[str]:
    """What must run in production for this strategy: complexity, made concrete."""
    parts = ["generator model"]
    if STRATEGIES[strategy].retrieves:
        parts += ["index (dense + BM25)", "ingest/sync job"]
        if tuned_retriever:
            parts.append("tuned embedder")
    if strategy in adapters:
        parts.append(f"LoRA adapter ({adapters[strategy].get('kind', 'generator-lora')})")
        parts.append("training pipeline + data")
    return parts


def default_report_dir(ws: Workspace) -> Path:
    return ws.state_dir / "reports" / time.strftime("compare-%Y%m%d-%H%M%S")


def latest_report(ws: Workspace) -> Path | None:
    """The folder of the last finished compare (wherever --report put it), else the newest under .ragtune."""
    pointer = ws.state_dir / "reports" / LATEST
    if pointer.is_file():
        folder = Path(pointer.read_text().strip())
        if (folder / "report.json").is_file():
            return folder
    found = sorted(ws.state_dir.glob("reports/*/report.json"), key=lambda p: p.stat().st_mtime)
    return found[-1].parent if found else None


def check_questions_file(path: Path) -> None:
    """Fail before any model loads: a missing or bad question file is the user's first mistake."""
    if not path.is_file():
        raise DataError(f"{path}: not found")
    read_questions(path)
