"""The one module that knows where a workspace keeps things: ragtune.toml beside a `.ragtune/` folder.

ragtune.toml              config (check it in)
.ragtune/
  index/ | index-NAME/    the LocalStore (NAME after `tune retriever` switched embedders)
  active.json             which embedder and index answer, once switched
  embeddings.sqlite       embedding cache, keyed by model and text
  ingest.lock, ingest-log.jsonl
  uploads/, uploads-staging/
  users.sqlite            API users and keys
  adapters/NAME/          tuned generators (manifest.json + adapter/)
  embedders/NAME/         tuned embedders (manifest.json)
  reports/compare-TIME/   compare reports; reports/latest.txt names the last finished one
  eval/                   scratch workspaces of `eval retrieval`
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ragtune.config import CONFIG_FILE
from ragtune.errors import WorkspaceError
from ragtune.manifest import write_json_atomic

STATE_DIR = ".ragtune"
ACTIVE_FILE = "active.json"
DEFAULT_INDEX = "index"


def create_private_file(path: Path) -> None:
    """Create `path` (if missing) readable and writable by its owner only, whatever the umask.

    Called before SQLite opens a database: its -wal and -shm files take the database file's mode.
    """
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    path.chmod(0o600)


def find_workspace(start: Path) -> Path | None:
    """The nearest folder holding ragtune.toml, from `start` upward (like git finds a repo)."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    return None


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def config_file(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def state(self) -> Path:
        return self.root / STATE_DIR

    def create(self) -> None:
        """The state folder, kept out of version control and private to its owner (0700): it holds the
        index text, API key hashes and uploads, which other accounts on the machine must not read."""
        self.state.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.state.chmod(0o700)  # mkdir's mode is cut by the umask; a folder made earlier may be 0755
        (self.state / ".gitignore").write_text("*\n")

    def index(self, name: str = DEFAULT_INDEX) -> Path:
        return self.state / name

    def active_index(self) -> Path:
        """The index searches use: the one `tune retriever` switched to, else the default."""
        return self.index(self.read_active().get("index", DEFAULT_INDEX))

    @property
    def embedding_cache(self) -> Path:
        return self.state / "embeddings.sqlite"

    @property
    def ingest_lock(self) -> Path:
        return self.state / "ingest.lock"

    @property
    def ingest_log(self) -> Path:
        return self.state / "ingest-log.jsonl"

    @property
    def uploads(self) -> Path:
        return self.state / "uploads"

    @property
    def uploads_staging(self) -> Path:
        return self.state / "uploads-staging"

    @property
    def users_db(self) -> Path:
        return self.state / "users.sqlite"

    @property
    def adapters(self) -> Path:
        return self.state / "adapters"

    def adapter(self, name: str) -> Path:
        return self.adapters / name

    @property
    def embedders(self) -> Path:
        return self.state / "embedders"

    def embedder(self, name: str) -> Path:
        return self.embedders / name

    @property
    def synth_questions(self) -> Path:
        """Where `synth` writes by default: beside ragtune.toml, so a team can review and check it in."""
        return self.root / "synth" / "questions.jsonl"

    @property
    def eval_scratch(self) -> Path:
        return self.state / "eval"

    @property
    def reports(self) -> Path:
        return self.state / "reports"

    def new_report_dir(self) -> Path:
        return self.reports / time.strftime("compare-%Y%m%d-%H%M%S")

    def mark_latest_report(self, folder: Path) -> None:
        self.reports.mkdir(parents=True, exist_ok=True)
        (self.reports / "latest.txt").write_text(str(folder.resolve()))

    def latest_report(self) -> Path | None:
        """The folder of the last finished compare (wherever --report put it), else the newest here."""
        pointer = self.reports / "latest.txt"
        if pointer.is_file():
            folder = Path(pointer.read_text().strip())
            if (folder / "report.json").is_file():
                return folder
        found = sorted(self.reports.glob("*/report.json"), key=lambda p: p.stat().st_mtime)
        return found[-1].parent if found else None

    def read_active(self) -> dict[str, str]:
        """The tuned embedder and its index, once `tune retriever` has switched to them (else {})."""
        path = self.state / ACTIVE_FILE
        if not path.is_file():
            return {}
        try:
            active = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise WorkspaceError(
                f"{path}: damaged ({exc.msg}); delete it to return to the base embedder"
            ) from exc
        return {"embedder": str(active["embedder"]), "index": str(active["index"])}

    def write_active(self, embedder: Path, index: str) -> None:
        """Point the workspace at another embedder and index in one rename."""
        write_json_atomic(self.state / ACTIVE_FILE, {"embedder": str(embedder.resolve()), "index": index})
