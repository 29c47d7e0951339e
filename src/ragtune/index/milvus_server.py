"""A real Milvus standalone server on loopback, from the PyPI `milvus` package (2.3.5, `pip install
ragtune[milvus]`): what the tests and benches run the Milvus backend against, and a way to try the
backend on a laptop before pointing it at a cluster. The same gRPC API as a Milvus cluster."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from ragtune.errors import StoreError


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalMilvus:
    """`with LocalMilvus(folder) as uri:` runs a server whose data lives in `folder`, stopped on exit."""

    def __init__(self, data_dir: Path, port: int | None = None, start_timeout: float = 180.0) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._server: Any = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        """Start the server (every other port it opens is picked free) and wait until it answers.

        One at a time per machine: the 2.3.5-lite binary locks /run/milvus/standalone.pid, and a second
        one panics at start (the error names its log)."""
        try:
            from milvus import MilvusServer
        except ImportError as exc:
            raise StoreError("the local Milvus server needs `pip install 'ragtune[milvus]'`") from exc
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # etcd's default port is the one most likely taken (another Milvus, a real etcd): pick a free one.
        server = MilvusServer(
            wait_for_started=False, data_dir=str(self.data_dir), proxy_port=self.port, etcd_port=free_port()
        )
        server.start()
        self._server, self._process = server, server.server_proc
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self.uri

    def _wait_until_ready(self) -> None:
        from pymilvus import MilvusClient

        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                client = MilvusClient(uri=self.uri, timeout=5)
                client.list_collections()
                client.close()
                return
            except Exception as exc:  # connection refused, not ready yet: both mean wait
                crashed = "panic:" in _tail(self.data_dir / "logs" / "milvus-stderr.log")
                if self._process is None or self._process.poll() is not None or crashed:
                    raise StoreError(
                        f"the Milvus server exited while starting; see {self.data_dir}/logs"
                    ) from exc
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"the Milvus server did not answer in {self.start_timeout:.0f} s"
                    ) from exc
                time.sleep(0.5)

    def stop(self) -> None:
        """SIGTERM (Milvus flushes and exits), SIGKILL if it has not within 10 s."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None
        if self._server is not None:
            self._server.server_proc = None
            self._server.stop()  # closes its log files
            self._server = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def _tail(path: Path, size: int = 65_536) -> str:
    try:
        with path.open("rb") as file:
            file.seek(max(0, path.stat().st_size - size))
            return file.read().decode(errors="replace")
    except OSError:
        return ""


def main() -> None:
    """`python -m ragtune.index.milvus_server [--data DIR] [--port 19530]`: a server until Ctrl-C."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--data", type=Path, default=Path(".milvus"), help="where the server keeps its data")
    parser.add_argument("--port", type=int, default=19530)
    args = parser.parse_args()
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # `kill` must not leave the server process behind
        signal.signal(sig, lambda *_: stopped.set())
    with LocalMilvus(args.data, port=args.port) as uri:
        print(f"Milvus is serving at {uri} (data in {args.data}); Ctrl-C stops it", flush=True)
        stopped.wait()


if __name__ == "__main__":
    main()
