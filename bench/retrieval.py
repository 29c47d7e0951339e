"""Retrieval quality per mode: nDCG@10 (and friends) of bm25, dense and hybrid, side by side.

    python bench/retrieval.py [BEIR_DIR ...]

Always includes examples/hr/beir. The single modes are the baseline for hybrid: the target is
hybrid >= max(bm25, dense) on nDCG@10.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import print_table

from ragtune.evaluate.retrieval import METRICS, evaluate_beir

HR_BEIR = Path(__file__).resolve().parents[1] / "examples" / "hr" / "beir"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    for folder in [HR_BEIR, *args.folders]:
        result = evaluate_beir(folder, split=args.split)
        rows = [[mode, *(f"{values[m]:.4f}" for m in METRICS)] for mode, values in result["results"].items()]
        ndcg = {mode: values["ndcg@10"] for mode, values in result["results"].items()}
        verdict = "met" if ndcg["hybrid"] >= max(ndcg["bm25"], ndcg["dense"]) else "NOT met"
        print_table(
            f"{folder.name}: {result['docs']} docs, {result['queries']} queries · "
            f"target hybrid >= max(bm25, dense): {verdict}",
            ["mode", *METRICS],
            rows,
        )


if __name__ == "__main__":
    main()
