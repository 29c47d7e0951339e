"""RAFT: examples in the hybrid prompt format with oracle + distractors, then a real short training run."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from ragtune.errors import DataError
from ragtune.evaluate.questions import read_questions
from ragtune.generate import GenerationParams
from ragtune.generate.prompts import REFUSAL, rag_messages
from ragtune.index.store import Access
from ragtune.tune.raft import build_raft, with_own_answers
from ragtune.tune.synth import split_sentences
from ragtune.workspace import Workspace
from tests.conftest import HR, HR_DOCS, ScriptedModel, run_cli, workspace_config
from tests.tune.conftest import TUNE_CONFIG, read_jsonl


def test_question_files_report_bad_lines(tmp_path: Path) -> None:
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question": "How many days?", "answers": ["25 days"]}\n{"answers": ["x"]}\n')
    with pytest.raises(DataError, match=r"q.jsonl:2: expected an object with a non-empty \"question\""):
        read_questions(bad)


def test_own_answers_replace_the_quotes_only_where_right_and_grounded(
    make_workspace: Callable[..., Workspace],
) -> None:
    ws = make_workspace()
    ws.ingest([HR_DOCS / "policies"], show_progress=False)  # sources relative to it: annual-leave.md
    rows = [
        {**r, "gold_doc": r["gold_doc"].removeprefix("policies/")}
        for r in read_questions(HR / "questions.jsonl")
        if (r["gold_doc"] or "").startswith("policies/")
    ]
    config = ws.config.tune.raft.model_copy(update={"oracle_share": 0.7})
    built = build_raft(ws.retriever, rows[:12], config, allowed=Access(), persona="You are an HR assistant.")
    asked = [c for c in built.candidates if c.answers]
    without = [c for c in built.candidates if not c.answers]
    assert len(asked) == built.with_oracle >= 4 and len(without) == built.without_oracle >= 2
    quotes = {e["messages"][1]["content"]: e["messages"][2]["content"] for e in built.examples}
    replies = {c.prompt[-1]["content"]: quotes[c.prompt[-1]["content"]] for c in asked}  # right and grounded
    replies |= {c.prompt[-1]["content"]: REFUSAL for c in without}
    wrong, padded = asked[0].prompt[-1]["content"], asked[1].prompt[-1]["content"]
    replies[wrong] = "It is 40 days, whatever your contract says."
    replies[padded] += " Staff also earn a cash bonus of 900 euros every December."
    guessed = without[0].prompt[-1]["content"]
    replies[guessed] = "You get 12 days for that."  # the oracle is not in its prompt: it guessed
    model = ScriptedModel(replies)

    own = with_own_answers(
        built,
        model,
        GenerationParams(),
        embedder=ws.retriever.embedder,
        console=Console(quiet=True),
        show_progress=False,
    )
    assert list(model.prompts) == [c.prompt for c in asked + without], (
        "asked in exactly the prompt hybrid sends"
    )
    assert own.with_oracle == len(asked) - 2
    assert (
        own.skipped["own answer wrong"] == 1 and own.skipped["own answer not grounded in the passages"] == 1
    )
    assert own.skipped["own answer answered without the passage"] == 1
    answered = sorted(
        e["messages"][2]["content"] for e in own.examples if e["messages"][2]["content"] != REFUSAL
    )
    assert answered == sorted(replies[c.prompt[-1]["content"]] for c in asked[2:])
    share = built.without_oracle / (built.with_oracle + built.without_oracle)
    assert own.without_oracle == min(len(without) - 1, round(own.with_oracle * share / (1 - share)))
    assert len(own.examples) == own.with_oracle + own.without_oracle, "the refusals keep their share"

    # refusals="unsupported": where it made something up without the oracle, the refusal is taught;
    # where it answered from what a distractor says, nothing is (that is reading, not guessing).
    read = without[1].prompt[-1]["content"]
    replies[read] = split_sentences(without[1].passages[0].text)[0]
    taught = with_own_answers(
        built,
        ScriptedModel(replies),
        GenerationParams(),
        embedder=ws.retriever.embedder,
        console=Console(quiet=True),
        refusals="unsupported",
        show_progress=False,
    )
    refused = {e["messages"][1]["content"] for e in taught.examples if e["messages"][2]["content"] == REFUSAL}
    own_refusals = {c.prompt[-1]["content"] for c in without} - {guessed, read}
    assert read not in refused and refused <= own_refusals | {guessed}
    keep = round(taught.with_oracle * share / (1 - share))
    assert taught.without_oracle == len(refused) == min(keep, len(own_refusals) + 1)
    assert (guessed in refused) == (keep > len(own_refusals)), "the model's own refusals come first"


def test_no_refusal_is_taught_where_a_distractor_holds_the_answer(
    make_workspace: Callable[..., Workspace],
) -> None:
    """A refusal beside a passage that answers the question would teach false refusals."""
    ws = make_workspace()
    ws.ingest([HR_DOCS / "policies"], show_progress=False)
    rows = [
        {
            "question": r["question"],
            "answers": ["Brightwell"],
            "gold_doc": r["gold_doc"].removeprefix("policies/"),
        }
        for r in read_questions(HR / "questions.jsonl")
        if (r["gold_doc"] or "").startswith("policies/")
    ][:12]  # every policy names the company: some retrieved distractors will too
    config = ws.config.tune.raft.model_copy(update={"oracle_share": 0.0})
    built = build_raft(ws.retriever, rows, config, allowed=Access(), persona="You are an HR assistant.")
    held = built.skipped.get("a distractor holds the answer", 0)
    assert held >= 1 and built.with_oracle == 0
    assert built.without_oracle + sum(built.skipped.values()) == len(rows)
    for candidate in built.candidates:
        assert not any("brightwell" in c.text.lower() for c in candidate.passages)


@pytest.mark.slow  # a real model
def test_raft_examples_hide_the_oracle_among_real_distractors(synth_workspace: tuple[Path, dict]) -> None:
    ws_root, synth = synth_workspace
    ws = Workspace.open(ws_root)
    config = ws.config.tune.raft.model_copy(update={"oracle_share": 0.5, "distractors": 2})
    built = build_raft(
        ws.retriever,
        read_questions(Path(synth["out"])),
        config,
        allowed=ws.training_access(),
        persona=ws.config.answer.persona,
    )
    assert built.with_oracle >= 2 and built.without_oracle >= 2
    assert len(built.examples) == built.with_oracle + built.without_oracle
    for example in built.examples:
        system, user, assistant = example["messages"]
        assert "salary-bands" not in system["content"], "restricted text never enters training data"
        blocks = re.findall(r'<passage id="\d+" source="[^"]*">\n.*?\n</passage>', system["content"], re.S)
        sent = rag_messages(user["content"], blocks, style="inline", persona=ws.config.answer.persona)
        assert [system, user] == sent, (
            "exactly the prompt hybrid sends: passages in the system, the question alone"
        )
        passages = re.findall(
            r'<passage id="(\d+)" source="[^"]*">\n(.*?)\n</passage>', system["content"], re.S
        )
        assert 2 <= len(passages) <= 3 and [int(n) for n, _ in passages] == list(range(1, len(passages) + 1))
        if assistant["content"] == REFUSAL:
            continue
        quote, n = re.fullmatch(r'"(.+)" \[(\d)\]', assistant["content"]).groups()  # type: ignore[union-attr]
        assert quote in passages[int(n) - 1][1], "the answer quotes the passage it cites"

    first = config.model_copy(update={"target": "answer_quote"})
    rows = read_questions(Path(synth["out"]))
    answered = build_raft(
        ws.retriever, rows, first, allowed=ws.training_access(), persona=ws.config.answer.persona
    )
    by_question = {r["question"]: r for r in rows}
    for example in answered.examples:
        _, user, assistant = example["messages"]
        if assistant["content"] != REFUSAL:
            answer, quote = assistant["content"].split(': "', 1)
            assert answer == by_question[user["content"]]["answers"][0].strip(), "the short answer leads"
            assert re.fullmatch(r'.+" \[\d\]', quote)


@pytest.mark.slow  # a real model
def test_tune_raft_trains_an_adapter_that_hybrid_uses(
    synth_workspace: tuple[Path, dict], tmp_path: Path
) -> None:
    """On the default model: by default RAFT's targets are its own checked answers, and the 135M test
    model gets too few right (1 of 16) to be a fair test of that."""
    ws = tmp_path / "ws"
    shutil.copytree(synth_workspace[0], ws)
    (ws / "ragtune.toml").write_text(workspace_config(HR, small_model=False) + TUNE_CONFIG)
    synth = synth_workspace[1]
    report = json.loads(
        run_cli(
            "tune",
            "raft",
            "--data",
            synth["out"],
            "--public",
            "--max-steps",
            "1",
            "--name",
            "raft",
            "--json",
            cwd=ws,
            timeout=1200,
        ).stdout
    )
    assert report["steps"] == 1 and report["examples"] == report["with_oracle"] + report["without_oracle"]
    manifest = json.loads((ws / ".ragtune" / "adapters" / "raft" / "manifest.json").read_text())
    assert manifest["kind"] == "raft" and manifest["citations"] == "inline"
    assert manifest["raft_target"] == "self", "by default the targets are the model's own checked answers"
    trained = read_jsonl(ws / ".ragtune" / "adapters" / "raft" / "raft.jsonl")
    assert len(trained) == report["examples"]
    assert not any(re.fullmatch(r'".+" \[\d\]', e["messages"][-1]["content"]) for e in trained), "no quotes"
    assert manifest["hyperparameters"]["max_length"] >= 1024, "long enough for three passages"
    answer = json.loads(
        run_cli(
            "ask", "How many days of paid annual leave do we get?", "--strategy", "hybrid", "--json", cwd=ws
        ).stdout
    )
    assert answer["strategy"] == "hybrid" and answer["passages"]
    assert answer["debug"]["generator"].endswith("+adapter"), answer["debug"]


@pytest.mark.slow  # a real model
def test_tone_trained_with_passages_is_set_in_the_rag_prompt(synth_workspace: tuple[Path, dict]) -> None:
    ws, _ = synth_workspace
    args = [
        "tune",
        "generator",
        "--data",
        str(HR / "style.jsonl"),
        "--public",
        "--with-passages",
        "--max-steps",
        "1",
    ]
    report = json.loads(run_cli(*args, "--name", "tonep", "--json", cwd=ws).stdout)
    assert report["steps"] == 1
    run = ws / ".ragtune" / "adapters" / "tonep"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["with_passages"] and manifest["prompt_layout"] and manifest["citations"] == "inline"
    assert manifest["hyperparameters"]["max_length"] >= 1024, "long enough for the passages"
    written = [json.loads(line) for line in (run / "with-passages.jsonl").read_text().splitlines()]
    style = [json.loads(line)["messages"] for line in (HR / "style.jsonl").read_text().splitlines()]
    assert len(written) == len(style)
    persona = Workspace.open(ws).config.answer.persona
    for example, original in zip(written, style, strict=True):
        system, user, assistant = example["messages"]
        assert (user, assistant) == (original[-2], original[-1]), "the question and the answer as written"
        blocks = re.findall(r'<passage id="\d+" source="[^"]*">\n.*?\n</passage>', system["content"], re.S)
        assert len(blocks) == 3, "as many passages as rag sends"
        assert [system, user] == rag_messages(user["content"], blocks, style="inline", persona=persona)
        assert "salary-bands" not in system["content"], "restricted text never enters training data"


def test_a_raft_quote_is_the_passage_text_byte_for_byte() -> None:
    from ragtune.tune.raft import raft_quote
    from ragtune.types import Chunk

    text = (
        "| Step                       | Deadline      |\n"
        "|----------------------------|---------------|\n"
        "| Acknowledgement of receipt | Within 7 days |\n"
    )
    chunk = Chunk(
        "c1", "d1", "whistleblowing.md", "Whistleblowing", text, 0, len(text), (), None, None, [], {}
    )
    normalised = "| Acknowledgement of receipt | Within 7 days |"
    quote = raft_quote(chunk, normalised, ["7 days"])
    assert quote is not None and quote in chunk.text and "7 days" in quote
    assert raft_quote(chunk, None, ["7 days"]) == quote
    assert raft_quote(chunk, "not in the passage at all", ["90 days"]) is None
