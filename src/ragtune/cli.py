"""The `ragtune` command: each command parses flags, calls the Python API, and prints the result."""

from __future__ import annotations

import functools
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ragtune import jobs
from ragtune.errors import RagtuneError
from ragtune.evaluate.report import headline_rows
from ragtune.generate import Message
from ragtune.generate.builtins import list_builtins
from ragtune.index.retriever import MODES, check_mode
from ragtune.ingest.sync import IngestReport
from ragtune.ingest.watch import SyncRound, poll, watch_paths
from ragtune.tune.generator import TuneReport, is_main_process
from ragtune.types import Answer
from ragtune.workspace import Workspace

app = typer.Typer(
    help="RAG, fine-tuning or both? Index your documents, search them, and measure what works.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)
eval_app = typer.Typer(help="Measure retrieval (and, later, answers) on labelled data.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
users_app = typer.Typer(
    help="API users: keys for `ragtune serve`, with their access groups.", no_args_is_help=True
)
app.add_typer(users_app, name="users")
tune_app = typer.Typer(help="Fine-tune the generator (LoRA) on your examples.", no_args_is_help=True)
app.add_typer(tune_app, name="tune")

out = Console()
err = Console(stderr=True)
state: dict[str, Any] = {"workspace": None, "debug": False}

WorkspaceOption = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", help="Workspace folder (default: nearest ragtune.toml upward)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]


@app.callback()
def main_options(
    workspace: WorkspaceOption = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    state["workspace"] = workspace
    state["debug"] = debug


def _open(workspace: Path | None = None, *, batch_embeddings: bool = False) -> Workspace:
    return Workspace.open(workspace or state["workspace"], batch_embeddings=batch_embeddings)


def _split(values: str | None) -> list[str]:
    return [v.strip() for v in (values or "").split(",") if v.strip()]


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    pairs = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RagtuneError(f"{flag} expects KEY=VALUE, got {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the new workspace.")] = Path("."),
) -> None:
    """Create a workspace: ragtune.toml (check it in) and .ragtune/ (local state)."""
    ws = Workspace.init(directory)
    out.print(f"workspace ready: {ws.root / 'ragtune.toml'}")
    out.print(f"next: [bold]ragtune -w {directory} ingest PATH[/]")


@app.command()
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders to ingest.")] = None,
    groups: Annotated[
        str | None,
        typer.Option(help="Access groups for these paths, comma-separated: recorded as their rule in ragtune.toml."),
    ] = None,
    public: Annotated[
        bool, typer.Option("--public", help="Record these paths as readable by everyone (no groups).")
    ] = False,
    widen: Annotated[
        bool, typer.Option("--widen", help="Confirm a rule change that lets more callers read.")
    ] = False,
    meta: Annotated[list[str] | None, typer.Option(help="Metadata KEY=VALUE, repeatable.")] = None,
    no_prune: Annotated[bool, typer.Option("--no-prune", help="Keep indexed files that vanished.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit non-zero if any file was skipped.")] = False,
    sql: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL: ingest rows of --query instead of files.")
    ] = None,
    query: Annotated[str | None, typer.Option(help="SQL query whose rows become documents.")] = None,
    id_column: Annotated[str | None, typer.Option(help="Column that identifies a row across syncs.")] = None,
    text_template: Annotated[
        str | None, typer.Option(help="Row text as a Python format string, e.g. '{city}: {address}'.")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Name for SQL sources (default: the table in the query).")
    ] = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch", help="Keep running: re-sync on every file change (SQL: every --every seconds)."
        ),
    ] = False,
    every: Annotated[
        float, typer.Option(min=0.1, help="With --watch --sql: seconds between re-syncs.")
    ] = 10.0,
    as_json: JsonOption = False,
) -> None:
    """Add, update and delete documents so the index matches the given sources (unchanged ones are skipped)."""
    ws = _open()
    if public and groups:
        raise RagtuneError("give --groups or --public, not both")
    group_list = [] if public else (_split(groups) if groups is not None else None)
    sync: Callable[[], IngestReport]
    if sql:
        if not query or not id_column:
            raise RagtuneError("--sql needs --query and --id-column")
        sync = functools.partial(
            ws.ingest_sql,
            sql,
            query,
            id_column,
            text_template=text_template,
            name=name,
            groups=group_list,
            prune=not no_prune,
            widen=widen,
            show_progress=not (as_json or watch),
        )
    else:
        if not paths:
            raise RagtuneError("give files or folders to ingest, or --sql URL --query ... --id-column ...")
        sync = functools.partial(
            ws.ingest,
            paths,
            groups=group_list,
            meta=_pairs(meta, "--meta"),
            prune=not no_prune,
            widen=widen,
            show_progress=not (as_json or watch),
        )
    if watch:
        _watch(ws, sync, paths=None if sql else paths, every=every, as_json=as_json)
        return
    report = sync()
    _print_ingest_report(ws, report, as_json)
    if strict and report.failed:
        raise typer.Exit(1)


def _print_ingest_report(ws: Workspace, report: IngestReport, as_json: bool) -> None:
    if as_json:
        _print_json(report.to_dict())
        return
    stats = ws.stats()
    out.print(
        f"added {report.added}, updated {report.updated}, deleted {report.deleted}, "
        f"unchanged {report.unchanged}, failed {len(report.failed)} · "
        f"{report.chunks_embedded} chunks embedded · {report.seconds:.1f}s · "
        f"index: {stats['documents']} documents, {stats['chunks']} chunks"
    )
    _print_restricted(ws, report.restricted)
    _print_access_changes(ws, report)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int | None, typer.Option("-k", help="Number of hits.")] = None,
    mode: Annotated[
        str | None, typer.Option(help=f"One of {', '.join(MODES)} (default from config).")
    ] = None,
    groups: Annotated[str | None, typer.Option(help="Search as a caller in these groups.")] = None,
    as_user: Annotated[
        str | None, typer.Option("--as-user", help="Search as a user from ragtune.toml.")
    ] = None,
    filter_: Annotated[
        list[str] | None, typer.Option("--filter", help="Metadata KEY=VALUE, repeatable.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Search the index. Without --groups/--as-user only documents without groups are visible."""
    ws = _open()
    hits = ws.search(
        query,
        k=k,
        mode=mode,
        groups=_split(groups) or None,
        user=as_user,
        filters=_pairs(filter_, "--filter"),
    )
    if as_json:
        _print_json({"query": query, "hits": [hit.to_dict() for hit in hits]})
        return
    if not hits:
        out.print("no hits")
        return
    table = Table(show_lines=True)
    for column in ("#", "score", "source", "location", "text"):
        table.add_column(column, overflow="fold")
    for rank, hit in enumerate(hits, start=1):
        snippet = " ".join(hit.chunk.text.split())
        table.add_row(
            str(rank),
            f"{hit.score:.3f}",
            hit.chunk.source,
            hit.chunk.location,
            snippet[:240] + ("…" if len(snippet) > 240 else ""),
        )
    out.print(table)


StrategyOption = Annotated[
    str, typer.Option("--strategy", "-s", help="base | rag | finetuned | hybrid (see `ragtune compare`).")
]


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    strategy: StrategyOption = "rag",
    groups: Annotated[str | None, typer.Option(help="Ask as a caller in these groups.")] = None,
    as_user: Annotated[str | None, typer.Option("--as-user", help="Ask as a user from ragtune.toml.")] = None,
    stream: Annotated[bool, typer.Option("--stream", help="Print the answer token by token.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Answer a question with citations and timings."""
    ws = _open()
    printer = StreamPrinter() if stream and not as_json else None
    answer = ws.ask(
        question, strategy=strategy, groups=_split(groups) or None, user=as_user, on_token=printer
    )
    if as_json:
        _print_json(answer.to_dict())
        return
    if printer is not None:
        printer.finish(answer)
    else:
        out.print(answer.answer, highlight=False, markup=False)
    _print_sources(answer)


class StreamPrinter:
    """Prints tokens as they come; at the end, what the stream did not show (attached [n] markers)."""

    def __init__(self) -> None:
        self.pieces: list[str] = []

    def __call__(self, piece: str) -> None:
        self.pieces.append(piece)
        out.print(piece, end="", highlight=False, markup=False)

    def finish(self, answer: Answer) -> None:
        shown = "".join(self.pieces).strip()
        out.print(
            answer.answer[len(shown) :] if answer.answer.startswith(shown) else "",
            highlight=False,
            markup=False,
        )


def _print_sources(answer: Answer) -> None:
    for citation in answer.citations:
        chunk = citation.chunk
        snippet = " ".join(chunk.text.split())[:160]
        where = f" ({chunk.location})" if chunk.location else ""
        mark = " (inferred)" if citation.inferred else ""
        out.print(f"  [{citation.n}] [bold]{chunk.source}[/]{where}{mark}: {snippet}", highlight=False)
    check = answer.verification
    if check and check.get("supported_share") is not None:
        precision = check["citation_precision"]
        out.print(
            f"[dim]verified: {check['supported_share']:.0%} of sentences supported by the passages"
            + (f", citation precision {precision:.0%}" if precision is not None else "")
            + "[/]",
            highlight=False,
        )
        for sentence in check["unsupported"]:
            out.print(Text.assemble(("  unsupported: ", "yellow"), sentence), highlight=False)
    t = answer.timings
    out.print(
        f"[dim]{answer.strategy} · retrieve {t.get('retrieve_ms', 0):.0f} ms · first token {t.get('ttft_ms', 0):.0f} ms"
        f" · generate {t.get('generate_ms', 0):.0f} ms · {t.get('tokens_per_s', 0):.0f} tokens/s[/]",
        highlight=False,
    )
    notes = answer.debug.get("notes") or []
    for note in notes:
        out.print(f"[dim]note: {note}[/]", highlight=False)


@app.command()
def chat(
    strategy: StrategyOption = "rag",
    groups: Annotated[str | None, typer.Option(help="Chat as a caller in these groups.")] = None,
    as_user: Annotated[
        str | None, typer.Option("--as-user", help="Chat as a user from ragtune.toml.")
    ] = None,
) -> None:
    """An interactive session that keeps the conversation; each turn retrieves afresh. Ctrl-D ends it."""
    ws = _open()
    ws.check_model_access(strategy, ws.caller(_split(groups) or None, as_user))  # refused before a question
    history: list[Message] = []
    out.print(f"[dim]ragtune chat · strategy {strategy} · empty line or Ctrl-D to leave[/]")
    while True:
        try:
            question = input("you> ").strip()
        except EOFError:
            break
        if not question:
            break
        out.print("ragtune> ", end="")
        printer = StreamPrinter()
        answer = ws.ask(
            question,
            strategy=strategy,
            groups=_split(groups) or None,
            user=as_user,
            history=history[-6:],
            on_token=printer,
        )
        printer.finish(answer)
        _print_sources(answer)
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.answer}]


def _watch(
    ws: Workspace,
    sync: Callable[[], IngestReport],
    *,
    paths: list[Path] | None,
    every: float,
    as_json: bool,
) -> None:
    """`ingest --watch`: sync on every change under `paths` (None: an SQL source, every `every` s)."""
    ws.embedder.load()  # loaded now, so that the first saved edit is not the one that waits for it
    # Ctrl-C or a service manager's SIGTERM ends the watch after the sync in progress, exit 0.
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    rounds = poll(sync, every, stop=stop) if paths is None else watch_paths(paths, sync, stop=stop)
    if not as_json:
        where = f"the SQL source every {every:g} s" if paths is None else ", ".join(map(str, paths))
        out.print(f"watching {where} (Ctrl-C stops)")
    for sync_round in rounds:
        _print_round(ws, sync_round, as_json)


def _print_round(ws: Workspace, sync_round: SyncRound, as_json: bool) -> None:
    """One line per re-sync of `ingest --watch` (a JSON object per line with --json)."""
    report = sync_round.report
    if as_json:
        row = {"trigger": sync_round.trigger, "error": sync_round.error}
        print(json.dumps({**row, **(report.to_dict() if report else {})}), flush=True)
        return
    index = f" · index: {ws.stats()['documents']} documents" if report is not None else ""
    out.print(f"{time.strftime('%H:%M:%S')} {sync_round.summary()}{index}", markup=False, highlight=False)


def _print_restricted(ws: Workspace, restricted: dict[str, list[str]]) -> None:
    """Name the documents this ingest restricted, by group, and warn about groups nobody holds."""
    if not restricted:
        return
    held = ws.group_holders()
    for group, sources in sorted(restricted.items()):
        shown = ", ".join(sources[:5]) + (f", … ({len(sources) - 5} more)" if len(sources) > 5 else "")
        out.print(f"restricted to group [bold]{group}[/] ({len(sources)}): {shown}", highlight=False)
        if not held.get(group):
            _warn_unheld(group)


def _print_access_changes(ws: Workspace, report: IngestReport) -> None:
    """Every document whose readers changed for more, or would have: by name, with who gains access."""
    held = ws.group_holders()
    for change in report.widened:
        holders = [f"{g} ({', '.join(sorted(set(held.get(g, [])))) or 'nobody'})" for g in change["to"]]
        who = ", ".join(holders) or "everyone"
        out.print(
            f"[yellow]widened[/] {escape(change['path'])}: {', '.join(change['from'])} -> now readable by {who}",
            highlight=False,
        )
    for change in report.held:
        err.print(
            f"[yellow]kept restricted[/] {change['path']} to {', '.join(change['from'])}: its new groups "
            f"({', '.join(change['to']) or 'public'}) would widen access; re-run with --widen to confirm",
            highlight=False,
        )
    for notice in report.notices:
        err.print(f"[yellow]note[/] {escape(notice['path'])}: {escape(notice['message'])}", highlight=False)


def _warn_unheld(group: str) -> None:
    err.print(
        f"[yellow]warning:[/] no user or key holds group {group!r}, so its documents reach no one. "
        f"Group names are literal: give someone the group with `ragtune users add NAME --groups {group}`, "
        "or make the documents public with `ragtune ingest PATH --public --widen`.",
        highlight=False,
    )


@app.command()
def models(as_json: JsonOption = False) -> None:
    """The chat models that ship as packages: size, whether installed, and what they measured."""

    rows = list_builtins()
    if as_json:
        _print_json(rows)
        return
    table = Table(title="builtin models (generator.model = NAME)")
    for column in ("name", "size", "installed", "measured"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for row in rows:
        installed = "yes" if row["installed"] else f"no: {row['install']}"
        table.add_row(
            str(row["name"]), f"{row['size_mb']} MB", escape(installed), str(row["measured"]) or "-"
        )
    out.print(table)


@app.command()
def status(as_json: JsonOption = False) -> None:
    """What the index holds, and which access groups its documents carry (with who holds them)."""
    ws = _open()
    stats = ws.stats()
    groups = ws.access_overview()
    rules = ws.rules_overview()
    if as_json:
        _print_json({**stats, "groups": groups, "rules": rules})
        return
    for key, value in stats.items():
        out.print(f"{key}: {value}")
    table = Table(title="access groups")
    for column in ("group", "documents", "held by"):
        table.add_column(column, justify="right" if column == "documents" else "left")
    for row in groups:
        holders = ", ".join(row["holders"]) or "[yellow]nobody[/]"
        table.add_row(row["group"], str(row["documents"]), holders)
    out.print(table)
    rule_table = Table(title=escape("access rules ([[sources]] in ragtune.toml; the most specific rule wins)"))
    for column in ("path", "groups", "documents"):
        rule_table.add_column(column, justify="right" if column == "documents" else "left")
    for rule in rules:
        groups_shown = ", ".join(rule["groups"]) or "(public)"
        rule_table.add_row(escape(rule["path"]), escape(groups_shown), str(rule["documents"]))
    out.print(rule_table)
    for row in groups:
        if row["unheld"]:
            _warn_unheld(row["group"])


@eval_app.command("retrieval")
def eval_retrieval(
    beir_dir: Annotated[
        Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv.")
    ],
    modes: Annotated[str, typer.Option(help="Comma-separated modes to compare.")] = ",".join(MODES[::-1]),
    split: Annotated[str, typer.Option(help="qrels split file name.")] = "test",
    as_json: JsonOption = False,
) -> None:
    """nDCG@10, Recall@10/100 and MRR@10 of each retrieval mode on a BEIR-format dataset."""

    mode_list = [check_mode(mode) for mode in _split(modes)]  # before indexing, not after
    workspace = state["workspace"]
    result = jobs.evaluate_beir(
        beir_dir, modes=mode_list, split=split, workspace=workspace, show_progress=not as_json
    )
    if as_json:
        _print_json(result)
        return
    table = Table(title=f"{beir_dir} · {result['docs']} docs · {result['queries']} queries")
    table.add_column("mode")
    metrics = list(next(iter(result["results"].values())))
    for metric in metrics:
        table.add_column(metric, justify="right")
    for mode, values in result["results"].items():
        table.add_row(mode, *(f"{values[m]:.4f}" for m in metrics))
    out.print(table)


@app.command()
def export(
    adapter: Annotated[str, typer.Argument(help="Adapter name under .ragtune/adapters/.")],
    fmt: Annotated[
        str, typer.Option("--format", help="safetensors | gguf (gguf also writes safetensors).")
    ] = "gguf",
    output: Annotated[
        Path | None, typer.Option("--out", help="Folder (default: the adapter's export/).")
    ] = None,
    quant: Annotated[
        str, typer.Option(help="GGUF type: f16, bf16, q8_0, q4_k_m, q5_k_m, q6_k, q4_0.")
    ] = "q8_0",
    as_json: JsonOption = False,
) -> None:
    """Merge a tuned adapter into its base model; GGUF makes finetuned/hybrid run on llama.cpp."""
    report = jobs.export(_open(), adapter, fmt, output, quant)
    if as_json:
        _print_json(report.to_dict())
        return
    out.print(f"merged model (safetensors): {report.safetensors}")
    if report.gguf:
        out.print(f"GGUF ({report.quant}, {report.bytes['gguf'] / 1e6:.0f} MB): {report.gguf}")
        out.print("[dim]finetuned/hybrid answers now run this file through llama.cpp[/dim]")
    out.print(f"[dim]{report.seconds:.0f}s[/dim]")


@app.command()
def synth(
    n: Annotated[int | None, typer.Option("--n", help="Pairs to keep (default synth.n).")] = None,
    output: Annotated[
        Path | None, typer.Option("--out", help="Question file to write (default synth/questions.jsonl).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Question-answer pairs from the indexed chunks: a question file and chat training data."""
    report = jobs.synth(_open(), n=n, out=output, show_progress=not as_json)
    if as_json:
        _print_json(report.to_dict())
        return
    dropped = ", ".join(f"{count} {reason}" for reason, count in sorted(report.rejected.items())) or "none"
    out.print(
        f"{report.questions} questions from {report.chunks_used} chunks in {report.seconds:.0f}s "
        f"({report.train} train, {report.val} val) -> {report.out}"
    )
    out.print(f"chat data: {report.train_chat}, {report.val_chat}")
    out.print(f"dropped: {dropped}")
    if report.skipped_restricted_chunks:
        out.print(
            f"[dim]{report.skipped_restricted_chunks} chunks with access groups were left out "
            "(set synth.include_restricted = true to use them)[/dim]"
        )
    _print_notes(report.notes)


DataGroupsOption = Annotated[
    str | None,
    typer.Option(
        "--groups",
        help="Who may read the --data file(s), comma-separated: the model answers only callers holding all.",
    ),
]
DataPublicOption = Annotated[
    bool, typer.Option("--public", help="The --data file(s) hold public text: every caller may use it.")
]


def _data_readers(data: Path | None, groups: str | None, public: bool) -> list[str] | None:
    """Who may read a user-given training file (a tuned model answers whoever may use it): --groups, or
    [] with --public; asked on a terminal, refused in a script. None: no file, nothing to say."""
    if groups is not None and public:
        raise RagtuneError("give --groups or --public, not both")
    if data is None:
        if groups is not None or public:
            raise RagtuneError(
                "--groups / --public describe a --data file; without one, the groups of the chunks the "
                "synthesised questions came from are recorded"
            )
        return None
    if public:
        return []
    if groups is not None:
        if not _split(groups):
            raise RagtuneError("--groups needs at least one group name (or pass --public)")
        return _split(groups)
    if not sys.stdin.isatty():
        raise RagtuneError(
            f"{data}: say who may read it: pass --groups G1,G2 (the model will answer only callers holding "
            "all of them) or --public; nothing was trained"
        )
    answer = typer.prompt(
        f"Which access groups may read {data}? (comma-separated; empty: public)",
        default="",
        show_default=False,
        err=True,
    )
    if not _split(answer) and not typer.confirm(
        f"Treat {data} as public, so that every caller may use what the model learns from it?",
        default=False,
        err=True,
    ):
        raise RagtuneError("nothing trained: run again with --groups G1,G2 or --public")
    return _split(answer)


@tune_app.command("generator")
def tune_generator(
    data: Annotated[Path, typer.Option(help="Training JSONL: chat, alpaca or prompt/completion lines.")],
    val: Annotated[
        Path | None, typer.Option(help="Validation JSONL (default: hold out tune.generator.val_fraction).")
    ] = None,
    epochs: Annotated[float | None, typer.Option(help="Epochs (default from config).")] = None,
    max_steps: Annotated[
        int | None, typer.Option(help="Stop after N optimizer steps (overrides --epochs).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Adapter name under .ragtune/adapters/.")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted run from its last checkpoint.")
    ] = False,
    with_passages: Annotated[
        bool,
        typer.Option(
            "--with-passages",
            help="Train each example beside the passages retrieved for its question, in the rag prompt: "
            "a tone adapter that still reads them under hybrid.",
        ),
    ] = False,
    groups: DataGroupsOption = None,
    public: DataPublicOption = False,
    as_json: JsonOption = False,
) -> None:
    """LoRA supervised fine-tuning (PEFT + TRL); the adapter serves `ask --strategy finetuned`."""
    readers = _data_readers(data, groups, public)
    report = jobs.tune_generator(
        _open(),
        data,
        readers=readers,
        val=val,
        epochs=epochs,
        max_steps=max_steps,
        name=name,
        resume=resume,
        with_passages=with_passages,
        show_progress=not as_json,
    )
    if not is_main_process():  # under `accelerate launch`, rank 0 reports for all
        return
    if as_json:
        _print_json(report.to_dict())
        return
    _print_tune_report(report)


def _print_tune_report(report: TuneReport) -> None:
    val_text = f"{report.val_loss:.3f}" if report.val_loss is not None else "-"
    out.print(
        f"adapter {report.adapter}: {report.steps} steps in {report.seconds:.0f}s "
        f"({report.tokens_per_s:.0f} tokens/s) · train loss {report.train_loss:.3f} · val loss {val_text}"
    )


@tune_app.command("raft")
def tune_raft(
    data: Annotated[
        Path | None, typer.Option(help="Question file with answers and gold_doc (default: synthesise one).")
    ] = None,
    epochs: Annotated[float | None, typer.Option(help="Epochs (default from config).")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after N optimizer steps.")] = None,
    name: Annotated[str | None, typer.Option(help="Adapter name under .ragtune/adapters/.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run.")] = False,
    groups: DataGroupsOption = None,
    public: DataPublicOption = False,
    as_json: JsonOption = False,
) -> None:
    """RAFT: train the generator to answer from retrieved passages (oracle + distractors), citing them."""
    readers = _data_readers(data, groups, public)
    report, built = jobs.tune_raft(
        _open(),
        data,
        epochs=epochs,
        max_steps=max_steps,
        name=name,
        resume=resume,
        readers=readers,
        show_progress=not as_json,
    )
    if not is_main_process():
        return
    if as_json:
        _print_json(
            {
                **report.to_dict(),
                "examples": len(built.examples),
                "with_oracle": built.with_oracle,
                "without_oracle": built.without_oracle,
                "skipped": built.skipped,
            }
        )
        return
    skipped = ", ".join(f"{n} {why}" for why, n in built.skipped.items()) or "none"
    out.print(
        f"{len(built.examples)} RAFT examples ({built.with_oracle} with the gold passage, "
        f"{built.without_oracle} without: the answer is a refusal) · skipped: {skipped}"
    )
    _print_tune_report(report)
    out.print("[dim]`ragtune ask --strategy hybrid` now uses this adapter[/dim]")


@tune_app.command("tone")
def tune_tone(
    data: Annotated[Path, typer.Option(help="Style examples (chat JSONL): answers in the house voice.")],
    questions: Annotated[
        Path | None,
        typer.Option(help="Questions with answers the voice model answers (default: synthesise them)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Adapter name under .ragtune/adapters/.")] = None,
    groups: DataGroupsOption = None,
    public: DataPublicOption = False,
    as_json: JsonOption = False,
) -> None:
    """A tone adapter for hybrid that keeps reading: the voice learnt, then distilled into right answers."""
    readers = _data_readers(data, groups, public)  # the style file and a given --questions file
    report, built = jobs.tune_tone(
        _open(), data, readers=readers, questions=questions, name=name, show_progress=not as_json
    )
    rejected = ", ".join(f"{n} {why}" for why, n in built.rejected.items()) or "none"
    if as_json:
        _print_json(
            {
                **report.to_dict(),
                "asked": built.asked,
                "kept": len(built.examples),
                "rejected": dict(built.rejected),
            }
        )
        return
    out.print(
        f"the voice model answered {built.asked} questions in the hybrid prompt: {len(built.examples)} right, "
        f"grounded and in the house style ({built.marker or 'no common sign-off'}) kept · not kept: {rejected}"
    )
    _print_tune_report(report)
    out.print("[dim]`ragtune export` it, then `ragtune ask --strategy hybrid` uses this adapter[/dim]")


@tune_app.command("fusion")
def tune_fusion(
    questions: Annotated[
        Path, typer.Option(help="Question JSONL with gold_doc labels (yours, or synth/questions.jsonl).")
    ],
    write: Annotated[
        bool, typer.Option("--write/--dry-run", help="Save the chosen fusion in ragtune.toml [retrieval].")
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Fit hybrid fusion (convex weight alpha, or RRF) on labelled questions by document nDCG@10."""
    fit = jobs.tune_fusion(_open(), questions, write=write)
    if as_json:
        _print_json(fit.to_dict())
        return
    table = Table(title=f"document nDCG@10 on {fit.questions} labelled questions")
    table.add_column("retrieval")
    table.add_column("nDCG@10", justify="right")
    shown = ["bm25", "dense", "rrf", *(f"convex a={a / 10:.2f}" for a in range(11))]
    chosen = "rrf" if fit.fusion == "rrf" else f"convex a={fit.alpha:.2f}"
    for name in dict.fromkeys([*shown, chosen]):
        mark = " <- chosen" if name == chosen else ""
        table.add_row(name + mark, f"{fit.ndcg[name]:.4f}")
    out.print(table)
    saved = "saved in ragtune.toml" if write else "not saved (--dry-run)"
    out.print(f"fusion = {fit.fusion!r}, alpha = {fit.alpha}: {saved}")


@tune_app.command("retriever")
def tune_retriever(
    data: Annotated[
        Path | None,
        typer.Option(help="Pairs JSONL ({query, positive}) or a synth question file (default: synthesise)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Model name under .ragtune/embedders/.")] = None,
    epochs: Annotated[float | None, typer.Option(help="Epochs (default tune.retriever.epochs).")] = None,
    switch: Annotated[
        bool, typer.Option("--switch/--no-switch", help="Re-embed the index with the tuned model and use it.")
    ] = True,
    groups: DataGroupsOption = None,
    public: DataPublicOption = False,
    as_json: JsonOption = False,
) -> None:
    """Fine-tune the embedder (MultipleNegativesRankingLoss, hard negatives from the index)."""
    readers = _data_readers(data, groups, public)
    report = jobs.tune_retriever(
        _open(), data, name=name, switch=switch, epochs=epochs, readers=readers, show_progress=not as_json
    )
    if as_json:
        _print_json(report.to_dict())
        return
    out.print(f"embedder {report.model}: {report.steps} steps in {report.seconds:.0f}s")
    if report.before:
        out.print(f"held-out dense retrieval ({report.pairs['val']} queries):")
        for key in report.before:
            out.print(f"  {key:<10} {report.before[key]:.3f} -> {report.after[key]:.3f}")
    if report.switched:
        out.print(
            f"index re-embedded ({report.reembedded_chunks} chunks, {report.reembed_seconds:.0f}s) "
            "and switched to the tuned embedder"
        )
    _print_notes(report.notes)


@app.command()
def compare(
    questions: Annotated[
        Path, typer.Option(help="Question set (JSONL: id, question, answers, gold_doc, category).")
    ],
    strategies: Annotated[
        str, typer.Option(help="Comma-separated: base,rag,finetuned,hybrid.")
    ] = "base,rag,finetuned,hybrid",
    report: Annotated[
        Path | None,
        typer.Option(help="Report folder (default .ragtune/reports/compare-TIME); rerun to resume."),
    ] = None,
    freshness: Annotated[
        Path | None, typer.Option(help="EDIT.json: file, old, new, question, old_answer, new_answer.")
    ] = None,
    retrain: Annotated[
        bool,
        typer.Option(
            "--retrain", help="Freshness: really regenerate data and retrain the finetuned adapter."
        ),
    ] = False,
    style: Annotated[
        Path | None, typer.Option(help="Style examples (chat JSONL) to measure tone against.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run the same questions through every strategy; write an HTML/Markdown/JSON report; recommend."""
    result = jobs.compare(
        _open(),
        questions,
        _split(strategies),
        report_dir=report,
        freshness=freshness,
        retrain=retrain,
        style=style,
        show_progress=not as_json,
    )
    if as_json:
        _print_json(result)
        return

    columns, rows = headline_rows(result)
    keep = (
        "strategy",
        "accuracy",
        "token F1",
        "refusal acc.",
        "groundedness",
        "citation prec.",
        "p50 / p95 ms",
    )
    index = [columns.index(c) for c in keep]
    table = Table(
        title=f"{result['n_questions']} questions · {result['seconds']:.0f}s (all columns: the report)"
    )
    for column in keep:
        table.add_column(column)
    for row in rows:
        table.add_row(*(row[i] for i in index))
    out.print(table)
    _print_notes(result["notes"])
    _print_recommendation(result["recommendation"])
    out.print(f"report: {result['report']}")


def _print_notes(notes: list[str]) -> None:
    for note in notes:
        out.print(f"[yellow]{note}[/yellow]")


def _print_recommendation(rec: dict[str, Any]) -> None:
    out.print(f"[bold green]recommendation: {rec['strategy']}[/bold green]")
    for reason in rec["reasons"]:
        out.print(f"  · {reason}")
    for warning in rec["warnings"]:
        out.print(f"  [yellow]⚠ {warning}[/yellow]")


@app.command()
def advise(
    report: Annotated[
        Path | None, typer.Option(help="A compare report folder (default: the latest).")
    ] = None,
    facts_change: Annotated[str | None, typer.Option(help="daily | weekly | monthly | rarely")] = None,
    citations: Annotated[
        bool | None, typer.Option("--citations/--no-citations", help="Must answers cite sources?")
    ] = None,
    tone: Annotated[
        bool | None, typer.Option("--tone/--no-tone", help="Is a fixed tone/format required?")
    ] = None,
    latency_ms: Annotated[float | None, typer.Option(help="p95 latency target in ms.")] = None,
    budget: Annotated[str | None, typer.Option(help="low | medium | high")] = None,
    gpu: Annotated[bool | None, typer.Option("--gpu/--no-gpu", help="Is a GPU available?")] = None,
    sensitivity: Annotated[str | None, typer.Option(help="public | internal | restricted")] = None,
    as_json: JsonOption = False,
) -> None:
    """Recommend a strategy from your needs and the latest compare measurements."""
    ws = _open()
    given = {
        "facts_change": facts_change,
        "citations_required": citations,
        "tone_required": tone,
        "latency_target_ms": latency_ms,
        "budget": budget,
        "gpu_available": gpu,
        "data_sensitivity": sensitivity,
    }
    needs = {**ws.config.needs.model_dump(), **{k: v for k, v in given.items() if v is not None}}
    if not as_json and sys.stdin.isatty():
        needs = _ask_needs(needs)
    rec, folder = jobs.advise(ws, needs, report)
    if as_json:
        _print_json({**rec, "report": str(folder)})
        return
    _print_recommendation(rec)
    if rec["needs_unset"]:
        out.print(f"[dim]not given (treated as no constraint): {', '.join(rec['needs_unset'])}[/dim]")
    out.print(f"[dim]measurements: {folder}[/dim]")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name.")],
    groups: Annotated[str, typer.Option(help="Comma-separated access groups, e.g. finance,staff.")] = "",
    admin: Annotated[bool, typer.Option("--admin", help="May upload and delete documents.")] = False,
) -> None:
    """Create a user (or give an existing one a new key); the key is printed once and stored hashed."""
    key = _open().users.add(name, _split(groups), admin)
    out.print(f"API key for {name} (shown once, store it now):")
    print(key)


@users_app.command("list")
def users_list(as_json: JsonOption = False) -> None:
    """Users and their groups (never their keys)."""
    users = _open().users.list()
    if as_json:
        _print_json({"users": users})
        return
    for user in users:
        state = "revoked" if user["revoked"] else ("admin" if user["admin"] else "user")
        out.print(f"{user['name']:<20} {state:<8} {', '.join(user['groups']) or '(no groups)'}")  # type: ignore[arg-type]


@users_app.command("revoke")
def users_revoke(name: Annotated[str, typer.Argument(help="User name.")]) -> None:
    """Revoke a user's key at once."""
    _open().users.revoke(name)
    out.print(f"revoked {name}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface (default serve.host, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default serve.port, 8000).")] = None,
) -> None:
    """The OpenAI-compatible API, the documents API and the web UI (uvicorn)."""
    from ragtune.serve.server import run_server

    run_server(_open(batch_embeddings=True), host=host, port=port)


QUESTIONS: dict[str, tuple[str, list[str] | None]] = {
    "facts_change": (
        "How often do the facts in your documents change?",
        ["daily", "weekly", "monthly", "rarely"],
    ),
    "citations_required": ("Must every answer cite its sources?", None),
    "tone_required": ("Must answers follow a fixed tone or format?", None),
    "latency_target_ms": ("p95 latency target in ms (0: none)", []),
    "budget": ("Budget for training and serving?", ["low", "medium", "high"]),
    "gpu_available": ("Is a GPU available for training or serving?", None),
    "data_sensitivity": ("How sensitive are the documents?", ["public", "internal", "restricted"]),
}


def _ask_needs(needs: dict[str, Any]) -> dict[str, Any]:
    """Ask, on a terminal, for every need neither a flag nor ragtune.toml [needs] answered."""
    for key, (question, choices) in QUESTIONS.items():
        if needs.get(key) not in ("", None):
            continue
        if choices is None:
            needs[key] = typer.confirm(question, default=False)
        elif choices:
            needs[key] = typer.prompt(f"{question} ({'/'.join(choices)})", type=click.Choice(choices))
        else:
            value = typer.prompt(question, type=float, default=0.0)
            needs[key] = value or None
    return needs


def main() -> None:
    """Entry point: RagtuneErrors become one red line and exit 1; --debug shows the traceback."""
    try:
        app()
    except RagtuneError as exc:
        if state["debug"]:
            raise
        err.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]")
        sys.exit(130)


if __name__ == "__main__":
    main()
