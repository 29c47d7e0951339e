"""Export a tuned adapter: merged safetensors (any transformers stack) and GGUF (llama.cpp).

The merge is PEFT's merge_and_unload on the fp32 base. GGUF goes through llama.cpp's own
convert_hf_to_gguf.py, the one vendored in the llama-cpp-python source release we run, so the file
matches the llama.cpp that serves it. No wheel on PyPI ships that script: scripts/setup.sh unpacks
it (and its gguf-py) from the sdist into ~/.cache/ragtune/llama.cpp/VERSION; RAGTUNE_LLAMA_CPP
may point at any llama.cpp checkout instead. Types other than f16/q8_0 are quantised from f16 with
llama.cpp's own quantiser (llama_model_quantize).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ragtune.errors import TuneError
from ragtune.manifest import Manifest
from ragtune.models import hf_model_dir

# What convert_hf_to_gguf.py writes itself, and what llama.cpp's quantiser makes from f16.
CONVERTER_TYPES = ("f16", "bf16", "q8_0")
QUANTISER_TYPES = ("q4_k_m", "q5_k_m", "q6_k", "q4_0")


@dataclass
class ExportReport:
    adapter: str
    safetensors: str
    gguf: str | None
    quant: str | None
    seconds: float
    bytes: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def converter_dir() -> Path:
    """The llama.cpp folder holding convert_hf_to_gguf.py, or a TuneError saying how to get it."""
    import llama_cpp

    version = llama_cpp.__version__
    configured = os.environ.get("RAGTUNE_LLAMA_CPP")
    folder = Path(configured) if configured else Path.home() / ".cache" / "ragtune" / "llama.cpp" / version
    if (folder / "convert_hf_to_gguf.py").is_file():
        return folder
    raise TuneError(
        f"GGUF export needs llama.cpp's convert_hf_to_gguf.py, which no PyPI wheel ships; it is not in {folder}. "
        f"Run scripts/setup.sh (it unpacks it from the llama-cpp-python {version} source release), or set "
        "RAGTUNE_LLAMA_CPP to a llama.cpp checkout. Safetensors export works without it: --format safetensors"
    )


def merge_adapter(run_dir: Path, out: Path) -> Path:
    """Base + LoRA merged into plain weights: a transformers folder anything can load."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    base = hf_model_dir(str(Manifest.read(run_dir).data["base_model"]))
    model: Any = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, str(run_dir / "adapter")).merge_and_unload()
    temp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(temp, ignore_errors=True)
    merged.save_pretrained(str(temp), safe_serialization=True)
    AutoTokenizer.from_pretrained(str(run_dir / "adapter")).save_pretrained(str(temp))
    shutil.rmtree(out, ignore_errors=True)
    os.replace(temp, out)
    return out


def to_gguf(model_dir: Path, out_file: Path, quant: str) -> Path:
    """convert_hf_to_gguf.py in a subprocess (it is a script, with its own gguf-py), then quantise."""
    if quant not in CONVERTER_TYPES and quant not in QUANTISER_TYPES:
        raise TuneError(
            f"unknown GGUF type {quant!r}; use one of {', '.join([*CONVERTER_TYPES, *QUANTISER_TYPES])}"
        )
    llama_dir = converter_dir()
    direct = quant if quant in CONVERTER_TYPES else "f16"
    converted = out_file.with_name(f".{out_file.stem}.{direct}.tmp.gguf")
    env = {**os.environ, "PYTHONPATH": str(llama_dir / "gguf-py"), "NO_LOCAL_GGUF": ""}
    command = [sys.executable, str(llama_dir / "convert_hf_to_gguf.py"), str(model_dir)]
    command += ["--outfile", str(converted), "--outtype", direct]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        converted.unlink(missing_ok=True)
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise TuneError(f"convert_hf_to_gguf.py failed on {model_dir}:\n{tail}")
    if quant in QUANTISER_TYPES:
        import llama_cpp

        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quant.upper()}")
        quantised = out_file.with_name(f".{out_file.stem}.{quant}.tmp.gguf")
        status = llama_cpp.llama_model_quantize(str(converted).encode(), str(quantised).encode(), params)
        converted.unlink(missing_ok=True)
        if status != 0:
            quantised.unlink(missing_ok=True)
            raise TuneError(f"llama.cpp could not quantise to {quant} (status {status})")
        converted = quantised
    os.replace(converted, out_file)
    return out_file


def export_adapter(run_dir: Path, fmt: str, out: Path | None, quant: str) -> ExportReport:
    """Write the merged model (always) and the GGUF (for fmt gguf); record both in the manifest."""
    if fmt not in ("safetensors", "gguf"):
        raise TuneError(f"unknown export format {fmt!r}; use safetensors or gguf")
    if fmt == "gguf":
        converter_dir()  # fail before the merge, not after it
    started = time.perf_counter()
    out = out or run_dir / "export"
    out.mkdir(parents=True, exist_ok=True)
    merged = merge_adapter(run_dir, out / "merged")
    gguf = to_gguf(merged, out / f"model-{quant}.gguf", quant) if fmt == "gguf" else None
    manifest = Manifest.read(run_dir)
    exports = manifest.data.setdefault("exports", {})
    exports["safetensors"] = str(merged.resolve())
    if gguf is not None:
        exports["gguf"] = str(gguf.resolve())
    manifest.write()
    sizes = {"safetensors": sum(f.stat().st_size for f in merged.iterdir() if f.is_file())}
    if gguf is not None:
        sizes["gguf"] = gguf.stat().st_size
    return ExportReport(
        adapter=run_dir.name,
        safetensors=str(merged),
        gguf=str(gguf) if gguf else None,
        quant=quant if gguf else None,
        seconds=round(time.perf_counter() - started, 1),
        bytes=sizes,
    )
