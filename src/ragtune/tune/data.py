"""Training data in any of the three common JSONL shapes, validated line by line before any training.

Every example becomes (prompt messages, assistant completion): the loss is computed on the
completion only, so the model learns to answer, not to repeat questions.

    chat:               {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}
    alpaca:             {"instruction": "...", "input": "...", "output": "..."}
    prompt/completion:  {"prompt": "...", "completion": "..."}
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragtune.errors import DataError

ROLES = {"system", "user", "assistant"}
MAX_REPORTED = 20


@dataclass(frozen=True)
class Example:
    prompt: list[dict[str, str]]
    completion: str

    def to_record(self) -> dict[str, Any]:
        """TRL's conversational prompt-completion format."""
        return {"prompt": self.prompt, "completion": [{"role": "assistant", "content": self.completion}]}


def _from_chat(value: Any) -> Example:
    messages = value["messages"]
    if not isinstance(messages, list) or not messages:
        raise ValueError('"messages" must be a non-empty list')
    for position, message in enumerate(messages, start=1):
        if not isinstance(message, dict) or set(message) - {"role", "content", "name"}:
            raise ValueError(f"message {position} must be an object with role and content")
        if message.get("role") not in ROLES:
            raise ValueError(
                f"message {position} has role {message.get('role')!r}; use system, user or assistant"
            )
        if not isinstance(message.get("content"), str) or not message["content"].strip():
            raise ValueError(f"message {position} has no text content")
    if messages[-1]["role"] != "assistant":
        raise ValueError("the last message must be the assistant's answer to learn")
    if not any(m["role"] == "user" for m in messages[:-1]):
        raise ValueError("no user message before the assistant's answer")
    prompt = [{"role": m["role"], "content": m["content"]} for m in messages[:-1]]
    return Example(prompt, messages[-1]["content"])


def _from_alpaca(value: Any) -> Example:
    instruction, output = value.get("instruction"), value.get("output")
    extra = value.get("input") or ""
    if not isinstance(instruction, str) or not instruction.strip():
        raise ValueError('"instruction" must be non-empty text')
    if not isinstance(output, str) or not output.strip():
        raise ValueError('"output" must be non-empty text')
    if not isinstance(extra, str):
        raise ValueError('"input" must be text')
    content = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    return Example([{"role": "user", "content": content}], output)


def _from_prompt_completion(value: Any) -> Example:
    prompt, completion = value.get("prompt"), value.get("completion")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError('"prompt" must be non-empty text')
    if not isinstance(completion, str) or not completion.strip():
        raise ValueError('"completion" must be non-empty text')
    return Example([{"role": "user", "content": prompt}], completion)


def parse_example(value: Any) -> Example:
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    if "messages" in value:
        return _from_chat(value)
    if "instruction" in value:
        return _from_alpaca(value)
    if "prompt" in value:
        return _from_prompt_completion(value)
    raise ValueError('unknown shape: expected "messages", "instruction"/"output" or "prompt"/"completion"')


def load_examples(path: Path) -> list[Example]:
    """All examples of a JSONL file, or a DataError listing every bad line as FILE:LINE: reason."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    examples: list[Example] = []
    problems: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                examples.append(parse_example(json.loads(line)))
            except json.JSONDecodeError as exc:
                problems.append(f"{path}:{number}: not valid JSON ({exc.msg})")
            except (ValueError, TypeError, KeyError) as exc:
                problems.append(f"{path}:{number}: {exc}")
    if problems:
        shown = problems[:MAX_REPORTED]
        more = f"\n... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
        raise DataError(f"{len(problems)} bad line(s), nothing was trained:\n" + "\n".join(shown) + more)
    if not examples:
        raise DataError(f"{path}: no examples")
    return examples


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
