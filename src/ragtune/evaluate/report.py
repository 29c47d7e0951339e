"""The compare report: report.json (everything), report.md (tables) and one self-contained report.html.

Plots are matplotlib PNGs embedded as data URIs, so the HTML opens anywhere with no network and
no build step (the web UI serves the same file).
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path
from typing import Any

from ragtune.manifest import write_json_atomic

HEADLINE = (
    ("accuracy", "accuracy", True),
    ("f1", "token F1", True),
    ("semantic", "semantic sim.", False),
    ("refusal_accuracy", "refusal acc.", True),
    ("groundedness", "groundedness", True),
    ("citation_precision", "citation prec.", True),
    ("ndcg@10", "nDCG@10", False),
    ("tone", "tone sim.", False),
    ("style_hit", "style hit", True),
)
PLOTTED = ("accuracy", "f1", "refusal_accuracy", "groundedness", "citation_precision", "ndcg@10", "tone")


def _fmt(value: Any, percent: bool = False) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value * 100:.0f}%" if percent else f"{value:.2f}"
    return str(value)


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def _with_ci(row: dict[str, Any], metric: str, percent: bool) -> str:
    ci = row.get(f"{metric}_ci")
    value = _fmt(row.get(metric), percent)
    if not ci or row.get(metric) is None:
        return value
    low, high = (f"{v * 100:.0f}" if percent else f"{v:.2f}" for v in ci)
    return f"{value} [{low}–{high}]"


def headline_rows(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    columns = [
        "strategy",
        *(label for _, label, _ in HEADLINE),
        "p50 / p95 ms",
        "first token ms",
        "tokens/s",
        "consistency",
    ]
    rows = []
    for name, row in result["strategies"].items():
        model = row.get("base_model") or row.get("model")
        rows.append(
            [
                f"{name} ({_model_name(model)})" if model else name,
                *(_with_ci(row, metric, percent) for metric, _, percent in HEADLINE),
                f"{_ms(row['latency_p50_ms'])} / {_ms(row['latency_p95_ms'])}",
                _ms(row["ttft_p50_ms"]),
                _ms(row["tokens_per_s"]),
                _fmt(row["consistency"]),
            ]
        )
    return columns, rows


def _model_name(model: str) -> str:
    """'builtin:qwen2.5-coder-0.5b-instruct' -> 'qwen2.5-coder-0.5b-instruct'; a path -> its file name."""
    return model.removeprefix("builtin:").rstrip("/").rsplit("/", 1)[-1]


def factor_rows(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The article's decision factors, each filled with this run's measured value per strategy."""
    strategies = list(result["strategies"])
    fresh = (result.get("freshness") or {}).get("strategies", {})
    sync = (result.get("freshness") or {}).get("sync_seconds")

    def cell(name: str, factor: str) -> str:
        row = result["strategies"][name]
        retrieves = row["index_build_seconds"] > 0 or "index (dense + BM25)" in row["parts"]
        if factor == "accuracy":
            return f"{_with_ci(row, 'accuracy', True)} contain an accepted answer"
        if factor == "groundedness":
            if row["groundedness"] is None:
                return "no sources to check against"
            return (
                f"{_fmt(row['groundedness'], True)} of sentences supported; "
                f"citations {_fmt(row['citation_precision'], True)} on the gold doc"
            )
        if factor == "retrieval quality":
            if not retrieves:
                return "no retrieval"
            return (
                f"nDCG@10 {_fmt(row['ndcg@10'])}, Recall@k {_fmt(row['recall@k'])}, MRR {_fmt(row['mrr@k'])}"
            )
        if factor == "latency":
            return (
                f"p50 {_ms(row['latency_p50_ms'])} ms, p95 {_ms(row['latency_p95_ms'])} ms "
                f"(retrieve {_ms(row['retrieve_p50_ms'])} ms)"
            )
        if factor == "cost":
            money = (
                f"; {row['money_per_1000_queries']:.3f} per 1000 queries"
                if "money_per_1000_queries" in row
                else ""
            )
            return (
                f"training {row['training_seconds']:.0f}s, index {row['index_build_seconds']:.0f}s, "
                f"{_fmt(row['cpu_s_per_query'])} CPU-s/query{money}"
            )
        if factor in ("freshness", "flexibility / maintenance"):
            probe = fresh.get(name)
            if probe is None:
                return (
                    "not probed (use --freshness)"
                    if factor == "freshness"
                    else ("a document change: re-ingest" if retrieves else "a document change: retrain")
                )
            if probe["answers_new"]:
                return f"new value answered {probe['seconds_to_new']:.1f}s after the edit (re-ingest {sync:.1f}s)"
            retrain = probe.get("retrain_seconds")
            return "old value still answered" + (
                f"; retraining costs {retrain:.0f}s" if retrain else "; cannot be updated"
            )
        if factor == "tone / consistency":
            return (
                f"style hit rate {_fmt(row.get('style_hit'), True)}, style similarity {_fmt(row['tone'])}, "
                f"run-to-run similarity {_fmt(row['consistency'])}"
            )
        if factor == "security / data control":
            return (
                "per-user access enforced at retrieval; facts stay in the index"
                if retrieves
                else "no per-user access: whatever is in the weights is shown to everyone"
            )
        if factor == "complexity / deployment":
            return ", ".join(row["parts"])
        if factor == "use-case fit":
            return (
                "recommended"
                if result["recommendation"]["strategy"] == name
                else (result["recommendation"]["excluded"].get(name, "measured, not chosen"))
            )
        return ""

    factors = (
        "accuracy",
        "groundedness",
        "retrieval quality",
        "latency",
        "cost",
        "freshness",
        "flexibility / maintenance",
        "tone / consistency",
        "security / data control",
        "complexity / deployment",
        "use-case fit",
    )
    return ["factor", *strategies], [[f, *(cell(s, f) for s in strategies)] for f in factors]


def _markdown_table(columns: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(columns: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _figures(result: dict[str, Any]) -> dict[str, str]:
    """PNG data URIs: metrics with intervals, latency distributions, accuracy vs latency, freshness."""
    os.environ.setdefault("MPLCONFIGDIR", str(Path.home() / ".cache" / "ragtune" / "matplotlib"))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["strategies"]
    names = list(rows)
    colours = [f"C{i}" for i in range(len(names))]
    figures: dict[str, str] = {}

    def encode(fig: Any) -> str:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()

    metrics = [m for m in PLOTTED if any(rows[n].get(m) is not None for n in names)]
    if metrics:
        fig, axes = plt.subplots(1, len(metrics), figsize=(2.6 * len(metrics), 2.8), squeeze=False)
        for ax, metric in zip(axes[0], metrics, strict=True):
            values = [rows[n].get(metric) or 0.0 for n in names]
            errors = [
                [0.0, 0.0]
                if not rows[n].get(f"{metric}_ci")
                else [max(0.0, v - rows[n][f"{metric}_ci"][0]), max(0.0, rows[n][f"{metric}_ci"][1] - v)]
                for n, v in zip(names, values, strict=True)
            ]
            ax.bar(names, values, color=colours, yerr=list(zip(*errors, strict=True)), capsize=3)
            ax.set_title(metric, fontsize=9)
            ax.set_ylim(0, 1.05)
            ax.tick_params(axis="x", labelrotation=45, labelsize=8)
        fig.suptitle("metrics per strategy (error bars: 95% bootstrap interval)", fontsize=10, y=1.06)
        figures["metrics"] = encode(fig)

    latencies = [rows[n]["latencies_ms"] for n in names]
    if any(latencies):
        fig, ax = plt.subplots(figsize=(6, 2.8))
        ax.boxplot([v or [0.0] for v in latencies], tick_labels=names, showfliers=True)
        ax.set_ylabel("ms per answer")
        ax.set_title("latency distribution", fontsize=10)
        figures["latency"] = encode(fig)

        fig, ax = plt.subplots(figsize=(5, 3.2))
        for name, colour in zip(names, colours, strict=True):
            if rows[name].get("accuracy") is not None and rows[name]["latency_p50_ms"] is not None:
                ax.scatter(
                    rows[name]["latency_p50_ms"], rows[name]["accuracy"], color=colour, s=60, label=name
                )
                ax.annotate(
                    name,
                    (rows[name]["latency_p50_ms"], rows[name]["accuracy"]),
                    fontsize=8,
                    xytext=(4, 4),
                    textcoords="offset points",
                )
        ax.set_xlabel("p50 latency (ms)")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1.05)
        ax.set_title("accuracy vs latency", fontsize=10)
        figures["tradeoff"] = encode(fig)

    fresh = (result.get("freshness") or {}).get("strategies")
    if fresh:
        fig, ax = plt.subplots(figsize=(6, 2.6))
        labels, values, texts = [], [], []
        for name, probe in fresh.items():
            labels.append(name)
            seconds = probe["seconds_to_new"] if probe["answers_new"] else probe.get("retrain_seconds")
            values.append(seconds or 0.0)
            texts.append(
                f"{seconds:.1f}s"
                if probe["answers_new"]
                else (f"retrain {seconds:.0f}s" if seconds else "never")
            )
        bars = ax.barh(labels, values, color=["C2" if fresh[n]["answers_new"] else "C3" for n in labels])
        for bar, text in zip(bars, texts, strict=True):
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {text}", va="center", fontsize=8)
        ax.set_xlabel("seconds until the new value is answered")
        ax.set_title("freshness: a changed fact", fontsize=10)
        figures["freshness"] = encode(fig)
    return figures


STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1200px;color:#1d2330;padding:0 1rem}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #dde;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.6rem 0;width:100%}th,td{border:1px solid #dde;padding:.3rem .5rem;
vertical-align:top;text-align:left}th{background:#f3f4f8}.verdict{background:#eef7ee;border:1px solid #9c9;
padding:1rem;border-radius:6px}.warn{color:#8a4b00}.ok{color:#176317}.bad{color:#9b1c1c}
img{max-width:100%;margin:.5rem 0}.answers td{font-size:12.5px;max-width:320px}code{font-size:12px}
"""


def render_html(
    result: dict[str, Any], questions: list[dict[str, Any]], records: list[dict[str, Any]]
) -> str:
    rec = result["recommendation"]
    columns, rows = headline_rows(result)
    factor_columns, factors = factor_rows(result)
    figures = _figures(result)
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<title>ragtune compare report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>RAG, fine-tuning or both? — measured on your questions</h1>",
        f"<p>{result['n_questions']} questions from <code>{html.escape(result['questions'])}</code> · "
        f"generator <code>{html.escape(result['generator'])}</code> · groundedness judge "
        f"{html.escape(result.get('groundedness_judge', 'local'))} · {result['seconds']:.0f}s · "
        f"{html.escape(result['created_at'])} · ragtune {html.escape(result['ragtune_version'])}</p>",
        f'<div class="verdict" id="recommendation"><h2 style="margin-top:0">Recommendation: '
        f"{html.escape(rec['strategy'])}</h2><ul>",
        *(f"<li>{html.escape(r)}</li>" for r in rec["reasons"]),
        "</ul>",
        *(f'<p class="warn">⚠ {html.escape(w)}</p>' for w in rec["warnings"]),
        "</div>",
        "<h2>Headline</h2>",
        _html_table(columns, rows, "headline"),
        "<h2>The decision factors, measured</h2>",
        _html_table(factor_columns, factors, "factors"),
        "<h2>Plots</h2>",
        *(f'<img alt="{name}" src="{uri}">' for name, uri in figures.items()),
    ]
    if result["notes"]:
        parts += ["<h2>Notes</h2><ul>", *(f"<li>{html.escape(n)}</li>" for n in result["notes"]), "</ul>"]
    strategies = list(result["strategies"])
    by_key = {(r["strategy"], r["id"]): r for r in records}
    parts.append(
        "<h2>Answers side by side</h2><table class=answers><thead><tr><th>question</th><th>accepted</th>"
    )
    parts += [f"<th>{html.escape(s)}</th>" for s in strategies]
    parts.append("</tr></thead><tbody>")
    for q in questions:
        cells = []
        for s in strategies:
            r = by_key.get((s, str(q["id"])))
            if r is None:
                cells.append("<td>–</td>")
                continue
            right = r["scores"].get("accuracy") if q.get("answers") else r["scores"].get("refusal_accuracy")
            mark = '<span class="ok">✓</span> ' if right else '<span class="bad">✗</span> '
            cites = ", ".join(sorted({c["source"] for c in r["citations"]}))
            cells.append(
                f"<td>{mark}{html.escape(r['answer'])}"
                + (f"<br><small>{html.escape(cites)}</small>" if cites else "")
                + "</td>"
            )
        accepted = " | ".join(q.get("answers", [])) or "(refuse)"
        parts.append(
            f"<tr><td>{html.escape(q['question'])}</td><td>{html.escape(accepted)}</td>{''.join(cells)}</tr>"
        )
    parts.append("</tbody></table></body></html>")
    return "".join(parts)


def render_markdown(result: dict[str, Any]) -> str:
    rec = result["recommendation"]
    columns, rows = headline_rows(result)
    factor_columns, factors = factor_rows(result)
    lines = [
        "# ragtune compare report",
        "",
        f"{result['n_questions']} questions from `{result['questions']}`, generator `{result['generator']}`, "
        f"{result['seconds']:.0f}s, {result['created_at']}.",
        "",
        f"## Recommendation: {rec['strategy']}",
        "",
        *(f"- {r}" for r in rec["reasons"]),
        *(f"- **warning:** {w}" for w in rec["warnings"]),
        "",
        "## Headline",
        "",
        _markdown_table(columns, rows),
        "",
        "## The decision factors, measured",
        "",
        _markdown_table(factor_columns, factors),
        "",
    ]
    if result["notes"]:
        lines += ["## Notes", "", *(f"- {n}" for n in result["notes"]), ""]
    return "\n".join(lines)


def write_report(
    result: dict[str, Any], questions: list[dict[str, Any]], records: list[dict[str, Any]], folder: Path
) -> Path:
    """report.json, report.md and report.html in `folder`; the HTML is written last (it marks done)."""
    folder.mkdir(parents=True, exist_ok=True)
    payload = {**result, "report": str(folder / "report.html"), "answers": records}
    write_json_atomic(folder / "report.json", payload)
    (folder / "report.md").write_text(render_markdown(result))
    temp = folder / "report.html.tmp"
    temp.write_text(render_html(result, questions, records), encoding="utf-8")
    temp.replace(folder / "report.html")
    return folder / "report.html"
