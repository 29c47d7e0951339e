"""What each tuning command buys on examples/hr, and what it costs in wall time on this machine.

    python bench/tuning.py [--questions 40] [--raft-epochs 1]

One scratch workspace, every step through the real CLI (so wall times include start-up):
1. synth: kept pairs and wall time.
2. tune retriever: dense nDCG@10 before/after on the held-out synthetic queries (what the command
   prints) and on the human-written questions of examples/hr/questions.jsonl (never trained on).
3. tone: tune generator on examples/hr/style.jsonl (24 chat examples), export to GGUF, then ask
   unseen HR questions with base / finetuned / rag / hybrid and count answers that carry the house
   style (the "— Brightwell People Team" sign-off every style example ends with) and their mean
   cosine similarity to the style answers.
4. RAFT: tune raft on the synthetic questions, export, then rag vs hybrid on the same HR questions:
   answers containing an accepted answer, unanswerable questions refused, answers citing the gold doc.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import print_table

HR = Path(__file__).resolve().parents[1] / "examples" / "hr"
SIGN_OFF = "Brightwell People Team"


def cli(ws: Path, *args: str) -> tuple[Any, float]:
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
    return json.loads(done.stdout), time.perf_counter() - started


def ask_all(ws: Path, questions: list[dict[str, Any]], strategy: str) -> list[dict[str, Any]]:
    """Answers through the Python API (one model load per strategy, not per question)."""
    from ragtune.workspace import Workspace

    workspace = Workspace.open(ws)
    try:
        return [workspace.ask(q["question"], strategy=strategy).to_dict() for q in questions]
    finally:
        workspace.close()


def human_pairs(ws: Path) -> list[Any]:
    """examples/hr questions with a public gold document, as evaluation pairs keyed by doc_id."""
    from ragtune.index.store import Access
    from ragtune.tune.retriever import Pair
    from ragtune.workspace import Workspace

    workspace = Workspace.open(ws)
    doc_ids = {d.source: d.doc_id for d in workspace.store.documents(Access())}
    workspace.close()
    rows = [json.loads(line) for line in (HR / "questions.jsonl").read_text().splitlines()]
    return [Pair(r["question"], "", doc_ids[r["gold_doc"]], "val") for r in rows if r["gold_doc"] in doc_ids]


def dense_ndcg(ws: Path, pairs: list[Any]) -> float:
    from ragtune.index.store import Access
    from ragtune.tune.retriever import dense_metrics
    from ragtune.workspace import Workspace

    workspace = Workspace.open(ws)
    corpus = [(c.doc_id, c.index_text) for c in workspace.store.all_chunks(Access())]
    score = dense_metrics(workspace.embedder, workspace.embedding_cache, corpus, pairs)["ndcg@10"]
    workspace.close()
    return score


def style_scores(
    answers: list[dict[str, Any]], style_vectors: np.ndarray, embedder: Any
) -> tuple[int, float]:
    signed = sum(SIGN_OFF in a["answer"] for a in answers)
    vectors = embedder.embed([a["answer"] for a in answers])
    return signed, float((vectors @ style_vectors.T).max(axis=1).mean())


def contains(text: str, answers: list[str]) -> bool:
    return any(a.lower() in text.lower() for a in answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=40, help="HR questions asked per strategy.")
    parser.add_argument("--raft-epochs", default="2")
    args = parser.parse_args()
    from ragtune.index.embedder import SentenceTransformerEmbedder

    ws = Path(tempfile.mkdtemp(prefix="ragtune-bench-tuning-")) / "ws"
    subprocess.run([sys.executable, "-m", "ragtune.cli", "init", str(ws)], check=True, capture_output=True)
    walls: list[tuple[str, str, float]] = []
    ingest, seconds = cli(ws, "ingest", str(HR / "docs"))
    walls.append(("ingest examples/hr/docs", f"{ingest['added']} docs", seconds))

    synth, seconds = cli(ws, "synth")
    walls.append(("synth", f"{synth['questions']} pairs kept of {synth['candidates']} tried", seconds))

    human = human_pairs(ws)
    human_before = dense_ndcg(ws, human)
    retriever, seconds = cli(ws, "tune", "retriever")
    walls.append(("tune retriever (+ re-embed)", f"{retriever['steps']} steps", seconds))
    human_after = dense_ndcg(ws, human)

    rows = [json.loads(line) for line in (HR / "questions.jsonl").read_text().splitlines()]
    public = [r for r in rows if "salary" not in (r["gold_doc"] or "")]
    unanswerable_all = [r for r in public if not r["answers"]]
    answerable_all = [r for r in public if r["answers"]]
    share = max(1, round(args.questions * len(unanswerable_all) / len(public)))
    step = max(1, len(answerable_all) // (args.questions - share))
    asked = answerable_all[::step][: args.questions - share] + unanswerable_all[:share]
    answerable = [q for q in asked if q["answers"]]
    unanswerable = [q for q in asked if not q["answers"]]

    tone, seconds = cli(ws, "tune", "generator", "--data", str(HR / "style.jsonl"), "--name", "tone")
    walls.append(("tune generator (style.jsonl)", f"{tone['steps']} steps", seconds))
    _, seconds = cli(ws, "export", "tone")
    walls.append(("export tone (merge + GGUF q8_0)", "", seconds))
    embedder = SentenceTransformerEmbedder()
    style_rows = [json.loads(line) for line in (HR / "style.jsonl").read_text().splitlines()]
    style_vectors = embedder.embed([r["messages"][-1]["content"] for r in style_rows])
    answers = {s: ask_all(ws, asked, s) for s in ("base", "finetuned", "rag", "hybrid")}
    tone_rows = []
    for strategy, given in answers.items():
        signed, similarity = style_scores(given, style_vectors, embedder)
        tone_rows.append((strategy, f"{signed}/{len(given)}", similarity))

    raft, seconds = cli(ws, "tune", "raft", "--epochs", args.raft_epochs, "--name", "raft")
    what = f"{raft['examples']} examples, {raft['steps']} steps"
    walls.append((f"tune raft ({args.raft_epochs} epoch)", what, seconds))
    _, seconds = cli(ws, "export", "raft")
    walls.append(("export raft", "", seconds))
    answers["hybrid (raft)"] = ask_all(ws, asked, "hybrid")
    quality = []
    for strategy in ("base", "rag", "finetuned", "hybrid", "hybrid (raft)"):
        given = answers[strategy]
        by_id = dict(zip([q["id"] for q in asked], given, strict=True))
        correct = sum(contains(by_id[q["id"]]["answer"], q["answers"]) for q in answerable)
        refused = sum(by_id[q["id"]]["refused"] for q in unanswerable)
        wrongly_refused = sum(by_id[q["id"]]["refused"] for q in answerable)
        cited_gold = sum(
            any(c["source"] == q["gold_doc"] for c in by_id[q["id"]]["citations"]) for q in answerable
        )
        quality.append(
            (
                strategy,
                f"{correct}/{len(answerable)}",
                f"{refused}/{len(unanswerable)}",
                wrongly_refused,
                f"{cited_gold}/{len(answerable)}",
            )
        )

    print_table("wall time per command (this machine)", ["command", "what", "seconds"], walls)
    print_table(
        "retriever tuning: dense nDCG@10",
        ["queries", "before", "after"],
        [
            (
                f"held-out synthetic ({retriever['pairs']['val']})",
                retriever["before"]["ndcg@10"],
                retriever["after"]["ndcg@10"],
            ),
            (f"human examples/hr questions ({len(human)})", human_before, human_after),
        ],
    )
    print_table(
        f"tone on {len(asked)} unseen HR questions",
        ["strategy", "signed like the house style", "similarity to style answers"],
        tone_rows,
    )
    print_table(
        f"answers on {len(asked)} HR questions",
        ["strategy", "contains answer", "unanswerable refused", "answerable refused", "cites gold doc"],
        quality,
    )
    print(f"workspace kept at {ws}")


if __name__ == "__main__":
    main()
