import json
import os
from pathlib import Path

import pytest

from ragtune.errors import WorkspaceError
from ragtune.manifest import Manifest, write_json_atomic
from ragtune.version import __version__


def test_a_failed_write_leaves_the_previous_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Manifest(tmp_path, {"kind": "raft", "steps": 3}).write()

    def crash(*_: object, **__: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(json, "dump", crash)
    with pytest.raises(OSError, match="disk full"):
        Manifest(tmp_path, {"kind": "raft", "steps": 4}).write()
    monkeypatch.undo()
    kept = Manifest.read(tmp_path)
    assert kept.get("steps") == 3 and kept.kind == "raft"
    assert kept.get("ragtune_version") == __version__ and kept.get("created_at")
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"], "no temporary file left behind"


def test_a_damaged_manifest_is_named_in_the_error(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text('{"kind": "ra')
    with pytest.raises(WorkspaceError, match=r"manifest.json: unreadable .*retrain or delete"):
        Manifest.read(tmp_path)


def test_newest_first_orders_runs_by_when_they_were_written(tmp_path: Path) -> None:
    for age, name in enumerate(["new", "middle", "old"]):
        Manifest(tmp_path / name, {"kind": name}).write()
        stamp = 1_700_000_000 - age * 100
        os.utime(tmp_path / name / "manifest.json", (stamp, stamp))
    (tmp_path / "unfinished").mkdir()
    assert [m.folder.name for m in Manifest.newest_first(tmp_path)] == ["new", "middle", "old"]


def test_write_json_atomic_replaces_the_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "a" / "report.json"
    write_json_atomic(target, {"x": list(range(1000))})
    write_json_atomic(target, {"x": 1})
    assert json.loads(target.read_text()) == {"x": 1}
