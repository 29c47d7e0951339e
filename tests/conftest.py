"""Fixtures that build tiny real workspaces: real files, the real MiniLM embedder, a real on-disk index."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from ragtune.generate import GenerationParams, Message
from ragtune.index.embedder import SentenceTransformerEmbedder
from ragtune.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
HR = REPO / "examples" / "hr"
HR_DOCS = HR / "docs"
SUPPORT = REPO / "examples" / "support"

# Most tests answer with the 135M SmolLM2 (an answer in about a second on 2 cores) and say so in their
# config; the default model runs end to end in tests/e2e/test_default_model.py.
SMALL_MODEL = 'model = "builtin:smollm2-135m-instruct"\ncontext_window = 2048\n'


# The 135M model is sensitive to every passage and word of its prompt; its tests keep what it was
# measured with: this persona, RRF's passages (with convex fusion a FAQ row about volunteering days
# joins the context and it answers "2 paid leave days"), and the cosine guard at 0.35 (it cannot refuse
# by itself). The default model runs with the defaults in tests/e2e/test_default_model.py.
SMALL_MODEL_HR_PERSONA = "You are a helpful HR assistant."


class ScriptedModel:
    """Replies per question with a scripted text. Stands in for a model in logic tests of what is kept."""

    name = "scripted"
    context_window = 4096

    def __init__(self, replies: dict[str, str]) -> None:
        self.replies = replies
        self.prompts: list[Sequence[Message]] = []

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return sum(len(m["content"].split()) for m in messages)

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        self.prompts.append(messages)
        yield self.replies[messages[-1]["content"]]


def workspace_config(example: Path | None = HR, *, small_model: bool = True) -> str:
    """ragtune.toml for a test workspace: the example's persona, and the small model unless told not to."""
    persona = tomllib.loads((example / "ragtune.toml").read_text())["answer"]["persona"] if example else None
    if small_model and example == HR:
        persona = SMALL_MODEL_HR_PERSONA
    answer = f"persona = {json.dumps(persona)}\n" if persona else ""
    if not small_model:
        return f"[answer]\n{answer}" if answer else ""
    return (
        f'[generator]\n{SMALL_MODEL}\n[retrieval]\nfusion = "rrf"\n\n'
        f'[answer]\n{answer}citations = "attached"\nmin_relevance = 0.35\n'
    )


def init_workspace(ws: Path, config: str | None = None) -> Path:
    """`ragtune init` on a folder whose ragtune.toml holds `config` (default: the HR persona, small model)."""
    ws.mkdir(parents=True, exist_ok=True)
    (ws / "ragtune.toml").write_text(workspace_config() if config is None else config)
    run_cli("init", str(ws))
    return ws


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    """The real packaged MiniLM, loaded once per test session."""
    return SentenceTransformerEmbedder()


@pytest.fixture(scope="session")
def warm_embedding_cache(
    tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder
) -> Path:
    """An embeddings cache holding every chunk of the HR sample, computed once per session.

    Tests that are about sync logic start from a copy, so they embed only what they change.
    """
    root = tmp_path_factory.mktemp("warm")
    ws = Workspace.init(root, embedder=embedder)
    ws.ingest([HR_DOCS], show_progress=False)
    ws.close()
    return root / ".ragtune" / "embeddings.sqlite"


@pytest.fixture
def make_workspace(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, warm_embedding_cache: Path
) -> Callable[..., Workspace]:
    """A fresh workspace in tmp_path that reuses the session's loaded embedder (same model, no reload).

    `warm=True` starts it with the HR sample's embeddings already cached.
    """

    def make(name: str = "ws", config: str | None = None, warm: bool = True) -> Workspace:
        root = tmp_path / name
        root.mkdir()
        (root / "ragtune.toml").write_text(workspace_config() + (config or ""))
        if warm:
            (root / ".ragtune").mkdir()
            shutil.copyfile(warm_embedding_cache, root / ".ragtune" / "embeddings.sqlite")
        return Workspace.init(root, embedder=embedder)

    return make


@pytest.fixture
def hr_copy(tmp_path: Path) -> Path:
    """A writable copy of the sample HR knowledge base."""
    target = tmp_path / "hr-docs"
    shutil.copytree(HR_DOCS, target)
    return target


def run_cli(
    *args: str,
    cwd: Path | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run the real `ragtune` command in a subprocess (`env` adds variables); `timeout` only
    catches a hang (training commands get more: a slow or shared CPU is not a failure)."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    result = subprocess.run(
        [sys.executable, "-m", "ragtune.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"ragtune {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


@pytest.fixture(scope="session")
def hr_cli_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace built by the real CLI on the HR sample (files and SQL), with user dana in group hr."""
    ws = tmp_path_factory.mktemp("hr-cli") / "ws"
    init_workspace(ws, workspace_config() + '\n[users.dana]\ngroups = ["hr"]\n')
    run_cli("ingest", str(HR_DOCS), cwd=ws)
    run_cli(
        "ingest",
        "--sql",
        f"sqlite:///{HR / 'offices.sqlite'}",
        "--query",
        "SELECT * FROM offices",
        "--id-column",
        "id",
        cwd=ws,
    )
    return ws


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Milvus standalone server (PyPI `milvus` 2.3.5) on loopback, started once per session;
    RAGTUNE_TEST_MILVUS_URI runs the tests against a server already running (one of yours, a cluster)."""
    from ragtune.index.milvus_server import LocalMilvus

    if os.environ.get("RAGTUNE_TEST_MILVUS_URI"):
        yield os.environ["RAGTUNE_TEST_MILVUS_URI"]
        return
    with LocalMilvus(tmp_path_factory.mktemp("milvus")) as uri:
        yield uri


@pytest.fixture
def milvus_collection(milvus_uri: str) -> Iterator[str]:
    """A fresh collection-name prefix for one test; every collection under it is dropped afterwards."""
    from pymilvus import MilvusClient

    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    client = MilvusClient(uri=milvus_uri)
    for collection in client.list_collections():
        if collection.startswith(name):
            client.drop_collection(collection)
    client.close()
