"""Generation speed: ragtune's Generator vs calling llama-cpp-python directly, same run.

    python bench/generate.py [--runs 5] [--max-tokens 128]

Same GGUF (the packaged SmolLM2-135M-Instruct), same ~600-token RAG prompt, same settings
(temperature 0, seed 0), alternating runs on one loaded model; the KV cache is reset before every
run on both sides so no run reuses another's prompt. Target: ours >= 0.95x direct tokens/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from _common import print_table

from ragtune.generate import GenerationParams, run_generation
from ragtune.generate.llama_cpp import LlamaCppGenerator
from ragtune.generate.prompts import rag_messages

HR = Path(__file__).resolve().parents[1] / "examples" / "hr"


def prompt() -> list[Any]:
    corpus = [json.loads(line) for line in (HR / "beir" / "corpus.jsonl").read_text().splitlines()]
    passages = [doc["text"][:900] for doc in corpus[:3]]
    return rag_messages(
        "How many days of paid annual leave do full-time employees get?", passages, (), "attached"
    )


def direct(llama: Any, messages: list[Any], max_tokens: int) -> tuple[float, float, int]:
    """The reference loop: llama-cpp-python's streaming chat completion, timed the same way."""
    started = time.perf_counter()
    first = None
    pieces = 0
    for chunk in llama.create_chat_completion(
        messages=messages, max_tokens=max_tokens, temperature=0.0, seed=0, stream=True
    ):
        if chunk["choices"][0]["delta"].get("content"):
            now = time.perf_counter()
            first = first or now
            pieces += 1
    ended = time.perf_counter()
    first = first or ended
    return (first - started) * 1000, (pieces - 1) / (ended - first) if pieces > 1 else 0.0, pieces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    generator = LlamaCppGenerator("builtin:smollm2-135m-instruct", context_window=2048)
    messages = prompt()
    prompt_tokens = generator.count_tokens(messages)
    params = GenerationParams(max_tokens=args.max_tokens, temperature=0.0, seed=0)
    ours: list[tuple[float, float, int]] = []
    theirs: list[tuple[float, float, int]] = []
    generator.llama.reset()
    run_generation(generator, messages, params)  # warm-up
    for _ in range(args.runs):
        generator.llama.reset()
        theirs.append(direct(generator.llama, messages, args.max_tokens))
        generator.llama.reset()
        result = run_generation(generator, messages, params)
        ours.append((result.ttft_ms, result.tokens_per_s, result.completion_tokens))

    def row(name: str, runs: list[tuple[float, float, int]], reference: float) -> list[object]:
        speed = statistics.median(r[1] for r in runs)
        return [name, statistics.median(r[0] for r in runs), speed, speed / reference, runs[0][2]]

    reference = statistics.median(r[1] for r in theirs)
    print_table(
        f"generation: SmolLM2-135M Q4_1, ~{prompt_tokens}-token prompt, {args.max_tokens} new tokens max, "
        f"median of {args.runs}",
        ["path", "first token ms", "tokens/s", "ratio", "tokens"],
        [row("llama-cpp-python direct", theirs, reference), row("ragtune Generator", ours, reference)],
    )


if __name__ == "__main__":
    main()
