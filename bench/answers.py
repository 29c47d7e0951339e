"""Answer quality per model and per example knowledge base: the figures that pick the default model.

    python bench/answers.py [--models smollm2,qwen05,qwen15] [--kbs hr,support] [--questions 34]

For each knowledge base (indexed once) and each builtin model, `--questions` evenly spaced questions go
through `rag` with the example's own ragtune.toml (persona, users). Reported per row: contains-answer
accuracy and token F1 on answerable questions, citation precision and supported-sentence share
(ragtune.citations), refusal accuracy on unanswerable questions, false refusals on answerable ones,
p50/p95 latency and first token. SmolLM2 (the old default) is the baseline in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

from _common import percentiles, print_table

from ragtune import Workspace
from ragtune.config import CONFIG_FILE, update_config
from ragtune.evaluate.metrics import contains_answer, token_f1
from ragtune.evaluate.questions import is_unanswerable, read_questions

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MODELS = {
    "smollm2": ("builtin:smollm2-135m-instruct", "attached"),
    "qwen05": ("builtin:qwen2.5-coder-0.5b-instruct", "inline"),
    "qwen15": ("builtin:qwen2.5-coder-1.5b-instruct", "inline"),
}


def build_workspace(kb: str, root: Path) -> Path:
    """The example's docs (and SQL table, for HR) indexed once in a fresh workspace with its config."""
    folder = root / kb
    Workspace.init(folder)
    example_toml = EXAMPLES / kb / CONFIG_FILE
    if example_toml.is_file():  # the example's persona
        update_config(
            folder / CONFIG_FILE, "answer", tomllib.loads(example_toml.read_text()).get("answer", {})
        )
    ws = Workspace.open(folder)
    ws.ingest([EXAMPLES / kb / "docs"], show_progress=False)
    if (EXAMPLES / kb / "offices.sqlite").is_file():
        url = f"sqlite:///{EXAMPLES / kb / 'offices.sqlite'}"
        ws.ingest_sql(url, "SELECT * FROM offices", "id", show_progress=False)
    ws.close()
    return folder


def run(
    folder: Path, model: str, citations: str, questions: list[dict[str, Any]], context: int
) -> dict[str, Any]:
    update_config(
        folder / CONFIG_FILE, "generator", {"model": model, "context_window": context, "max_tokens": 160}
    )
    update_config(folder / CONFIG_FILE, "answer", {"citations": citations})
    ws = Workspace.open(folder)
    rows = []
    try:
        ws.ask("warm up", strategy="base")
        for q in questions:
            started = time.perf_counter()
            answer = ws.ask(q["question"], strategy="rag", groups=q.get("groups"))
            seconds = time.perf_counter() - started
            verification = answer.verification or {}
            rows.append(
                {
                    "id": q["id"],
                    "answerable": not is_unanswerable(q),
                    "correct": contains_answer(answer.answer, q["answers"]) if q["answers"] else 0.0,
                    "f1": token_f1(answer.answer, q["answers"]) if q["answers"] else 0.0,
                    "refused": answer.refused,
                    "citation_precision": verification.get("citation_precision"),
                    "supported_share": verification.get("supported_share"),
                    "seconds": seconds,
                    "ttft_ms": answer.timings.get("ttft_ms", 0.0),
                    "answer": answer.answer,
                }
            )
    finally:
        ws.close()
    return {"rows": rows}


def summarise(rows: list[dict[str, Any]]) -> dict[str, float]:
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]

    def mean(values: list[float]) -> float:
        return statistics.fmean(values) if values else float("nan")

    p50, p95 = percentiles([r["seconds"] for r in rows])
    return {
        "accuracy": mean([r["correct"] for r in answerable]),
        "f1": mean([r["f1"] for r in answerable]),
        "citation_precision": mean(
            [r["citation_precision"] for r in rows if r["citation_precision"] is not None]
        ),
        "supported": mean([r["supported_share"] for r in rows if r["supported_share"] is not None]),
        "refusal_accuracy": mean([float(r["refused"]) for r in unanswerable]),
        "false_refusals": mean([float(r["refused"]) for r in answerable]),
        "p50_s": p50 / 1000,
        "p95_s": p95 / 1000,
        "ttft_s": statistics.median(r["ttft_ms"] for r in rows) / 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--kbs", default="hr,support")
    parser.add_argument(
        "--questions", type=int, default=34, help="At most N per knowledge base, evenly spaced."
    )
    parser.add_argument("--context", type=int, default=4096)
    parser.add_argument("--citations", default="", help="Force attached|inline for every model.")
    parser.add_argument("--out", type=Path, default=None, help="Write every answer as JSON here.")
    args = parser.parse_args()
    table, everything = [], {}
    with tempfile.TemporaryDirectory(prefix="ragtune-answers-") as tmp:
        for kb in args.kbs.split(","):
            every = read_questions(EXAMPLES / kb / "questions.jsonl")
            questions = every[:: max(1, -(-len(every) // args.questions))]
            folder = build_workspace(kb, Path(tmp))
            for name in args.models.split(","):
                model, citations = MODELS[name]
                citations = args.citations or citations
                result = run(folder, model, citations, questions, args.context)
                s = summarise(result["rows"])
                everything[f"{kb}/{name}/{citations}"] = result["rows"]
                table.append(
                    [
                        kb,
                        f"{name} ({citations})",
                        len(questions),
                        f"{s['accuracy']:.0%}",
                        f"{s['f1']:.2f}",
                        f"{s['citation_precision']:.0%}",
                        f"{s['supported']:.0%}",
                        f"{s['refusal_accuracy']:.0%}",
                        f"{s['false_refusals']:.0%}",
                        f"{s['p50_s']:.1f}",
                        f"{s['p95_s']:.1f}",
                        f"{s['ttft_s']:.1f}",
                    ]
                )
                print(json.dumps({"kb": kb, "model": name, "citations": citations, **s}), flush=True)
    print_table(
        "rag answers per model and knowledge base (2 cores; SmolLM2 = old default, the baseline)",
        [
            "kb",
            "model",
            "questions",
            "accuracy",
            "F1",
            "cite prec",
            "supported",
            "refuse ok",
            "false ref",
            "p50 s",
            "p95 s",
            "ttft s",
        ],
        table,
    )
    if args.out:
        args.out.write_text(json.dumps(everything, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
