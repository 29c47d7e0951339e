"""What each tuned strategy buys on an example knowledge base, measured by `ragtune compare` itself.

    python bench/tuning.py --kb hr|support [--questions 34] [--stages tone,tonep,toned,raft]
                           [--tone-steps 20] [--tonep-steps 12] [--synth-n 100] [--raft-epochs 1]
                           [--raft-target self|quote|answer_quote] [--raft-refusals own|unsupported]
                           [--raft-curve-every 4] [--learning-rate 2e-4] [--ws DIR]

One workspace on the example's ragtune.toml (its persona, the default generator), every step
through the real CLI, so each row is what a team would see:
- tone:  `tune generator` on the example's style.jsonl (bare questions), export to GGUF.
- tonep: the same examples `--with-passages` (set in the rag prompt beside retrieved passages).
- toned: `tune tone`: the voice learnt on the bare examples, then its right, grounded answers in the
  house style to synthesised questions, in the hybrid prompt, as training data (ragtune.tune.tone).
- raft:  `synth`, then `tune raft` on those questions (target: the model's own checked answers by
  default), export.
- retriever (not in the default stages; run it last, it switches the index): `tune retriever`, and
  dense nDCG@10 before/after on the human questions (never trained on).
With --raft-curve-every N the RAFT run keeps a checkpoint every N steps; each is exported and
compared as its own adapter (raft-stepN), and accuracy, groundedness and false refusals against
steps are plotted to docs/figures/raft-curve-<kb>.png: how far tuning gets, and when it turns.
Then `compare` on held-out human questions (every k-th of questions.jsonl, never trained on): base
and rag once, then finetuned and hybrid with each adapter. Every tuned model has the rag model as
its base (like with like). A stage whose adapter (or compare report, or synth set) already exists
in --ws is not built again, so an interrupted bench resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import print_table

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
STAGES = ("tone", "tonep", "toned", "raft")
ALL_STAGES = (*STAGES, "retriever")


def cli(ws: Path, *args: str) -> tuple[dict[str, Any], float]:
    """Run `ragtune ARGS --json` in the workspace; (parsed output, wall seconds)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "ragtune.cli", *args, "--json"],
        cwd=ws,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    if done.returncode != 0:
        raise SystemExit(f"ragtune {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    print(f"  ragtune {' '.join(args)}: {time.perf_counter() - started:.0f}s", flush=True)
    return json.loads(done.stdout), time.perf_counter() - started


def workspace(kb: Path, ws: Path, args: argparse.Namespace) -> None:
    """The example's config, its documents (and SQL rows) indexed; nothing if ws already holds them."""
    if (ws / "ragtune.toml").is_file():
        return
    ws.mkdir(parents=True)
    config = (kb / "ragtune.toml").read_text()
    config += f"\n[compare]\nconsistency_questions = 0\n\n[synth]\nn = {args.synth_n}\n"
    config += f'\n[tune.raft]\ntarget = "{args.raft_target}"\nrefusals = "{args.raft_refusals}"\n'
    generator = []
    if args.learning_rate is not None:
        generator.append(f"learning_rate = {args.learning_rate}")
    if args.raft_curve_every:
        generator += [f"save_steps = {args.raft_curve_every}", "keep_checkpoints = 0"]
    if generator:
        config += "\n[tune.generator]\n" + "\n".join(generator) + "\n"
    (ws / "ragtune.toml").write_text(config)
    subprocess.run([sys.executable, "-m", "ragtune.cli", "init", str(ws)], check=True, capture_output=True)
    cli(ws, "ingest", str(kb / "docs"))
    if (kb / "offices.sqlite").is_file():
        query = ["--query", "SELECT * FROM offices", "--id-column", "id"]
        cli(ws, "ingest", "--sql", f"sqlite:///{kb / 'offices.sqlite'}", *query)


def held_out(kb: Path, ws: Path, n: int) -> Path:
    """Every k-th human question, n of them: the same subset on every run."""
    rows = [line for line in (kb / "questions.jsonl").read_text().splitlines() if line.strip()]
    step = -(-len(rows) // n)
    path = ws / f"questions-{n}.jsonl"
    path.write_text("".join(line + "\n" for line in rows[::step]))
    return path


def adapter_manifest(ws: Path, name: str) -> dict[str, Any]:
    return dict(json.loads((ws / ".ragtune" / "adapters" / name / "manifest.json").read_text()))


def train(ws: Path, kb: Path, stage: str, args: argparse.Namespace) -> float:
    """Train and export one adapter (named after the stage); its training seconds."""
    if not (ws / ".ragtune" / "adapters" / stage / "manifest.json").is_file():
        if stage == "raft":
            if not (ws / "synth" / "questions.jsonl").is_file():
                cli(ws, "synth")
            cli(ws, "tune", "raft", "--epochs", str(args.raft_epochs), "--name", stage)
        elif stage == "toned":
            cli(ws, "tune", "tone", "--data", str(kb / "style.jsonl"), "--public", "--name", stage)
        else:
            steps = args.tone_steps if stage == "tone" else args.tonep_steps
            extra = ["--with-passages"] if stage == "tonep" else []
            data = str(kb / "style.jsonl")
            cli(
                ws,
                "tune",
                "generator",
                "--data",
                data,
                "--public",
                *extra,
                "--max-steps",
                str(steps),
                "--name",
                stage,
            )
        cli(ws, "export", stage)
    return float(adapter_manifest(ws, stage)["seconds"])


def checkpoint_adapters(ws: Path, stage: str) -> list[tuple[int, str, float]]:
    """Each intermediate checkpoint of a stage as an adapter of its own (stage-stepN), exported:
    (step, adapter name, the share of the run's training seconds it took)."""
    run = ws / ".ragtune" / "adapters" / stage
    final = adapter_manifest(ws, stage)
    steps = sorted(int(p.name.split("-")[-1]) for p in (run / "checkpoints").glob("checkpoint-*"))
    found = []
    for step in [s for s in steps if s < final["steps"]]:
        name = f"{stage}-step{step}"
        folder = run.parent / name
        seconds = round(final["seconds"] * step / final["steps"], 1)
        if not (folder / "manifest.json").is_file():
            skip = shutil.ignore_patterns("optimizer.pt", "scheduler.pt", "rng_state*", "training_args.bin")
            shutil.copytree(run / "checkpoints" / f"checkpoint-{step}", folder / "adapter", ignore=skip)
            manifest = {k: v for k, v in final.items() if k != "exports"}
            (folder / "manifest.json").write_text(
                json.dumps(manifest | {"name": name, "steps": step, "seconds": seconds})
            )
        if "exports" not in adapter_manifest(ws, name):
            cli(ws, "export", name)
        found.append((step, name, seconds))
    return found


def plot_curve(kb: str, points: list[tuple[int, dict[str, Any]]], rag: dict[str, Any], setting: str) -> Path:
    """Accuracy, groundedness and false refusals of hybrid against RAFT steps, rag as dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(__file__).resolve().parents[1] / "docs" / "figures" / f"raft-curve-{kb}.png"
    fig, ax = plt.subplots(figsize=(9, 4))
    steps = [step for step, _ in points]
    for key, label, colour in [
        ("accuracy", "accuracy", "tab:blue"),
        ("groundedness", "groundedness", "tab:green"),
        ("answerable_refused", "answerable refused", "tab:red"),
    ]:
        ax.plot(
            steps,
            [100 * (row.get(key) or 0) for _, row in points],
            "o-",
            color=colour,
            label=f"hybrid {label}",
        )
        ax.axhline(100 * (rag.get(key) or 0), color=colour, linestyle="--", linewidth=1, label=f"rag {label}")
    ax.set_xlabel("RAFT training steps")
    ax.set_ylabel("% of held-out questions")
    ax.set_ylim(0, 105)
    ax.set_title(f"examples/{kb}: hybrid (RAFT, {setting}) against steps, rag dashed", fontsize=10)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def tune_retriever(ws: Path, kb: Path) -> list[tuple[str, float, float]]:
    """`tune retriever` (it switches the index); dense nDCG@10 before and after, synthetic and human."""
    human = human_pairs(ws, kb)
    before = dense_ndcg(ws, human)
    report, _ = cli(ws, "tune", "retriever")
    return [
        (
            f"held-out synthetic ({report['pairs']['val']})",
            report["before"]["ndcg@10"],
            report["after"]["ndcg@10"],
        ),
        (f"human questions ({len(human)})", before, dense_ndcg(ws, human)),
    ]


def human_pairs(ws: Path, kb: Path) -> list[Any]:
    """The example's questions with a public gold document, as evaluation pairs keyed by doc_id."""
    from ragtune.index.store import Access
    from ragtune.tune.retriever import Pair
    from ragtune.workspace import Workspace

    workspace = Workspace.open(ws)
    doc_ids = {d.source: d.doc_id for d in workspace.store.documents(Access())}
    workspace.close()
    rows = [json.loads(line) for line in (kb / "questions.jsonl").read_text().splitlines() if line.strip()]
    return [Pair(r["question"], "", doc_ids[r["gold_doc"]], "val") for r in rows if r["gold_doc"] in doc_ids]


def dense_ndcg(ws: Path, pairs: list[Any]) -> float:
    from ragtune.index.store import Access
    from ragtune.tune.retriever import dense_metrics
    from ragtune.workspace import Workspace

    workspace = Workspace.open(ws)
    corpus = [(c.doc_id, c.index_text) for c in workspace.store.all_chunks(Access())]
    score = float(dense_metrics(workspace.embedder, workspace.embedding_cache, corpus, pairs)["ndcg@10"])
    workspace.close()
    return score


def compare(ws: Path, kb: Path, questions: Path, adapter: str | None, strategies: str) -> dict[str, Any]:
    from ragtune.config import update_config

    if adapter:
        update_config(ws / "ragtune.toml", "tune", {"adapter": adapter, "hybrid_adapter": adapter})
    report = ws / "reports" / (adapter or "untuned")
    if (report / "report.json").is_file():  # measured before this bench was interrupted
        measured = json.loads((report / "report.json").read_text())["strategies"]
        if set(measured) == set(strategies.split(",")):
            return dict(measured)
    args = ["--questions", str(questions), "--strategies", strategies, "--report", str(report)]
    result, _ = cli(ws, "compare", *args, "--style", str(kb / "style.jsonl"))
    return dict(result["strategies"])


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", choices=["hr", "support"], default="hr")
    parser.add_argument("--questions", type=int, default=34, help="Held-out human questions asked.")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"Any of {', '.join(ALL_STAGES)}.")
    parser.add_argument("--tone-steps", type=int, default=20)
    parser.add_argument("--tonep-steps", type=int, default=12)
    parser.add_argument("--synth-n", type=int, default=100)
    parser.add_argument("--raft-epochs", type=float, default=1.0)
    parser.add_argument("--raft-target", choices=["quote", "answer_quote", "self"], default="self")
    parser.add_argument("--raft-refusals", choices=["own", "unsupported"], default="own")
    parser.add_argument(
        "--raft-curve-every", type=int, default=0, help="Measure a RAFT checkpoint every N steps (0: none)."
    )
    parser.add_argument(
        "--learning-rate", type=float, help="LoRA learning rate for every adapter (default: the config's)."
    )
    parser.add_argument("--ws", type=Path, help="Workspace to build or resume (default: a new temp one).")
    args = parser.parse_args()
    stages = [s for s in args.stages.split(",") if s]
    if unknown := set(stages) - set(ALL_STAGES):
        parser.error(f"unknown stages: {', '.join(sorted(unknown))}")

    kb = EXAMPLES / args.kb
    ws = args.ws or Path(tempfile.mkdtemp(prefix=f"ragtune-bench-tuning-{args.kb}-")) / "ws"
    print(f"workspace {ws}", flush=True)
    workspace(kb, ws, args)
    questions = held_out(kb, ws, args.questions)
    rows = [(name, row, 0.0) for name, row in compare(ws, kb, questions, None, "base,rag").items()]
    retriever = None
    curve: list[tuple[int, dict[str, Any]]] = []
    for stage in stages:
        if stage == "retriever":
            retriever = tune_retriever(ws, kb)
            continue
        seconds = train(ws, kb, stage, args)
        if stage == "raft" and args.raft_curve_every:
            for step, name, share in checkpoint_adapters(ws, stage):
                row = compare(ws, kb, questions, name, "hybrid")["hybrid"]
                rows.append((f"hybrid (raft, step {step})", row, share))
                curve.append((step, row))
        measured = compare(ws, kb, questions, stage, "hybrid" if stage == "raft" else "finetuned,hybrid")
        rows += [(f"{name} ({stage})", row, seconds) for name, row in measured.items()]
        if stage == "raft" and args.raft_curve_every:
            curve.append((adapter_manifest(ws, stage)["steps"], measured["hybrid"]))

    rag = next(row for name, row, _ in rows if name == "rag")
    if curve:
        setting = (
            f"refusals {args.raft_refusals}, {args.raft_epochs:g} epoch{'' if args.raft_epochs == 1 else 's'}"
        )
        print(f"curve: {plot_curve(args.kb, curve, rag, setting)}")
    table = []
    for name, row, seconds in rows:
        low, high = row.get("accuracy_ci") or (None, None)
        of_rag = row["accuracy"] / rag["accuracy"] if rag["accuracy"] else None
        table.append(
            (
                name,
                f"{pct(row['accuracy'])} [{pct(low)}, {pct(high)}]",
                pct(of_rag),
                pct(row.get("groundedness")),
                pct(row.get("citation_precision")),
                pct(row.get("answerable_refused")),
                pct(row.get("style_hit")),
                f"{row['latency_p50_ms'] / 1000:.1f}",
                f"{seconds:.0f}",
            )
        )
    columns = ["strategy", "accuracy [95% CI]", "of rag", "grounded", "cites gold", "answerable refused"]
    columns += ["style hit", "p50 s", "training s"]
    print_table(f"examples/{args.kb}: {questions.name}, base model {rag.get('base_model')}", columns, table)
    if retriever is not None:
        columns = ["queries", "before", "after"]
        print_table("retriever tuning: dense nDCG@10", columns, retriever)
    print(f"workspace kept at {ws}")


if __name__ == "__main__":
    main()
