"""Training speed: `ragtune tune generator` vs a plain PEFT + TRL script, and 2 ranks vs 1.

    python bench/tune.py [--model smollm2|qwen05|qwen15] [--steps 10] [--raft] [--ranks 1,2]

Both sides: the dequantised packaged model, conversational prompt/completion data (default
examples/hr/style.jsonl, short tone examples; --raft: RAFT examples in the exact prompt hybrid
sends, 3 passages each, built from examples/hr), LoRA r=16 on q/k/v/o, batch 2, the same seed, no
evaluation. Reports training tokens/s, seconds per optimizer step and peak RSS of each run (each in
its own process, so memory does not mix); `--ranks 1,2` adds `ragtune tune generator` as 2
data-parallel ranks (`accelerate launch`, gloo on the CPU), whose steps each take 2 batches.
Target: ours >= 1.0x the plain script's tokens/s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from _common import print_table

from ragtune import Workspace
from ragtune.config import RaftConfig
from ragtune.evaluate.questions import read_questions
from ragtune.tune.raft import build_raft

HR = Path(__file__).resolve().parents[1] / "examples" / "hr"
MODELS = {
    "smollm2": "builtin:smollm2-135m-instruct",
    "qwen05": "builtin:qwen2.5-coder-0.5b-instruct",
    "qwen15": "builtin:qwen2.5-coder-1.5b-instruct",
}

# argv: steps, out folder, data, model, max length
PLAIN = textwrap.dedent(
    """
    import json, resource, sys, time
    from pathlib import Path
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer
    from ragtune.models import hf_model_dir
    from ragtune.tune.data import load_examples

    steps, out, data, model, length = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4], int(sys.argv[5])
    base = str(hf_model_dir(model))
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    data = Dataset.from_list([e.to_record() for e in load_examples(data)])
    args = SFTConfig(output_dir=out, max_steps=steps, per_device_train_batch_size=2, learning_rate=2e-4,
                     max_length=length, completion_only_loss=True, logging_steps=1, seed=0, use_cpu=True,
                     report_to="none", disable_tqdm=True, include_num_input_tokens_seen=True, save_strategy="no")
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                      task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=lora)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    print(json.dumps({"tokens_per_s": trainer.state.num_input_tokens_seen / seconds, "seconds": seconds,
                      "steps": trainer.state.global_step,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    """
)

OURS = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    from ragtune.config import GeneratorTuneConfig
    from ragtune.tune.generator import train_generator

    steps, out, data, model, length = sys.argv[1:6]
    config = GeneratorTuneConfig(base_model=model, batch_size=2, max_length=int(length), val_fraction=0.0,
                                 save_steps=10_000)
    report = train_generator(Path(data), Path(out), config, max_steps=int(steps), show_progress=False)
    print(json.dumps({"tokens_per_s": report.tokens_per_s, "seconds": report.seconds, "steps": report.steps,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)
    """
)

LAUNCH_2_RANKS = [
    *("-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"),
    *("--mixed_precision", "no", "--dynamo_backend", "no"),
]


def run(script: str, args: list[str], folder: Path, ranks: int = 1) -> dict[str, float]:
    """One training run in its own process(es); with 2 ranks, the largest peak RSS of the two."""
    path = folder / f"{abs(hash(script))}.py"
    path.write_text(script)
    launcher = LAUNCH_2_RANKS if ranks == 2 else []
    result = subprocess.run(
        [sys.executable, *launcher, str(path), *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    reports = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {**reports[0], "peak_rss_mb": max(r["peak_rss_mb"] for r in reports)}


def raft_data(folder: Path) -> Path:
    """RAFT examples from examples/hr (its questions; for timing only): long prompts, short answers."""
    ws_dir = folder / "ws"
    Workspace.init(ws_dir)
    ws = Workspace.open(ws_dir)
    ws.ingest([HR / "docs"], show_progress=False)
    built = build_raft(
        ws.retriever,
        read_questions(HR / "questions.jsonl"),
        RaftConfig(),
        allowed=ws.everyone(),
        persona=ws.config.answer.persona,
    )
    ws.close()
    out = folder / "raft.jsonl"
    out.write_text("".join(json.dumps(e) + "\n" for e in built.examples))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODELS, default="smollm2")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--raft", action="store_true", help="Time on RAFT examples (long prompts).")
    parser.add_argument("--ranks", default="1", help="1, or 1,2 to add a 2-rank data-parallel run.")
    parser.add_argument("--no-plain", action="store_true", help="Skip the plain PEFT + TRL baseline.")
    args = parser.parse_args()
    length = 1024 if args.raft else 192
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = raft_data(folder) if args.raft else HR / "style.jsonl"
        common = [str(data), MODELS[args.model], str(length)]
        runs: list[tuple[str, str, int]] = [] if args.no_plain else [("plain PEFT + TRL script", PLAIN, 1)]
        runs.append(("ragtune tune generator", OURS, 1))
        if "2" in args.ranks.split(","):
            runs.append(("ragtune tune generator, 2 ranks", OURS, 2))
        results = {}
        for label, script, ranks in runs:
            results[label] = run(
                script, [str(args.steps), str(folder / label.replace(" ", "-")), *common], folder, ranks
            )
            print(label, json.dumps(results[label]), flush=True)
    baseline = next(iter(results.values()))["tokens_per_s"]
    for label, r in results.items():
        rows.append(
            [
                label,
                r["tokens_per_s"],
                r["tokens_per_s"] / baseline,
                r["seconds"] / max(r["steps"], 1),
                r["peak_rss_mb"],
            ]
        )
    print_table(
        f"LoRA SFT, {MODELS[args.model]}, {args.steps} steps, batch 2 per rank, length {length}, "
        f"{'RAFT' if args.raft else 'tone'} data, CPU",
        ["run", "tokens/s", "ratio", "s/step", "peak RSS MB"],
        rows,
    )


if __name__ == "__main__":
    main()
