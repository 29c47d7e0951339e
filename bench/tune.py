"""Training speed: `ragtune tune generator` vs a plain PEFT + TRL script, same model, data and settings.

    python bench/tune.py [--steps 10]

Both sides: the dequantised packaged SmolLM2-135M-Instruct, examples/hr/style.jsonl as conversational
prompt/completion data, LoRA r=16 on q/k/v/o, batch 2, max length 192, completion-only loss, the same
seed, no evaluation. Reports training tokens/s and peak RSS growth of each run (each in its own
process, so memory does not mix). Target: ours >= 1.0x the plain script's tokens/s.
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

HR = Path(__file__).resolve().parents[1] / "examples" / "hr"

PLAIN = textwrap.dedent(
    """
    import json, resource, sys, time
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer
    from ragtune.models import hf_model_dir
    from ragtune.tune.data import load_examples

    steps, out = int(sys.argv[1]), sys.argv[2]
    base = str(hf_model_dir("builtin:smollm2-135m-instruct"))
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    data = Dataset.from_list([e.to_record() for e in load_examples(__import__("pathlib").Path(sys.argv[3]))])
    args = SFTConfig(output_dir=out, max_steps=steps, per_device_train_batch_size=2, learning_rate=2e-4,
                     max_length=192, completion_only_loss=True, logging_steps=1, seed=0, use_cpu=True,
                     report_to="none", disable_tqdm=True, include_num_input_tokens_seen=True, save_strategy="no")
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                      task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=lora)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    print(json.dumps({"tokens_per_s": trainer.state.num_input_tokens_seen / seconds, "seconds": seconds,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    """
)

OURS = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    from ragtune.config import GeneratorTuneConfig
    from ragtune.tune.generator import train_generator

    steps, out = int(sys.argv[1]), Path(sys.argv[2])
    config = GeneratorTuneConfig(batch_size=2, max_length=192, val_fraction=0.0, save_steps=10_000)
    report = train_generator(Path(sys.argv[3]), out, config, max_steps=steps, show_progress=False)
    print(json.dumps({"tokens_per_s": report.tokens_per_s, "seconds": report.seconds,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    """
)


def run(script: str, steps: int, out: Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", script, str(steps), str(out), str(HR / "style.jsonl")],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ours = run(OURS, args.steps, Path(tmp) / "ours")
        plain = run(PLAIN, args.steps, Path(tmp) / "plain")
    print_table(
        f"LoRA SFT, SmolLM2-135M, {args.steps} steps, batch 2, length 192, CPU",
        ["run", "tokens/s", "ratio", "seconds", "peak RSS MB"],
        [
            ["plain PEFT + TRL script", plain["tokens_per_s"], 1.0, plain["seconds"], plain["peak_rss_mb"]],
            [
                "ragtune tune generator",
                ours["tokens_per_s"],
                ours["tokens_per_s"] / plain["tokens_per_s"],
                ours["seconds"],
                ours["peak_rss_mb"],
            ],
        ],
    )


if __name__ == "__main__":
    main()
