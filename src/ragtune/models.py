"""Trainable (torch) copies of the packaged chat models, made offline.

The shipped chat models are quantised GGUF files. transformers can read GGUF and dequantise it
(`GgufConfig(dequantize=True)`); the result is saved once as an fp32 safetensors folder under
~/.cache/ragtune/models and reused by the transformers backend and by tuning.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from ragtune.errors import ConfigError, GenerateError
from ragtune.generate.builtins import BUILTINS, MODEL_CACHE, resolve_gguf


def hf_model_dir(model: str) -> Path:
    """A local transformers folder: the folder given, or a GGUF (builtin or file) dequantised once."""
    if model in BUILTINS:
        return _dequantised(resolve_gguf(model), MODEL_CACHE / model.removeprefix("builtin:"), model)
    path = Path(model).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        stat = path.stat()
        key = hashlib.sha1(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
        return _dequantised(path, MODEL_CACHE / f"{path.stem}-{key}", model)
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"{model!r} is not a builtin, a GGUF file or a local transformers model folder (no config.json)"
        )
    return path


def _dequantised(gguf: Path, target: Path, model: str) -> Path:
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    temp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(temp, ignore_errors=True)
    try:
        weights = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent),
            gguf_file=gguf.name,
            dtype=torch.float32,
            quantization_config=GgufConfig(dequantize=True),
        )
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        weights.save_pretrained(temp)
        tokenizer.save_pretrained(temp)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, target)
    except OSError as exc:
        raise GenerateError(f"cannot write the dequantised {model} to {target}: {exc}") from exc
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return target
