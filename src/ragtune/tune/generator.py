"""LoRA supervised fine-tuning of the generator with PEFT + TRL: read it top to bottom.

data (validated) -> base model (local folder, or the packaged GGUF dequantised once) -> LoRA
adapter trained on completions only -> adapter + manifest under .ragtune/adapters/NAME/.
Runs on the CPU here; on a GPU it uses bf16 with no change, and under `accelerate launch` the same
code runs data-parallel on many GPUs (the HF Trainer inside TRL handles the distribution).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from ragtune.config import GeneratorTuneConfig
from ragtune.errors import TuneError
from ragtune.manifest import Manifest, write_json_atomic
from ragtune.models import hf_model_dir
from ragtune.progress import progress_callback
from ragtune.tune.data import Example, file_hash, load_examples


@dataclass
class TuneReport:
    adapter: str
    train_loss: float
    val_loss: float | None
    steps: int
    seconds: float
    tokens_per_s: float
    eval_losses: list[float] = field(default_factory=list)
    resumed_from_step: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def split_validation(
    examples: list[Example], fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Hold out a seeded share (at least one example when there are at least five)."""
    if fraction <= 0 or len(examples) < 5:
        return examples, []
    shuffled = examples[:]
    random.Random(seed).shuffle(shuffled)
    count = max(1, round(len(shuffled) * fraction))
    return shuffled[count:], shuffled[:count]


def model_hash(folder: Path) -> str:
    """sha256 of the weights, cached next to them (hashing 500 MB each run would be waste)."""
    weights = folder / "model.safetensors"
    if not weights.is_file():
        return "unknown"
    stamp = folder / ".model.safetensors.sha256"
    if stamp.is_file() and stamp.stat().st_mtime >= weights.stat().st_mtime:
        return stamp.read_text().strip()
    digest = hashlib.sha256()
    with weights.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    with contextlib.suppress(OSError):
        stamp.write_text(digest.hexdigest())
    return digest.hexdigest()


def cpu_has_native_bf16() -> bool:
    """bf16 mixed precision pays on a CPU with bf16 instructions (1.6x on an AVX-512-BF16 Xeon) and
    is ruinous without them: 6 tokens/s instead of ~240 on an AVX2-only AMD EPYC (emulated bf16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def is_main_process() -> bool:
    """False on every rank but 0 of an `accelerate launch` run: only rank 0 writes and reports."""
    return int(os.environ.get("RANK", "0")) == 0


class ShardLog:
    """Wraps the data collator and fingerprints every example this process trains on: its shard.

    Under `accelerate launch --num_processes N` each rank sees a different part of the data; the
    fingerprints written to shards/rank-R.json show which (and prove that no example was trained twice).
    """

    def __init__(self, collate: Any) -> None:
        self.collate = collate
        self.seen: list[str] = []

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        self.seen.extend(fingerprint(feature["input_ids"]) for feature in features)
        return self.collate(features)


def fingerprint(input_ids: Any) -> str:
    return hashlib.sha1(",".join(map(str, input_ids)).encode()).hexdigest()[:16]


def train_generator(
    data: Path,
    run_dir: Path,
    config: GeneratorTuneConfig,
    *,
    val: Path | None = None,
    epochs: float | None = None,
    max_steps: int | None = None,
    resume: bool = False,
    console: Console | None = None,
    show_progress: bool = True,
    manifest_extra: dict[str, Any] | None = None,
) -> TuneReport:
    """Train a LoRA adapter into run_dir/adapter and write run_dir/manifest.json.

    Under `accelerate launch` every rank runs this; each trains on its shard, rank 0 writes the result.
    """
    console = console or Console(stderr=True)
    examples = load_examples(data)
    if val is not None:
        train_set, val_set = examples, load_examples(val)
    else:
        train_set, val_set = split_validation(examples, config.val_fraction, config.seed)
    checkpoints = run_dir / "checkpoints"
    last = _last_checkpoint(checkpoints)
    if resume and last is None:
        raise TuneError(f"nothing to resume in {checkpoints}; start without --resume")
    if not resume and Manifest.exists(run_dir):
        raise TuneError(f"adapter {run_dir.name!r} already exists; choose another --name or add --resume")
    if not resume and is_main_process():
        shutil.rmtree(checkpoints, ignore_errors=True)
        shutil.rmtree(run_dir / "shards", ignore_errors=True)

    base = hf_model_dir(config.base_model)
    trainer = _trainer(
        base,
        train_set,
        val_set,
        checkpoints,
        config,
        epochs=epochs,
        max_steps=max_steps,
        console=console,
        show_progress=show_progress and is_main_process(),
    )
    shards = ShardLog(trainer.data_collator)
    trainer.data_collator = shards
    resumed_from = int(last.name.split("-")[-1]) if resume and last is not None else 0
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(last) if resume and last is not None else None)
    seconds = time.perf_counter() - started
    history = trainer.state.log_history
    eval_losses = [float(h["eval_loss"]) for h in history if "eval_loss" in h]
    if val_set and not eval_losses:
        eval_losses = [float(trainer.evaluate()["eval_loss"])]
    train_losses = [float(h["loss"]) for h in history if "loss" in h]
    tokens = trainer.state.num_input_tokens_seen
    report = TuneReport(
        adapter=str(run_dir / "adapter"),
        train_loss=round(train_losses[-1] if train_losses else float(result.training_loss), 4),
        val_loss=round(eval_losses[-1], 4) if eval_losses else None,
        steps=int(trainer.state.global_step),
        seconds=round(seconds, 1),
        tokens_per_s=round(tokens / seconds, 1) if seconds > 0 else 0.0,
        eval_losses=[round(v, 4) for v in eval_losses],
        resumed_from_step=resumed_from,
    )
    args = trainer.args
    trained = {fingerprint(row["input_ids"]) for row in trainer.train_dataset}
    write_json_atomic(
        run_dir / "shards" / f"rank-{args.process_index}.json",
        {
            "rank": args.process_index,
            "world_size": args.world_size,
            "fingerprints": [p for p in shards.seen if p in trained],  # not the evaluation batches
        },
    )
    trainer.accelerator.wait_for_everyone()
    if not trainer.is_world_process_zero():
        return report
    tuned: Any = trainer.model
    tuned.save_pretrained(str(run_dir / "adapter"))
    trainer.processing_class.save_pretrained(str(run_dir / "adapter"))
    manifest = {
        "name": run_dir.name,
        "kind": "generator-lora",
        "base_model": config.base_model,
        "base_model_dir": str(base),
        "base_model_sha256": model_hash(base),
        "data": str(data),
        "data_sha256": file_hash(data),
        "val": str(val) if val else None,
        "val_sha256": file_hash(val) if val else None,
        "examples": {"train": len(train_set), "val": len(val_set)},
        "hyperparameters": {
            **config.model_dump(),
            "epochs": args.num_train_epochs,
            "max_steps": args.max_steps,
        },
        "metrics": {
            "train_loss": report.train_loss,
            "val_loss": report.val_loss,
            "eval_losses": report.eval_losses,
        },
        "steps": report.steps,
        "seconds": report.seconds,
        "tokens_per_s": report.tokens_per_s,
        "device": "cuda" if args.device.type == "cuda" else "cpu",
        "world_size": args.world_size,
        **(manifest_extra or {}),
    }
    Manifest(run_dir, manifest).write()
    return report


def _trainer(
    base: Path,
    train_set: list[Example],
    val_set: list[Example],
    checkpoints: Path,
    config: GeneratorTuneConfig,
    *,
    epochs: float | None,
    max_steps: int | None,
    console: Console,
    show_progress: bool,
) -> Any:
    """An SFTTrainer for LoRA on the completions: bf16 on a GPU (or a CPU with bf16), fp32 elsewhere."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import datasets
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from transformers.utils import logging as transformers_logging
    from trl import SFTConfig, SFTTrainer

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    warnings.filterwarnings("ignore", category=FutureWarning)
    on_gpu = torch.cuda.is_available()
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.bfloat16 if on_gpu else torch.float32)
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
    )
    args = SFTConfig(
        output_dir=str(checkpoints),
        num_train_epochs=epochs if epochs is not None else config.epochs,
        max_steps=max_steps if max_steps is not None else -1,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        max_length=config.max_length,
        completion_only_loss=True,
        eval_strategy="epoch" if val_set else "no",
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.keep_checkpoints or None,
        logging_steps=1,
        seed=config.seed,
        data_seed=config.seed,
        use_cpu=not on_gpu,
        bf16=on_gpu or cpu_has_native_bf16(),
        report_to="none",
        disable_tqdm=True,
        include_num_input_tokens_seen=True,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,  # LoRA trains every adapter weight: skip DDP's extra graph walk
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list([e.to_record() for e in train_set]),
        eval_dataset=Dataset.from_list([e.to_record() for e in val_set]) if val_set else None,
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=[progress_callback(console, show_progress)],
    )
    trainer.remove_callback(PrinterCallback)  # our progress bar reports; stdout stays clean for --json
    return trainer


def _last_checkpoint(folder: Path) -> Path | None:
    if not folder.is_dir():
        return None
    found = [p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return max(found, key=lambda p: int(p.name.split("-")[-1]), default=None)
