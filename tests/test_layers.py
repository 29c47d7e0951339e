"""The journey runs one way: a module never imports one above it, nor a peer road (issue 16).

Layers, lowest first. A module may import any module in a lower layer; within a layer only its own
group (e.g. tune.raft -> tune.synth), except in the layers marked shared. Imports inside functions
count, as do those under TYPE_CHECKING: hiding an import does not remove the arrow.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "ragtune"

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "foundation",
        (
            "version",
            "errors",
            "groups",
            "text",
            "jsonl",
            "sqlite",
            "progress",
            "types",
            "config",
            "manifest",
            "layout",
            "access",
        ),
    ),
    ("documents", ("ingest.parsers", "ingest.isolation", "ingest.rules", "ingest.sources", "ingest.chunking")),
    (
        "index",
        (
            "index.store",
            "index.embedder",
            "index.fusion",
            "index.rerank",
            "index.segments",
            "index.local_store",
            "index.milvus_store",
            "index.milvus_server",
        ),
    ),
    ("sync", ("ingest.sync", "ingest.uploads", "ingest.watch")),
    ("retrieval", ("index.retriever",)),
    ("answer", ("generate", "models", "citations", "strategies")),
    ("scoring", ("evaluate.metrics", "evaluate.questions")),
    ("core and side roads", ("workspace", "tune", "evaluate")),
    ("jobs", ("jobs",)),
    ("shells", ("cli", "serve")),
]
SHARED = {"foundation", "documents", "index", "sync", "answer", "scoring"}
# The one import kept inside a function: `ragtune --help` should not load FastAPI.
LAZY_ALLOWED = {("cli", "serve.server")}


def _modules() -> list[tuple[str, Path]]:
    """Every module but the package roots that only hold a docstring, and ragtune/__init__ (re-exports)."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        name = _module(path)
        if name and not (path.name == "__init__.py" and not _imports(path)):
            found.append((name, path))
    return found


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _place(module: str) -> tuple[int, str]:
    for rank, (_, groups) in enumerate(LAYERS):
        for group in groups:
            if module == group or module.startswith(group + "."):
                return rank, group
    raise AssertionError(f"ragtune.{module} is in no layer: add it to LAYERS in {__file__}")


def _imports(path: Path) -> list[tuple[str, str]]:
    """(imported module relative to ragtune, how: 'top' | 'function' | 'type-checking')."""
    found: list[tuple[str, str]] = []

    def visit(node: ast.AST, how: str) -> None:
        for child in ast.iter_child_nodes(node):
            child_how = how
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                child_how = "function"
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                child_how = "type-checking"
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                if child.module == "ragtune":
                    found.extend((alias.name, child_how) for alias in child.names)
                elif child.module.startswith("ragtune."):
                    found.append((child.module.removeprefix("ragtune."), child_how))
            elif isinstance(child, ast.Import):
                found.extend(
                    (alias.name.removeprefix("ragtune."), child_how)
                    for alias in child.names
                    if alias.name.startswith("ragtune.")
                )
            visit(child, child_how)

    visit(ast.parse(path.read_text()), "top")
    return found


def violations() -> set[str]:
    wrong: set[str] = set()
    for importer, path in _modules():
        rank, group = _place(importer)
        for imported, how in _imports(path):
            if imported in {"__version__", "Workspace", "Access"} and not (SRC / imported).exists():
                wrong.add(f"{importer} -> ragtune (package root, {how})")
                continue
            their_rank, their_group = _place(imported)
            if how == "function" and (importer, imported) not in LAZY_ALLOWED:
                wrong.add(f"{importer} -> {imported} (inside a function)")
            upward = their_rank > rank
            peer = their_rank == rank and group != their_group and LAYERS[rank][0] not in SHARED
            peer = peer and (importer, imported) not in LAZY_ALLOWED
            if upward or peer:
                wrong.add(f"{importer} -> {imported} ({'upward' if upward else 'peer road'}, {how})")
    return wrong


def test_every_module_has_a_layer() -> None:
    for name, _ in _modules():
        _place(name)


def test_imports_run_down_the_journey() -> None:
    wrong = sorted(violations())
    assert not wrong, "imports against the journey:\n" + "\n".join(wrong)


# File names of the state folder: only ragtune/layout.py and ragtune/manifest.py may spell them.
LAYOUT_NAMES = {".ragtune", "manifest.json", "active.json", "users.sqlite", "embeddings.sqlite", "latest.txt"}


def test_one_module_knows_the_layout() -> None:
    spelled = [
        f"{path.relative_to(SRC)}:{node.lineno} {node.value!r}"
        for name, path in _modules()
        if name not in {"layout", "manifest"}
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value in LAYOUT_NAMES
    ]
    assert not spelled, "state paths built outside ragtune/layout.py:\n" + "\n".join(spelled)


def test_shells_and_the_workspace_stay_short() -> None:
    """The HTTP shell, the CLI and the Workspace only wire things: no function over a screen (80 lines)."""
    long = [
        f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for name, path in _modules()
        if name.startswith("serve") or name in {"workspace", "cli"}
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > 80
    ]
    assert not long, "functions over 80 lines:\n" + "\n".join(long)
