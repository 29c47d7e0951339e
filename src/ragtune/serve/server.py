"""`ragtune serve`: load the models first, then uvicorn, with a graceful shutdown for open streams."""

from __future__ import annotations

import ipaddress
import threading

from rich.console import Console

from ragtune.errors import ConfigError, IngestError
from ragtune.ingest.watch import watch_paths
from ragtune.serve.app import create_app
from ragtune.workspace import Workspace


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas, as MALLOC_ARENA_MAX does, before the worker threads start.

    glibc gives each thread that allocates its own arena and keeps freed memory in it; with dozens
    of request threads the server's RSS kept creeping up under a steady load (bench/soak.py).
    Returns False where there is no glibc (nothing to do).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(-8, arenas))  # -8 is M_ARENA_MAX in malloc.h
    except (OSError, AttributeError):
        return False


def run_server(ws: Workspace, host: str | None = None, port: int | None = None) -> None:
    import uvicorn

    cfg = ws.config.serve
    host = host or cfg.host
    port = port or cfg.port
    if cfg.anonymous and not is_loopback(host):
        raise ConfigError(
            f"serve.anonymous is on, so ragtune only listens on localhost; {host!r} would open the "
            "documents to the network without keys. Bind 127.0.0.1 or turn anonymous off."
        )
    console = Console(stderr=True)
    limit_malloc_arenas()
    console.print("[dim]loading the embedder and the generator…[/dim]")
    ws.embedder.load()
    _ = ws.generator
    _ = ws.retriever  # built once before the first request (and its reranker, if any, loaded)
    ws.store.refresh()
    app = create_app(ws)
    stop = threading.Event()
    if ws.config.ingest.watch:
        threading.Thread(target=_keep_in_sync, args=(ws, stop, console), daemon=True).start()
    console.print(f"ragtune serving {ws.root} on http://{host}:{port}  (web UI at /, API at /v1)")
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=int(cfg.graceful_shutdown_s),
        )
    finally:
        stop.set()


def _keep_in_sync(ws: Workspace, stop: threading.Event, console: Console) -> None:
    """`[ingest] watch`: the same sync as `ragtune ingest --watch`, on a thread beside the server."""
    paths = [ws.root / folder for folder in ws.config.ingest.watch]
    console.print(f"watching {', '.join(ws.config.ingest.watch)} for changes")
    rounds = watch_paths(paths, lambda: ws.ingest(paths, show_progress=False), stop=stop)
    try:
        for sync_round in rounds:
            report = sync_round.report
            if report is None or report.changed or report.failed:  # a no-op round is not news
                console.print(sync_round.summary(), markup=False, highlight=False)
    except IngestError as exc:
        console.print(f"[red]ingest.watch: {exc}; nothing is watched[/red]")
