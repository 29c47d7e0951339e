"""Files are parsed in a child process with a time and a memory limit, so that no file can hold the ingest.

A PDF whose streams decompress without end, a DOCX of nested tables a million deep, a parser bug
that loops: in-process, each would hold the ingest lock (and the server's memory) for as long as it
ran. The child is one long-lived `python -m ragtune.ingest.isolation` per process, started on first
use (well under a second), fed one file at a time over a pipe; a file that runs past the time limit
is reported and the child is killed and started afresh for the next file. Its address space is
capped, so a decompression bomb is a MemoryError in the child, reported as one skipped file.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from ragtune.errors import IngestError
from ragtune.ingest.parsers import ParsedFile, parse_file

_FRAME = struct.Struct("!Q")


def _write_frame(stream: IO[bytes], value: Any) -> None:
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_FRAME.pack(len(payload)) + payload)
    stream.flush()


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = b""
    while len(data) < size:
        piece = stream.read(size - len(data))
        if not piece:
            raise EOFError
        data += piece
    return data


def _read_frame(stream: IO[bytes]) -> Any:
    (size,) = _FRAME.unpack(_read_exactly(stream, _FRAME.size))
    return pickle.loads(_read_exactly(stream, size))  # our own child's answer, never a file's bytes


class ParserProcess:
    """One child that parses files on request; restarted after a time-out or a crash."""

    def __init__(self, timeout_s: float, memory_mb: int) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._child: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen[bytes]:
        """The running child, or a new one once it said it is ready (its start-up is not a file's time)."""
        if self._child is not None and self._child.poll() is None:
            return self._child
        child = subprocess.Popen(
            [sys.executable, "-m", "ragtune.ingest.isolation", str(self.memory_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # parsers' warnings about a broken file: the report says it
        )
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], 60)
        try:
            if not ready or _read_frame(child.stdout) != "ready":
                raise EOFError
        except EOFError as exc:
            child.kill()
            raise IngestError("the parser process did not start; try again") from exc
        self._child = child
        return child

    def parse(self, path: Path, data: bytes, rows_per_chunk: int) -> ParsedFile:
        """What `parse_file` returns or raises, or an IngestError when the file exceeds a limit."""
        with self._lock:
            child = self._start()
            assert child.stdin is not None and child.stdout is not None
            try:
                _write_frame(child.stdin, (str(path), data, rows_per_chunk))
                ready, _, _ = select.select([child.stdout], [], [], self.timeout_s)
                if not ready:
                    self.close()
                    raise IngestError(
                        f"{path.name}: parsing took over {self.timeout_s:g} s (ingest.parse_timeout_s); "
                        "a hostile or broken file"
                    )
                status, value = _read_frame(child.stdout)
            except (BrokenPipeError, EOFError) as exc:
                self.close()
                raise IngestError(
                    f"{path.name}: the parser stopped (over the {self.memory_mb} MB limit of "
                    "ingest.parse_memory_mb, or a crash); a hostile or broken file"
                ) from exc
        if status == "ok":
            return value
        raise IngestError(value)

    def close(self) -> None:
        child, self._child = self._child, None
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        if child is not None:
            for stream in (child.stdin, child.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()


_SHARED: dict[tuple[float, int], ParserProcess] = {}
_SHARED_LOCK = threading.Lock()


def parse_isolated(
    path: Path, data: bytes, rows_per_chunk: int, *, timeout_s: float, memory_mb: int
) -> ParsedFile:
    """`parse_file` in this process's parser child (one per pair of limits, kept between syncs)."""
    with _SHARED_LOCK:
        worker = _SHARED.setdefault((timeout_s, memory_mb), ParserProcess(timeout_s, memory_mb))
    return worker.parse(path, data, rows_per_chunk)


def _answer(path: str, data: bytes, rows_per_chunk: int) -> tuple[str, Any]:
    try:
        return "ok", parse_file(Path(path), data, rows_per_chunk)
    except IngestError as exc:
        return "error", str(exc)
    except MemoryError:
        return "error", f"{Path(path).name}: parsing needed more memory than ingest.parse_memory_mb allows"
    except Exception as exc:  # any parser failure is one skipped file, never a dead child
        return "error", f"{Path(path).name}: could not be read ({type(exc).__name__}: {str(exc)[:200]})"


def serve(memory_mb: int) -> None:
    """The child's loop: one request in, one answer out, until the parent closes the pipe."""
    import resource

    limit = memory_mb * 1024 * 1024
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115  # a stray print must not corrupt the frames
    _write_frame(stdout, "ready")
    while True:
        try:
            path, data, rows_per_chunk = _read_frame(stdin)
        except EOFError:
            return
        _write_frame(stdout, _answer(path, data, rows_per_chunk))


if __name__ == "__main__":
    serve(int(sys.argv[1]))
