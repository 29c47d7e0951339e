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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from rich.console import Console
from rich.progress import Progress

from ragtune.access import Access
from ragtune.config import CompareConfig, NeedsConfig
from ragtune.errors import DataError, EvalError, RagtuneError
from ragtune.evaluate.advise import recommend
from ragtune.evaluate.metrics import (
    answer_sentences,
    bootstrap_ci,
    citation_precision,
    contains_answer,
    exact_match,
    groundedness,
    per_query_retrieval,
    style_marker,
    token_f1,
)
from ragtune.evaluate.questions import is_unanswerable, read_questions
from ragtune.evaluate.report import write_report
from ragtune.generate import GenerationParams, Generator, Message, run_generation
from ragtune.index.embedder import Embedder
from ragtune.index.retriever import Retriever
from ragtune.manifest import write_json_atomic
from ragtune.progress import progress_bar
from ragtune.strategies import STRATEGIES, get_strategy
from ragtune.types import Answer
from ragtune.version import __version__

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
    "style_hit",
)


FreshnessProbe = Callable[[list[str], dict[str, dict[str, Any]]], dict[str, Any]]


class AskFn(Protocol):
    """How compare asks a question: Workspace.ask, or anything answering the same way."""

    def __call__(
        self,
        question: str,
        *,
        strategy: str,
        groups: Sequence[str] | None = None,
        params: GenerationParams | None = None,
    ) -> Answer: ...


@dataclass
class Judge:
    """A generator asked, sentence by sentence, whether the passages support an answer."""

    generator: Generator
    params: GenerationParams


@dataclass
class Costs:
    """What building the parts cost before compare ran, for the training and index columns."""

    index_seconds: float = 0.0
    retriever_seconds: float = 0.0
    tuned_retriever: bool = False


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


JUDGE_SYSTEM = (
    "You check facts. Given passages and a statement, reply with one word: yes if the passages support "
    "the statement, no if they do not."
)


def llm_groundedness(judge: Judge, answer: str, passages: list[str]) -> float | None:
    """Share of answer sentences the judge says the passages support."""
    sentences = answer_sentences(answer)
    if not sentences or not passages:
        return None
    context = "\n\n".join(passages)
    supported = 0
    for sentence in sentences:
        messages: list[Message] = [
            {"role": "system", "content": JUDGE_SYSTEM},
            {
                "role": "user",
                "content": f"Passages:\n{context}\n\nStatement: {sentence}\n\nSupported (yes/no)?",
            },
        ]
        verdict = run_generation(judge.generator, messages, judge.params).text.strip().lower()
        supported += verdict.startswith("yes")
    return supported / len(sentences)


def judge_kind(judge: str, backend: str) -> str:
    """'auto' means an LLM judge only when the generator is an API model (a small local one judges poorly)."""
    if judge == "auto":
        return "llm" if backend == "openai" else "local"
    return judge


def _supported_share(verification: dict[str, Any], marker: str | None) -> float | None:
    """The verified share of claim sentences; the house mark (a sign-off) is not a claim."""
    claims = [s for s in verification["sentences"] if not marker or s["text"].strip() != marker]
    return sum(bool(s["supported"]) for s in claims) / len(claims) if claims else None


def score_answer(
    embedder: Embedder,
    judge: Judge | None,
    question: dict[str, Any],
    answer: Answer,
    style: np.ndarray | None,
    marker: str | None = None,
) -> dict[str, float | None]:
    """Every per-question metric of one answer (None where it does not apply)."""
    accepted = [a for a in question.get("answers", []) if a.strip()]
    text = answer.answer
    refused = answer.refused
    scores: dict[str, float | None] = dict.fromkeys(MEAN_METRICS)
    scores["refusal_accuracy"] = float(refused == is_unanswerable(question))
    vector = embedder.embed([text])[0]
    if accepted:
        scores["accuracy"] = contains_answer(text, accepted)
        scores["exact_match"] = exact_match(text, accepted)
        scores["f1"] = token_f1(text, accepted)
        scores["semantic"] = float(np.max(embedder.embed(accepted) @ vector))
        cited = [c.chunk.source for c in answer.citations]
        scores["citation_precision"] = citation_precision(cited, question.get("gold_doc"))
    if answer.passages and not refused:
        support = [c.chunk.text for c in answer.citations] or [h.chunk.text for h in answer.passages]
        if judge is not None:
            scores["groundedness"] = llm_groundedness(judge, text, support)
        elif answer.verification is not None:  # the sentence check every answer already carries
            scores["groundedness"] = _supported_share(answer.verification, marker)
        else:
            scores["groundedness"] = groundedness(text, support)
    if style is not None and not refused:
        scores["tone"] = float(np.max(style @ vector))
    if marker and not refused:
        scores["style_hit"] = float(marker in text)
    return scores


def _retrieval_scores(
    retriever: Retriever, questions: list[dict[str, Any]], k: int
) -> dict[str, dict[str, float]]:
    """Doc-level Recall@k / MRR@k / nDCG@10 of the workspace retriever against gold_doc."""
    judged = [q for q in questions if q.get("gold_doc")]
    ranked: dict[str, list[str]] = {}
    for q in judged:
        sources: list[str] = []
        for hit in retriever.retrieve(q["question"], k=k * 3, access=Access.of(_caller(q))):
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

    def __init__(
        self,
        questions_path: Path,
        strategies: list[str],
        folder: Path,
        answered_by: dict[str, Any] | None = None,
    ) -> None:
        self.questions_path = questions_path
        self.questions = read_questions(questions_path)
        self.strategies = strategies
        self.folder = folder
        self.runs_path = folder / "runs.jsonl"
        self.header = {
            "questions": str(questions_path),
            "questions_sha256": _file_sha(questions_path),
            "strategies": strategies,
            "answered_by": answered_by or {},
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
            if (
                stored.get("answered_by", {}) != self.header["answered_by"]
            ):  # resumed answers would mix setups
                raise EvalError(
                    f"{self.folder} holds answers of another model or adapter ({stored.get('answered_by')}); "
                    "choose another --report folder"
                )
        write_json_atomic(header_path, self.header)
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
    ask: AskFn,
    retriever: Retriever,
    questions_path: Path,
    strategies: list[str],
    report_dir: Path,
    *,
    cfg: CompareConfig,
    needs: NeedsConfig,
    generation: GenerationParams,
    adapters: dict[str, dict[str, Any]],
    costs: Costs,
    about: dict[str, str],
    judge: Judge | None = None,
    style_answers: Sequence[str] = (),
    skipped: Sequence[str] = (),
    notes: Sequence[str] = (),
    freshness: FreshnessProbe | None = None,
    show_progress: bool = True,
    console: Console | None = None,
) -> dict[str, Any]:
    """Answer, score, summarise, recommend, write the report; returns the summary (compare --json).

    `ask` answers (Workspace.ask); `retriever` scores retrieval and its embedder scores answers;
    `adapters` holds the manifest of each tuned strategy's adapter; `generation` is the parameters
    the consistency runs resample from; `about` names the workspace, generator and embedder for the
    report. `freshness`, when given, edits a fact in a copy of the workspace and times each strategy
    to the new answer (ragtune.jobs.freshness).
    """
    console = console or Console(stderr=True)
    started = time.perf_counter()
    answered_by = {
        "generator": about.get("generator"),
        "adapters": {
            name: [m.get("name"), m.get("data_sha256"), m.get("steps")] for name, m in adapters.items()
        },
    }
    run = CompareRun(questions_path, strategies, report_dir, answered_by)
    notes = list(notes)
    active = list(strategies)
    embedder = retriever.embedder
    style_vectors = embedder.embed(list(style_answers)) if style_answers else None
    marker = (cfg.style_marker or style_marker(style_answers)) if style_answers else None
    if style_answers and not marker:
        notes.append("style hit rate: the style examples share no closing line; set [compare] style_marker")
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
            answer = ask(question["question"], strategy=strategy, groups=_caller(question))
            after = resource.getrusage(resource.RUSAGE_SELF)
            record: dict[str, Any] = {
                "strategy": strategy,
                "id": str(question["id"]),
                "answer": answer.answer,
                "refused": answer.refused,
                "citations": [c.to_dict() for c in answer.citations],
                "passages": [h.chunk.source for h in answer.passages],
                "timings": answer.timings,
                "model": answer.debug.get("generator", ""),
                "verification": answer.verification,
                "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 4),
                "scores": score_answer(embedder, judge, question, answer, style_vectors, marker),
            }
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
            sink.flush()
            records.append(record)
            progress.advance(task)
        consistency = _consistency(ask, embedder, generation, run.questions, active, cfg, progress, task)

    retrieval = _retrieval_scores(retriever, run.questions, cfg.retrieval_k)
    for record in records:
        if STRATEGIES[record["strategy"]].retrieves and record["id"] in retrieval:
            record["scores"].update(retrieval[record["id"]])
    fresh = freshness(active, adapters) if freshness is not None else None
    summary = summarise(run.questions, records, active, adapters, consistency, cfg, costs)
    mismatch = name_base_models(summary, adapters, about.get("generator"))
    notes.extend([mismatch] if mismatch else [])
    result: dict[str, Any] = {
        "questions": str(questions_path),
        "n_questions": len(run.questions),
        "strategies": summary,
        "freshness": fresh,
        "skipped": list(skipped),
        "notes": notes,
        "seconds": round(time.perf_counter() - started, 1),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "ragtune_version": __version__,
        **about,
        "groundedness_judge": "llm" if judge is not None else "local",
        "embedder": embedder.name,
    }
    result["recommendation"] = recommend(result, needs)
    result["report"] = str(write_report(result, run.questions, records, report_dir))
    return result


def _consistency(
    ask: AskFn,
    embedder: Embedder,
    base: GenerationParams,
    questions: list[dict[str, Any]],
    strategies: list[str],
    cfg: CompareConfig,
    progress: Progress,
    task: Any,
) -> dict[str, float | None]:
    """Mean pairwise cosine of answers to the same question under different sampling seeds."""
    chosen = [q for q in questions if not is_unanswerable(q)][: cfg.consistency_questions]
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
                    ask(
                        question["question"], strategy=strategy, groups=_caller(question), params=params
                    ).answer
                )
                progress.advance(task)
            vectors = embedder.embed(texts)
            pairs = [
                float(vectors[i] @ vectors[j]) for i in range(len(texts)) for j in range(i + 1, len(texts))
            ]
            per_question.append(float(np.mean(pairs)) if pairs else 1.0)
        found[strategy] = round(float(np.mean(per_question)), 4)
    return found


def name_base_models(
    summary: dict[str, dict[str, Any]], adapters: dict[str, dict[str, Any]], generator: str | None
) -> str | None:
    """Set each row's base_model (its adapter's base, else the model rag answers with); a note when
    they differ, since a tuned 135M model against rag on 0.5B says nothing about tuning."""
    for name, row in summary.items():
        row["base_model"] = adapters.get(name, {}).get("base_model") or generator
    if len({row["base_model"] for row in summary.values()}) <= 1:
        return None
    bases = ", ".join(f"{name}: {row['base_model']}" for name, row in summary.items())
    return f"not like with like: the strategies ran on different base models ({bases})"


def summarise(
    questions: list[dict[str, Any]],
    records: list[dict[str, Any]],
    strategies: list[str],
    adapters: dict[str, dict[str, Any]],
    consistency: dict[str, float | None],
    cfg: CompareConfig,
    costs: Costs,
) -> dict[str, dict[str, Any]]:
    """Per strategy: each metric's mean and 95% interval, latency, cost, and the counts behind them."""
    ids = {str(q["id"]) for q in questions}
    unanswerable = {str(q["id"]) for q in questions if is_unanswerable(q)}
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
                + (costs.retriever_seconds if STRATEGIES[strategy].retrieves else 0.0),
                "index_build_seconds": costs.index_seconds if STRATEGIES[strategy].retrieves else 0.0,
                "adapter": adapters.get(strategy, {}).get("name"),
                "model": next((r.get("model") for r in mine if r.get("model")), None),
                "parts": _parts(strategy, adapters, costs.tuned_retriever),
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


def check_questions_file(path: Path) -> None:
    """Fail before any model loads: a missing or bad question file is the user's first mistake."""
    if not path.is_file():
        raise DataError(f"{path}: not found")
    read_questions(path)
