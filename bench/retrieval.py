"""Retrieval quality per mode and per fusion: document nDCG@10 of bm25, dense, RRF and convex fusion.

    python bench/retrieval.py [BEIR_DIR ...]

Always includes both examples (examples/hr/beir, examples/support/beir). The single modes are the
baseline for hybrid: the target is hybrid >= max(bm25, dense) on nDCG@10 on every set, with the
default fusion (config.py) and, for reference, with alpha fitted on the set itself (an upper bound).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import print_table

from ragtune.config import RetrievalConfig
from ragtune.evaluate.retrieval import METRICS, load_beir
from ragtune.jobs.beir import beir_workspace
from ragtune.tune.fusion import ALPHAS, fusion_sweep

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DEFAULTS = RetrievalConfig()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    folders = [p for p in (EXAMPLES / "hr" / "beir", EXAMPLES / "support" / "beir") if p.is_dir()]
    summary = []
    for folder in [*folders, *args.folders]:
        _, queries, qrels = load_beir(folder, args.split)
        ws = beir_workspace(folder, show_progress=False)
        try:
            results = fusion_sweep(ws.retriever, queries, qrels, ALPHAS)
        finally:
            ws.close()
        default = "rrf" if DEFAULTS.fusion == "rrf" else f"convex a={DEFAULTS.alpha:.2f}"
        best = max((n for n in results if n.startswith("convex")), key=lambda n: results[n]["ndcg@10"])
        shown = ["bm25", "dense", "rrf", *(f"convex a={a:.2f}" for a in ALPHAS[::2])]
        rows = [
            [name + (" (default)" if name == default else ""), *(f"{results[name][m]:.4f}" for m in METRICS)]
            for name in dict.fromkeys([*shown, default, best])
        ]
        floor = max(results["bm25"]["ndcg@10"], results["dense"]["ndcg@10"])
        verdict = "met" if results[default]["ndcg@10"] >= floor else "NOT met"
        print_table(
            f"{folder}: {len(qrels)} queries · default hybrid >= max(bm25, dense): {verdict}",
            ["retrieval", *METRICS],
            rows,
        )
        summary.append(
            [
                folder.parent.name if folder.name == "beir" else folder.name,
                *(f"{results[n]['ndcg@10']:.4f}" for n in ("bm25", "dense", "rrf", default)),
                best,
            ]
        )
    print_table(
        "nDCG@10 summary",
        ["set", "bm25", "dense", "rrf", f"default ({default})", "best convex on the set"],
        summary,
    )


if __name__ == "__main__":
    main()
