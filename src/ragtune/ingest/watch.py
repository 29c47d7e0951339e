"""Live sync: run the normal incremental sync again whenever a watched folder changes.

Nothing here indexes: each round calls the same sync as `ragtune ingest` (unchanged files are skipped
by hash, vanished ones pruned), so a watched workspace behaves exactly like one re-ingested by hand.
File events come from watchfiles (inotify where the OS has it, polling otherwise); SQL sources have
no events and are re-synced on an interval.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ragtune.errors import IngestError, RagtuneError
from ragtune.ingest.sync import IngestReport
from ragtune.layout import STATE_DIR


@dataclass
class SyncRound:
    """One re-sync: what set it off, and its report or the error that stopped it."""

    trigger: str
    report: IngestReport | None = None
    error: str | None = None

    def summary(self) -> str:
        """One log line, the same from `ingest --watch` and from a server that keeps folders in sync."""
        report = self.report
        if report is None:
            return f"{self.trigger} · not synced: {self.error}"
        held = f", kept restricted {len(report.held)} (--widen to confirm)" if report.held else ""
        return (
            f"{self.trigger} · added {report.added}, updated {report.updated}, deleted {report.deleted}, "
            f"failed {len(report.failed)}{held} · {report.seconds:.2f}s"
        )


def _round(trigger: str, sync: Callable[[], IngestReport]) -> SyncRound:
    try:
        return SyncRound(trigger, report=sync())
    except RagtuneError as exc:  # e.g. another ingest holds the lock: the next change retries
        return SyncRound(trigger, error=str(exc))
    except Exception as exc:  # a watch outlives any one round; the next change retries
        return SyncRound(trigger, error=f"{type(exc).__name__}: {exc}")


def watch_paths(
    paths: Sequence[Path],
    sync: Callable[[], IngestReport],
    *,
    stop: threading.Event | None = None,
    step_ms: int = 50,
) -> Iterator[SyncRound]:
    """Sync once, then again after every burst of file changes under `paths`, until `stop` is set.

    `step_ms`: a burst ends when nothing has changed for this long (an editor's save is several
    events: temp file, rename, chmod), so one save is one sync.
    """
    import watchfiles

    missing = [str(p) for p in paths if not p.exists()]
    if missing:  # watchfiles would fail with an OSError traceback
        raise IngestError(f"no such file or folder to watch: {', '.join(missing)}")
    # Editor swap files, .git and our own state folder (a sync writes there) never set off a sync.
    ignore = watchfiles.DefaultFilter(ignore_dirs=(*watchfiles.DefaultFilter.ignore_dirs, STATE_DIR))
    events = watchfiles.watch(
        *paths,
        watch_filter=ignore,
        step=step_ms,
        stop_event=stop,
        raise_interrupt=False,
        yield_on_timeout=True,  # an empty set every rust_timeout: the first one says the watcher is live
        rust_timeout=500,
    )
    # The watcher starts on the first next(); the first sync runs after it, so that a file saved
    # while that sync runs is queued as an event rather than lost between the two.
    if next(events, None) is None:
        return
    yield _round("start", sync)
    for changes in events:
        if not changes:
            continue
        names = sorted({Path(path).name for _, path in changes})
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        yield _round(f"{len(changes)} change{'s' * (len(changes) != 1)}: {shown}", sync)


def poll(
    sync: Callable[[], IngestReport], every_s: float, *, stop: threading.Event | None = None
) -> Iterator[SyncRound]:
    """Sync once, then every `every_s` seconds (sources without change events: SQL)."""
    stop = stop or threading.Event()
    yield _round("start", sync)
    while not stop.wait(every_s):
        yield _round(f"every {every_s:g} s", sync)
