"""Generation speed: ragtune's Generator vs calling llama-cpp-python directly, same run.

    python bench/generate.py [--runs 5] [--max-tokens 128]
    python bench/generate.py --wheels PORTABLE.whl NATIVE.whl   # one llama.cpp build against another

With --wheels, each llama-cpp-python wheel (e.g. the portable one setup.sh builds and one built with
RAGTUNE_LLAMA_CMAKE_ARGS="-DGGML_NATIVE=ON") is unpacked into a scratch folder and measured in its own
process on the same prompt; the first wheel is the baseline. A build that crashes on this CPU is
reported as such.

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


def measure_build(runs: int, max_tokens: int) -> dict[str, Any]:
    """Decode speed of whichever llama_cpp this process imports (run in a child per wheel)."""
    import llama_cpp

    generator = LlamaCppGenerator("builtin:smollm2-135m-instruct", context_window=2048)
    messages = prompt()
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0, seed=0)
    generator.llama.reset()
    run_generation(generator, messages, params)  # warm-up
    results = []
    for _ in range(runs):
        generator.llama.reset()
        result = run_generation(generator, messages, params)
        results.append((result.ttft_ms, result.tokens_per_s))
    flags = llama_cpp.llama_print_system_info().decode()
    return {
        "ttft_ms": statistics.median(r[0] for r in results),
        "tokens_per_s": statistics.median(r[1] for r in results),
        "features": " ".join(
            part.split("=")[0].strip() for part in flags.split("|") if part.strip().endswith("= 1")
        ),
    }


def compare_wheels(wheels: list[Path], runs: int, max_tokens: int) -> None:
    import subprocess
    import sys
    import tempfile

    rows: list[list[object]] = []
    baseline = None
    for wheel in wheels:
        target = Path(tempfile.mkdtemp(prefix="llama-build-"))
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--target",
                str(target),
                str(wheel),
            ],
            check=True,
        )
        child = subprocess.run(
            [sys.executable, __file__, "--child", "--runs", str(runs), "--max-tokens", str(max_tokens)],
            env={**__import__("os").environ, "PYTHONPATH": str(target)},
            capture_output=True,
            text=True,
        )
        label = wheel.parent.name
        if child.returncode != 0:
            rows.append([label, "-", "-", f"failed (exit {child.returncode})", child.stderr.strip()[-80:]])
            continue
        result = json.loads(child.stdout.strip().splitlines()[-1])
        baseline = baseline or result["tokens_per_s"]
        rows.append(
            [
                label,
                result["ttft_ms"],
                result["tokens_per_s"],
                result["tokens_per_s"] / baseline,
                result["features"],
            ]
        )
    print_table(
        f"llama.cpp builds: SmolLM2-135M Q4_1, {max_tokens} new tokens max, median of {runs} (first = baseline)",
        ["build", "first token ms", "tokens/s", "ratio", "CPU features compiled in"],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--wheels", type=Path, nargs="+", help="llama-cpp-python wheels to compare")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_build(args.runs, args.max_tokens)))
        return
    if args.wheels:
        compare_wheels(args.wheels, args.runs, args.max_tokens)
        return
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
