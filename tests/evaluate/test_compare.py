"""compare -> report -> advise end to end with the real models on a small question set."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import HR, run_cli

pytestmark = pytest.mark.slow  # real models or a real server: `pytest -m "not slow"` skips these

QUESTIONS = [
    {
        "id": "leave",
        "question": "How many days of paid annual leave do full-time employees get per year?",
        "answers": ["25 days", "25"],
        "gold_doc": "policies/annual-leave.md",
        "category": "fact",
    },
    {
        "id": "carry",
        "question": "How many unused annual leave days can be carried over into the next calendar year?",
        "answers": ["5"],
        "gold_doc": "policies/annual-leave.md",
        "category": "fact",
    },
    {
        "id": "band",
        "question": "What is the midpoint of the L3 salary band?",
        "answers": ["69,000"],
        "gold_doc": "policies/salary-bands.md",
        "category": "fact",
        "groups": ["hr"],
    },
    {
        "id": "mars",
        "question": "What is the company policy on holidays on Mars?",
        "answers": [],
        "gold_doc": None,
        "category": "unanswerable",
    },
]
COMPARE_CONFIG = "\n[compare]\nconsistency_questions = 1\nconsistency_repeats = 2\n"


@pytest.fixture(scope="module")
def compare_workspace(hr_cli_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A copy of the session's HR workspace (so the session one stays as it is) and a question file."""
    ws = tmp_path_factory.mktemp("compare") / "ws"
    shutil.copytree(hr_cli_workspace, ws, symlinks=True)
    with (ws / "ragtune.toml").open("a") as config:
        config.write(COMPARE_CONFIG)
    questions = ws / "questions.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    return ws, questions


@pytest.fixture(scope="module")
def compared(compare_workspace: tuple[Path, Path]) -> dict:
    ws, questions = compare_workspace
    args = ["compare", "--questions", str(questions), "--strategies", "base,rag,finetuned"]
    args += ["--report", str(ws / "report"), "--freshness", str(HR / "freshness.json")]
    args += ["--style", str(HR / "style.jsonl"), "--json"]
    return json.loads(run_cli(*args, cwd=ws).stdout)


def test_compare_measures_every_strategy_with_intervals(compared: dict) -> None:
    assert set(compared["strategies"]) == {"base", "rag"}
    assert compared["skipped"] == ["finetuned"] and any("finetuned: skipped" in n for n in compared["notes"])
    rag, base = compared["strategies"]["rag"], compared["strategies"]["base"]
    for row in (rag, base):
        assert row["n"] == 4 and row["accuracy_n"] == 3
        assert {"accuracy", "f1", "groundedness", "citation_precision", "refusal_accuracy"} <= set(row)
        assert {"latency_p50_ms", "latency_p95_ms", "ttft_p50_ms", "tokens_per_s", "cpu_s_per_query"} <= set(
            row
        )
        assert 0.0 <= row["tone"] <= 1.0 and row["consistency"] is not None
        assert row["style_hit"] is not None and 0.0 <= row["style_hit"] <= 1.0, "the sign-off is looked for"
        assert row["base_model"] == "builtin:smollm2-135m-instruct", "the model rag answers with"
    assert not any("not like with like" in note for note in compared["notes"])
    assert rag["accuracy"] > base["accuracy"], "RAG answers the leave question from the policy; base cannot"
    assert rag["accuracy_ci"][0] <= rag["accuracy"] <= rag["accuracy_ci"][1]
    assert rag["ndcg@10"] > 0.5 and base["ndcg@10"] is None, "retrieval is scored only where it happens"
    assert base["groundedness"] is None and rag["groundedness"] is not None
    assert rag["index_build_seconds"] > 0 and rag["retrieve_p50_ms"] > 0


def test_the_restricted_question_is_answered_only_for_its_group(compared: dict) -> None:
    report = json.loads((Path(compared["report"]).parent / "report.json").read_text())
    band = next(a for a in report["answers"] if a["strategy"] == "rag" and a["id"] == "band")
    assert any(c["source"] == "policies/salary-bands.md" for c in band["citations"]), "asked as an hr caller"


def test_freshness_probe_times_the_change_without_touching_the_workspace(
    compared: dict, compare_workspace: tuple[Path, Path]
) -> None:
    fresh = compared["freshness"]
    assert fresh["sync_seconds"] > 0
    assert fresh["strategies"]["rag"]["answers_new"] and fresh["strategies"]["rag"]["seconds_to_new"] > 0
    assert "27" in fresh["strategies"]["rag"]["after"]
    assert (
        fresh["strategies"]["base"]["update"] == "retrain" and not fresh["strategies"]["base"]["answers_new"]
    )
    ws, _ = compare_workspace
    hits = json.loads(run_cli("search", "paid annual leave days", "-k", "1", "--json", cwd=ws).stdout)["hits"]
    assert "25 days" in hits[0]["text"], "the probe edits a scratch copy, never the real knowledge base"


def test_report_has_the_factor_table_plots_and_answers(compared: dict) -> None:
    folder = Path(compared["report"]).parent
    page = (folder / "report.html").read_text()
    for factor in (
        "accuracy",
        "groundedness",
        "latency",
        "cost",
        "freshness",
        "security / data control",
        "complexity / deployment",
        "use-case fit",
        "tone / consistency",
    ):
        assert f"<td>{factor}</td>" in page
    assert page.count("data:image/png;base64,") >= 3 and "How many days of paid annual leave" in page
    markdown = (folder / "report.md").read_text()
    assert "## Recommendation: " in markdown and "| factor | base | rag |" in markdown
    assert compared["recommendation"]["strategy"] == "rag"


def test_report_renders_in_a_real_headless_browser(compared: dict, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is installed by .ci/run (apt-get install chromium)"
    page = Path(compared["report"])
    shot = tmp_path / "report.png"
    base = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run([*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert 'id="recommendation"' in dom.stdout and "Recommendation: rag" in dom.stdout
    subprocess.run(
        [*base, f"--screenshot={shot}", "--window-size=1200,2000", page.as_uri()],
        capture_output=True,
        timeout=120,
    )
    assert shot.is_file() and shot.stat().st_size > 20_000, "a rendered page, not a blank one"


def test_advise_uses_the_latest_report_and_the_needs_given(
    compared: dict, compare_workspace: tuple[Path, Path]
) -> None:
    ws, _ = compare_workspace
    args = ["advise", "--facts-change", "daily", "--citations", "--json"]  # no --report: the last compare's
    rec = json.loads(run_cli(*args, cwd=ws).stdout)
    assert rec["report"] == str(Path(compared["report"]).parent)
    assert rec["strategy"] == "rag" and rec["needs"]["facts_change"] == "daily"
    assert "cannot cite sources" in rec["excluded"]["base"]
    assert any("after the edit" in r for r in rec["reasons"])
    assert rec["thin_evidence"], "three answerable questions are thin evidence, and it says so"
    bad = run_cli(
        "advise",
        "--report",
        str(Path(compared["report"]).parent),
        "--facts-change",
        "hourly",
        cwd=ws,
        check=False,
    )
    assert bad.returncode == 1 and "facts_change" in bad.stderr and "Traceback" not in bad.stderr


def test_bad_inputs_get_clear_messages(compare_workspace: tuple[Path, Path], tmp_path: Path) -> None:
    ws, questions = compare_workspace
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "ok?", "answers": ["x"]}\n{"id": "b", "answers": ["x"]}\n')
    result = run_cli("compare", "--questions", str(bad), cwd=ws, check=False)
    assert result.returncode == 1 and f"{bad}:2: expected an object" in result.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert (
        f"{empty}: no questions" in run_cli("compare", "--questions", str(empty), cwd=ws, check=False).stderr
    )
    unknown = run_cli(
        "compare", "--questions", str(questions), "--strategies", "rag,magic", cwd=ws, check=False
    )
    assert unknown.returncode == 1 and "unknown strategy 'magic'" in unknown.stderr
    only_tuned = run_cli(
        "compare", "--questions", str(questions), "--strategies", "hybrid", cwd=ws, check=False
    )
    assert only_tuned.returncode == 1 and "no tuned adapter yet" in only_tuned.stderr
    nothing = run_cli("advise", "--report", str(tmp_path), cwd=ws, check=False)
    assert nothing.returncode == 1 and "no finished compare report" in nothing.stderr


def test_an_interrupted_compare_resumes_without_asking_twice(
    compare_workspace: tuple[Path, Path], tmp_path: Path
) -> None:
    ws, questions = compare_workspace
    report = tmp_path / "resumable"
    args = [
        sys.executable,
        "-m",
        "ragtune.cli",
        "compare",
        "--questions",
        str(questions),
        "--strategies",
        "base,rag",
    ]
    args += ["--report", str(report)]
    process = subprocess.Popen(
        args, cwd=ws, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    runs = report / "runs.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if runs.is_file() and len(runs.read_text().splitlines()) >= 2:
            break
        time.sleep(0.2)
    assert process.poll() is None, "compare finished before it could be interrupted"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (report / "report.html").exists(), "no partial report presented as complete"
    done_before = len(runs.read_text().splitlines())
    result = json.loads(
        run_cli(
            "compare",
            "--questions",
            str(questions),
            "--strategies",
            "base,rag",
            "--report",
            str(report),
            "--json",
            cwd=ws,
        ).stdout
    )
    assert any(n.startswith(f"resumed: {done_before} answers") for n in result["notes"])
    keys = [(r["strategy"], r["id"]) for r in map(json.loads, runs.read_text().splitlines())]
    assert len(keys) == len(set(keys)) == 8 and (report / "report.html").is_file()


def test_groundedness_can_be_judged_by_the_generator(
    compare_workspace: tuple[Path, Path], tmp_path: Path
) -> None:
    from ragtune import jobs
    from ragtune.evaluate.compare import Judge, llm_groundedness
    from ragtune.generate import params_from
    from ragtune.workspace import Workspace

    ws_root, _ = compare_workspace
    ws = Workspace.open(ws_root)
    ws.config.compare.judge = "llm"
    ws.config.compare.consistency_questions = 0
    questions = tmp_path / "two.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS[:2]))
    result = jobs.compare(ws, questions, ["rag"], report_dir=tmp_path / "judged", show_progress=False)
    assert result["groundedness_judge"] == "llm"
    assert 0.0 <= result["strategies"]["rag"]["groundedness"] <= 1.0
    assert "groundedness judge llm" in (tmp_path / "judged" / "report.html").read_text()
    passage = "Full-time employees receive 25 days of paid annual leave per calendar year."
    judge = Judge(ws.generator, params_from(ws.config.generator))
    verdict = llm_groundedness(judge, "Employees get 25 days of paid leave. Dogs are welcome.", [passage])
    assert verdict in (0.0, 0.5, 1.0), "one verdict per sentence"
    assert llm_groundedness(judge, "Employees get 25 days.", []) is None
    ws.close()
