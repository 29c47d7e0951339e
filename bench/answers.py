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

from ragtune.errors import RagtuneError
from ragtune.workspace import Workspace

HR = Path(__file__).resolve().parents[1] / "examples" / "hr"
MODELS = {"smollm2": "builtin:smollm2-135m-instruct", "gemma3": "builtin:gemma3-270m"}


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
            ws.config.generator.model = MODELS[name]
            ws.__dict__.pop("generator", None)
            try:
                ws.generator  # noqa: B018 - load now, outside the timed loop
            except RagtuneError as exc:
                print(f"skipping {name}: {exc}")
                continue
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
