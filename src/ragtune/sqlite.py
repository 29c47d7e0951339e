"""One SQLite connection per thread, for objects that a server's worker threads share.

A single connection shared across threads lets one thread read another's open transaction (a
search seeing half an ingest) and raises ProgrammingError when it was made without
check_same_thread=False. Per-thread connections in WAL mode give every thread its own consistent
view, with readers never blocking the one writer.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class ThreadConnections:
    """`.db` is this thread's connection to `path`, opened on first use with the given pragmas."""

    def __init__(self, path: Path, *, pragmas: tuple[str, ...] = (), timeout: float = 60) -> None:
        self.path = path
        self.pragmas = ("journal_mode=WAL", *pragmas)
        self.timeout = timeout
        self._local = threading.local()
        self._opened: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._lock = threading.Lock()

    @property
    def db(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # check_same_thread=False only so that close() may close every thread's connection.
            connection = sqlite3.connect(self.path, timeout=self.timeout, check_same_thread=False)
            for pragma in self.pragmas:
                connection.execute(f"PRAGMA {pragma}")
            self._local.connection = connection
            with self._lock:
                self._close_orphans()
                self._opened.append((threading.current_thread(), connection))
        return connection

    def _close_orphans(self) -> None:
        """Close the connections of threads that have ended (a server starts one per generation)."""
        alive = []
        for thread, connection in self._opened:
            if thread.is_alive():
                alive.append((thread, connection))
            else:
                connection.close()
        self._opened = alive

    def open_connections(self) -> int:
        with self._lock:
            self._close_orphans()
            return len(self._opened)

    def close(self) -> None:
        with self._lock:
            for _, connection in self._opened:
                connection.close()
            self._opened.clear()
        self._local = threading.local()
