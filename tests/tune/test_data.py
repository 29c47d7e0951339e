from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragtune.errors import DataError
from ragtune.tune.data import load_examples
from ragtune.tune.generator import split_validation
from tests.conftest import HR


def _write(path: Path, lines: list[object]) -> Path:
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def test_the_three_shapes_become_prompt_and_completion(tmp_path: Path) -> None:
    data = _write(
        tmp_path / "mixed.jsonl",
        [
            {
                "messages": [
                    {"role": "system", "content": "Be kind."},
                    {"role": "user", "content": "Hi?"},
                    {"role": "assistant", "content": "Hello!"},
                ]
            },
            {"instruction": "Summarise", "input": "Leave is 25 days.", "output": "25 days of leave."},
            {"prompt": "Pay day?", "completion": "The 25th."},
        ],
    )
    chat, alpaca, plain = load_examples(data)
    assert chat.prompt[-1] == {"role": "user", "content": "Hi?"} and chat.completion == "Hello!"
    assert (
        alpaca.prompt[0]["content"] == "Summarise\n\nLeave is 25 days."
        and alpaca.completion == "25 days of leave."
    )
    assert plain.to_record()["completion"] == [{"role": "assistant", "content": "The 25th."}]


def test_every_bad_line_is_reported_with_file_and_line(tmp_path: Path) -> None:
    data = _write(
        tmp_path / "bad.jsonl",
        [
            {"prompt": "fine", "completion": "ok"},
            "{not json",
            {"messages": [{"role": "user", "content": "no answer"}]},
            {"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]},
            {"instruction": "", "output": "x"},
            [1, 2],
            {"text": "unknown shape"},
        ],
    )
    with pytest.raises(DataError) as error:
        load_examples(data)
    message = str(error.value)
    assert "6 bad line(s), nothing was trained" in message
    for line, reason in (
        (2, "not valid JSON"),
        (3, "the last message must be the assistant"),
        (4, "message 1 has role 'robot'"),
        (5, '"instruction" must be non-empty'),
        (6, "expected a JSON object"),
        (7, "unknown shape"),
    ):
        assert f"{data}:{line}: {reason}" in message


def test_the_shipped_style_examples_are_valid_chat_data() -> None:
    examples = load_examples(HR / "style.jsonl")
    assert len(examples) >= 20
    assert all("Brightwell People Team" in e.completion for e in examples)


def test_validation_split_is_seeded_and_disjoint() -> None:
    examples = load_examples(HR / "style.jsonl")
    train, val = split_validation(examples, 0.2, seed=1)
    assert len(val) == round(len(examples) * 0.2) and len(train) + len(val) == len(examples)
    assert not set(map(id, train)) & set(map(id, val))
    assert split_validation(examples, 0.2, seed=1)[1] == val
    assert split_validation(examples[:3], 0.2, seed=1) == (examples[:3], [])


def test_an_api_generator_needs_a_base_model_to_tune(tmp_path: Path) -> None:
    from ragtune.errors import ConfigError
    from ragtune.jobs.tune import generator_tune_config
    from ragtune.workspace import Workspace

    api = '[generator]\nbackend = "openai"\nmodel = "gpt-x"\nbase_url = "http://127.0.0.1:9/v1"\n'
    (tmp_path / "ragtune.toml").write_text(api)
    with pytest.raises(
        ConfigError, match=r"API model, which cannot be LoRA-tuned here: set \[tune.generator\]"
    ):
        generator_tune_config(Workspace.init(tmp_path))
    (tmp_path / "ragtune.toml").write_text(
        api + '[tune.generator]\nbase_model = "builtin:smollm2-135m-instruct"\n'
    )
    config = generator_tune_config(Workspace.open(tmp_path))
    assert config.base_model == "builtin:smollm2-135m-instruct", "a base model given is used as is"


def test_by_default_tuning_trains_the_model_rag_answers_with(tmp_path: Path) -> None:
    from ragtune.jobs.tune import generator_tune_config
    from ragtune.workspace import Workspace

    ws = Workspace.init(tmp_path)
    assert ws.config.tune.generator.base_model == "" and ws.config.generator.model
    assert generator_tune_config(ws).base_model == ws.config.generator.model
