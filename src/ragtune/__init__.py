"""ragtune: RAG, fine-tuning or both? Measure it on your own data, then serve the answer."""

from ragtune.config import Config, load_config
from ragtune.errors import ConfigError, EvalError, IngestError, RagtuneError, StoreError, WorkspaceError
from ragtune.index.store import Access
from ragtune.ingest.sync import IngestReport
from ragtune.types import Chunk, Document, Hit, Section
from ragtune.version import __version__
from ragtune.workspace import Workspace

__all__ = [
    "Access",
    "Chunk",
    "Config",
    "ConfigError",
    "Document",
    "EvalError",
    "Hit",
    "IngestError",
    "IngestReport",
    "RagtuneError",
    "Section",
    "StoreError",
    "Workspace",
    "WorkspaceError",
    "__version__",
    "load_config",
]
