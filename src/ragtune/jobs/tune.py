"""Tuning jobs on a workspace: synthesise data, train, switch, export. Thin: the work is in ragtune.tune."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from ragtune.config import GeneratorTuneConfig, update_config
from ragtune.errors import ConfigError, DataError, TuneError
from ragtune.evaluate.metrics import style_marker
from ragtune.evaluate.questions import read_questions
from ragtune.generate import params_from
from ragtune.generate.prompts import RAG_PROMPT_LAYOUT
from ragtune.groups import check_groups
from ragtune.manifest import READERS, Manifest, readers_of, write_text_atomic
from ragtune.tune.data import load_examples
from ragtune.tune.distil import Distilled
from ragtune.tune.export import ExportReport, export_adapter
from ragtune.tune.fusion import FusionFit, fit_fusion
from ragtune.tune.generator import TuneReport, train_generator
from ragtune.tune.raft import RaftBuild, build_raft, in_rag_prompt, with_own_answers
from ragtune.tune.retriever import RetrieverTuneReport, train_retriever
from ragtune.tune.synth import SynthReport, synthesize
from ragtune.tune.tone import distil_in_voice
from ragtune.workspace import Workspace


def synth(
    ws: Workspace, *, n: int | None = None, out: Path | None = None, show_progress: bool = True
) -> SynthReport:
    """Question-answer pairs from the indexed chunks (see ragtune.tune.synth)."""
    return synthesize(
        ws.retriever,
        ws.generator,
        ws.config.synth,
        out=out or ws.layout.synth_questions,
        persona=ws.config.answer.persona,
        n=n,
        show_progress=show_progress,
        console=ws.console,
    )


def data_readers(data: Path, readers: Sequence[str] | None) -> list[str]:
    """Who may read a user-given training file: the caller must say (readers=[] for public text).

    A tuned model answers whoever may use it, so what it learnt from a file is readable by them.
    """
    if readers is None:
        raise TuneError(
            f"{data}: say who may read it: readers=[GROUPS] (the CLI's --groups G1,G2), or readers=[] "
            "(--public) for public text; the model will answer only callers holding every one of them"
        )
    return check_groups(readers)


def synth_readers(ws: Workspace, questions: Path) -> list[str]:
    """The groups of the chunks a synthesised question file names; a row naming no chunk in the index
    (edited, or re-ingested since) counts as every group in the index: fail closed."""
    ids = [str(row.get("chunk_id") or "") for row in read_questions(questions)]
    found = {chunk.chunk_id: chunk for chunk in ws.store.chunks([i for i in ids if i])}
    if not all(i in found for i in ids):
        return sorted(ws.everyone().groups)
    return readers_of(chunk.groups for chunk in found.values())


def _questions(
    ws: Workspace, data: Path | None, readers: Sequence[str] | None, show_progress: bool
) -> tuple[Path, list[str]]:
    """The question file given (with who may read it), else the workspace's synthesised one (written
    now if missing, its readers from the chunks it came from)."""
    if data is not None:
        return data, data_readers(data, readers)
    data = ws.layout.synth_questions
    if not data.is_file():
        return data, synth(ws, out=data, show_progress=show_progress).readers
    return data, synth_readers(ws, data)


def generator_tune_config(ws: Workspace) -> GeneratorTuneConfig:
    """[tune.generator] with its base model filled in: by default the model rag answers with."""
    config = ws.config.tune.generator
    if config.base_model:
        return config
    if ws.config.generator.backend == "openai":
        raise ConfigError(
            "the generator is an API model, which cannot be LoRA-tuned here: set [tune.generator] base_model "
            "to a builtin (e.g. builtin:qwen2.5-coder-0.5b-instruct), a GGUF file or a transformers folder"
        )
    return config.model_copy(update={"base_model": ws.config.generator.model})


def _with_passages(ws: Workspace, data: Path, out: Path, resume: bool) -> tuple[Path, list[str]]:
    """data re-set in the rag prompt (see in_rag_prompt), written to out; and the passages' groups."""
    examples, readers = in_rag_prompt(
        ws.retriever,
        load_examples(data),
        passages=ws.config.answer.passages,
        allowed=ws.training_access(),
        persona=ws.config.answer.persona,
    )
    if not resume:  # every rank of a data-parallel run writes the same file: through a rename
        write_text_atomic(out, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples))
    return out, readers


def tune_generator(
    ws: Workspace,
    data: Path,
    *,
    readers: Sequence[str] | None = None,
    val: Path | None = None,
    epochs: float | None = None,
    max_steps: int | None = None,
    name: str | None = None,
    resume: bool = False,
    with_passages: bool = False,
    show_progress: bool = True,
) -> TuneReport:
    """LoRA-tune the generator on chat/alpaca/prompt-completion JSONL (see ragtune.tune.generator).

    readers: the groups a caller must hold to read `data` and `val` ([] = public; required): the
    adapter answers only callers holding them. with_passages: each example is set in the rag prompt
    with the passages retrieved for its question, so a tone adapter keeps reading them when hybrid
    serves it; their groups join the readers.
    """
    learnt = data_readers(data, readers)
    if name is None:
        newest = ws.adapter_dir() if resume else None
        name = newest.name if newest is not None else time.strftime("generator-%Y%m%d-%H%M%S")
    run_dir = ws.layout.adapters / name
    run_dir.mkdir(parents=True, exist_ok=True)
    config = generator_tune_config(ws)
    extra: dict[str, object] = {}
    if with_passages:
        data, passage_readers = _with_passages(ws, data, run_dir / "with-passages.jsonl", resume)
        if val is not None:  # only measured on: its passages do not reach the weights
            val, _ = _with_passages(ws, val, run_dir / "val-with-passages.jsonl", resume)
        learnt = readers_of([learnt, passage_readers])
        config = config.model_copy(update={"max_length": max(config.max_length, 1024)})  # passages are long
        extra = {"citations": "inline", "prompt_layout": RAG_PROMPT_LAYOUT, "with_passages": True}
    report = train_generator(
        data,
        run_dir,
        config,
        val=val,
        epochs=epochs,
        max_steps=max_steps,
        resume=resume,
        console=ws.console,
        show_progress=show_progress,
        manifest_extra={**extra, READERS: learnt},
    )
    ws.forget_tuned()
    return report


def tune_raft(
    ws: Workspace,
    data: Path | None = None,
    *,
    epochs: float | None = None,
    max_steps: int | None = None,
    name: str | None = None,
    resume: bool = False,
    readers: Sequence[str] | None = None,
    show_progress: bool = True,
) -> tuple[TuneReport, RaftBuild]:
    """Build RAFT examples from a question file (default: synthesise one) and LoRA-tune on them.

    readers: who may read a given `data` file ([] = public; required with it). The adapter's readers
    add the groups of every passage in its examples.
    """
    data, question_readers = _questions(ws, data, readers, show_progress)
    name = name or time.strftime("raft-%Y%m%d-%H%M%S")
    run_dir = ws.layout.adapters / name
    built = build_raft(
        ws.retriever,
        read_questions(data),
        ws.config.tune.raft,
        allowed=ws.training_access(),
        persona=ws.config.answer.persona,
    )
    if ws.config.tune.raft.target == "self":
        built = with_own_answers(
            built,
            ws.generator,
            params_from(ws.config.generator),
            embedder=ws.embedder,
            console=ws.console,
            refusals=ws.config.tune.raft.refusals,
            seed=ws.config.tune.raft.seed,
            show_progress=show_progress,
        )
    if not built.examples:
        raise DataError(f"{data}: no usable RAFT examples ({built.skipped})")
    run_dir.mkdir(parents=True, exist_ok=True)
    examples = run_dir / "raft.jsonl"
    if not resume:  # every rank of a data-parallel run writes the same file: through a rename
        write_text_atomic(examples, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in built.examples))
    config = generator_tune_config(ws)
    config = config.model_copy(update={"max_length": max(config.max_length, 1024)})  # passages are long
    report = train_generator(
        examples,
        run_dir,
        config,
        epochs=epochs if epochs is not None else ws.config.tune.raft.epochs,
        max_steps=max_steps,
        resume=resume,
        console=ws.console,
        show_progress=show_progress,
        manifest_extra={
            "kind": "raft",
            "raft_target": ws.config.tune.raft.target,
            "raft_refusals": ws.config.tune.raft.refusals,
            "citations": "inline",
            "questions": str(data),
            "prompt_layout": RAG_PROMPT_LAYOUT,
            READERS: readers_of([question_readers, built.readers]),
        },
    )
    ws.forget_tuned()
    return report, built


def tune_tone(
    ws: Workspace,
    style: Path,
    *,
    readers: Sequence[str] | None = None,
    questions: Path | None = None,
    name: str | None = None,
    show_progress: bool = True,
) -> tuple[TuneReport, Distilled]:
    """A tone adapter for hybrid that keeps reading (see ragtune.tune.tone), in three steps.

    1. NAME-voice: LoRA on the bare style examples, exported to GGUF (it answers step 2 fast).
    2. The voice model answers the questions (default: synthesised) in the hybrid prompt; the right,
       grounded answers in the house style are kept.
    3. NAME: LoRA on those answers beside their passages, and on nothing else: the bare style
       examples answer from memory, and mixed in they cost hybrid facts (examples/support: 64% of
       questions right without them, 52% with). `finetuned` (no passages) is served by NAME-voice.

    readers: who may read `style` and a given `questions` file ([] = public; required).
    """
    config = ws.config.tune.tone
    style_readers = data_readers(style, readers)
    examples = load_examples(style)
    questions, question_readers = _questions(ws, questions, style_readers, show_progress)
    name = name or time.strftime("tone-%Y%m%d-%H%M%S")
    voice_name = f"{name}-voice"
    tune_generator(
        ws,
        style,
        readers=style_readers,
        max_steps=config.voice_steps,
        name=voice_name,
        show_progress=show_progress,
    )
    export(ws, voice_name)
    voice, _ = ws.adapter_generator(ws.layout.adapters / voice_name)
    marker = ws.config.compare.style_marker or style_marker([e.completion for e in examples])
    built = distil_in_voice(
        ws.retriever,
        voice,
        read_questions(questions),
        params_from(ws.config.generator),
        passages=ws.config.answer.passages,
        allowed=ws.training_access(),
        persona=ws.config.answer.persona,
        marker=marker,
        console=ws.console,
        show_progress=show_progress,
    )
    ws.forget_tuned()  # the voice model's memory goes back before training
    if not built.examples:
        rejected = ", ".join(f"{n} {why}" for why, n in built.rejected.items())
        raise DataError(
            f"none of the voice model's {built.asked} answers was right, grounded and in the house style "
            f"({rejected}); raise [tune.tone] voice_steps or check {style}"
        )
    run_dir = ws.layout.adapters / name
    run_dir.mkdir(parents=True, exist_ok=True)
    data = run_dir / "tone.jsonl"
    write_text_atomic(data, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in built.examples))
    tune_config = generator_tune_config(ws)
    tune_config = tune_config.model_copy(update={"max_length": max(tune_config.max_length, 1024)})
    report = train_generator(
        data,
        run_dir,
        tune_config,
        max_steps=config.steps,
        console=ws.console,
        show_progress=show_progress,
        manifest_extra={
            "kind": "tone",
            "citations": "inline",
            "prompt_layout": RAG_PROMPT_LAYOUT,
            "voice": voice_name,
            "style": str(style),
            "questions": str(questions),
            "distilled": {
                "asked": built.asked,
                "kept": len(built.examples),
                "marker": marker,
                "rejected": dict(built.rejected),
            },
            READERS: readers_of([style_readers, question_readers, built.readers]),
        },
    )
    ws.forget_tuned()
    return report, built


def tune_retriever(
    ws: Workspace,
    data: Path | None = None,
    *,
    name: str | None = None,
    switch: bool = True,
    epochs: float | None = None,
    readers: Sequence[str] | None = None,
    show_progress: bool = True,
) -> RetrieverTuneReport:
    """Fine-tune the embedder on (query, passage) pairs; synthesises them when none are given.

    readers: who may read a given `data` file ([] = public; required with it). The embedder's readers
    add the groups of the chunks its pairs used; while it serves the index, only callers holding them
    all may retrieve.
    """
    data, pair_readers = _questions(ws, data, readers, show_progress)
    name = name or time.strftime("retriever-%Y%m%d-%H%M%S")
    report, tuned = train_retriever(
        ws.retriever,
        ws.embedder,
        ws.embedding_cache,
        ws.config.tune.retriever,
        data,
        ws.layout.embedder(name),
        allowed=ws.training_access(),
        data_readers=pair_readers,
        epochs=epochs,
        show_progress=show_progress,
        console=ws.console,
    )
    if switch:
        started = time.perf_counter()
        report.index, report.reembedded_chunks = ws.switch_embedder(tuned, name)
        report.reembed_seconds = round(time.perf_counter() - started, 1)
        report.switched = True
    return report


def tune_fusion(ws: Workspace, questions: Path, *, write: bool = True) -> FusionFit:
    """Fit hybrid fusion on labelled questions and, unless told not to, save it in ragtune.toml."""
    fit = fit_fusion(ws.retriever, read_questions(questions), ws.everyone())
    if write:
        update_config(ws.layout.config_file, "retrieval", {"fusion": fit.fusion, "alpha": fit.alpha})
        ws.reload_config()
    return fit


def export(
    ws: Workspace, adapter: str, fmt: str = "gguf", out: Path | None = None, quant: str = "q8_0"
) -> ExportReport:
    """Merge an adapter into its base (safetensors) and convert it to GGUF for llama.cpp."""
    run_dir = ws.layout.adapters / adapter
    if not Manifest.exists(run_dir):
        known = Manifest.names(ws.layout.adapters)
        raise ConfigError(f"no adapter {adapter!r}; trained adapters: {', '.join(known) or 'none'}")
    report = export_adapter(run_dir, fmt, out, quant)
    ws.forget_tuned()  # the next tuned answer uses the export
    return report
