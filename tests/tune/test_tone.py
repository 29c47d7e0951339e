"""`tune tone`: the voice learnt on bare style examples, then its right answers in the house style,
set in the hybrid prompt, as the training data of the adapter hybrid serves."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from ragtune.generate import GenerationParams
from ragtune.generate.prompts import REFUSAL, rag_messages
from ragtune.index.store import Access
from ragtune.tune.tone import distil_in_voice
from ragtune.workspace import Workspace
from tests.conftest import HR, HR_DOCS, ScriptedModel, init_workspace, run_cli, workspace_config

SIGN_OFF = "— Brightwell People Team"
PASSAGE = re.compile(r'<passage id="\d+" source="[^"]*">\n.*?\n</passage>', re.S)


def test_only_right_answers_in_the_house_style_are_kept_in_the_hybrid_prompt(
    make_workspace: Callable[..., Workspace],
) -> None:
    ws = make_workspace()
    ws.ingest([HR_DOCS / "policies"], show_progress=False)
    rows = [
        {"question": "How many days of paid annual leave do we get?", "answers": ["25 days"]},
        {"question": "How many unused leave days carry over?", "answers": ["5"]},
        {"question": "When must carried-over leave be used?", "answers": ["31 March"]},
        {"question": "Who approves leave requests?", "answers": ["your manager"]},
        {"question": "How much annual leave do full-time staff have?", "answers": ["25 days"]},
        {"question": "Is there a question without an answer?", "answers": [" "]},
    ]
    voice = ScriptedModel(
        {
            rows[0]["question"]: f"You get 25 days a year, on top of public holidays.\n\n{SIGN_OFF}",
            rows[1]["question"]: f"You can carry over 3 days.\n\n{SIGN_OFF}",  # wrong
            rows[2]["question"]: "Use them by 31 March. [1]",  # right, but not in the house style
            rows[3]["question"]: REFUSAL,
            # right and signed, but padded from memory: no passage says anything about a cash bonus
            rows[4][
                "question"
            ]: f"Full-time staff have 25 days. Unused days earn a cash bonus of 900 euros each "
            f"December.\n\n{SIGN_OFF}",
        }
    )
    built = distil_in_voice(
        ws.retriever,
        voice,
        rows,
        GenerationParams(),
        passages=3,
        allowed=Access(),
        persona="You are an HR assistant.",
        marker=SIGN_OFF,
        console=Console(quiet=True),
        show_progress=False,
    )
    assert built.asked == 5 and len(voice.prompts) == 5, "a row with no answer to check is not asked"
    assert dict(built.rejected) == {
        "wrong": 1,
        "not grounded in the passages": 1,
        "not in the house style": 1,
        "refused": 1,
        "no answer to check": 1,
    }
    [kept] = built.examples
    system, user, assistant = kept["messages"]
    assert assistant["content"] == voice.replies[rows[0]["question"]]
    blocks = PASSAGE.findall(system["content"])
    assert len(blocks) == 3 and "annual-leave" in system["content"]
    assert [system, user] == rag_messages(rows[0]["question"], blocks, persona="You are an HR assistant.")


@pytest.mark.slow  # real Qwen2.5 0.5B: trains the voice (20 steps), distils, trains the final adapter
def test_tune_tone_trains_an_adapter_that_hybrid_serves(tmp_path: Path) -> None:
    config = workspace_config(HR, small_model=False) + "\n[tune.tone]\nsteps = 2\n"
    ws = init_workspace(tmp_path / "ws", config)
    run_cli("ingest", str(HR_DOCS / "policies"), cwd=ws)
    rows = [json.loads(line) for line in (HR / "questions.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if (r["gold_doc"] or "").startswith("policies/")][:8]
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows))

    args = ["tune", "tone", "--data", str(HR / "style.jsonl"), "--public", "--questions", str(questions)]
    report = json.loads(run_cli(*args, "--name", "tone", "--json", cwd=ws, timeout=1200).stdout)
    assert report["asked"] == len(rows) and report["kept"] >= 1, report
    assert report["kept"] + sum(report["rejected"].values()) == len(rows)
    assert report["steps"] == 2

    adapters = ws / ".ragtune" / "adapters"
    voice = json.loads((adapters / "tone-voice" / "manifest.json").read_text())
    assert voice["steps"] == 20 and Path(voice["exports"]["gguf"]).is_file(), "the voice model answered"
    manifest = json.loads((adapters / "tone" / "manifest.json").read_text())
    assert manifest["kind"] == "tone" and manifest["voice"] == "tone-voice"
    assert manifest["prompt_layout"] and manifest["citations"] == "inline"
    assert manifest["distilled"]["kept"] == report["kept"] and manifest["distilled"]["marker"] == SIGN_OFF
    assert manifest["hyperparameters"]["max_length"] >= 1024, "long enough for the passages"

    trained = [json.loads(line) for line in (adapters / "tone" / "tone.jsonl").read_text().splitlines()]
    assert len(trained) == report["kept"], (
        "only the distilled answers: bare style examples answer from memory"
    )
    persona = Workspace.open(ws).config.answer.persona
    by_question = {r["question"]: r for r in rows}
    for example in trained:
        system, user, assistant = example["messages"]
        assert [system, user] == rag_messages(
            user["content"], PASSAGE.findall(system["content"]), persona=persona
        )
        accepted = by_question[user["content"]]["answers"]
        assert any(a.lower() in assistant["content"].lower() for a in accepted), assistant
        assert SIGN_OFF in assistant["content"]

    answer = json.loads(run_cli("ask", rows[0]["question"], "--strategy", "hybrid", "--json", cwd=ws).stdout)
    assert answer["debug"]["adapter"] == "tone", "hybrid serves the newest adapter trained in its prompt"
    assert answer["passages"] and answer["debug"]["generator"].endswith("+adapter")
