"""The saved access masks: no group name, whatever it is, can stand in for the public rows."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ragtune.access import Access
from ragtune.index import segments

# Any string a store could hold, including the bookkeeping words of earlier layouts.
NAMES = st.sampled_from(["public", "members", "hr", "", "0", "__proto__"]) | st.text(max_size=8)


def _allowed(groups: list[list[str]], caller: frozenset[str]) -> list[bool]:
    """The rule itself, written plainly: public rows, or rows sharing a group with the caller."""
    return [not row or bool(caller.intersection(row)) for row in groups]


@settings(max_examples=60, deadline=None)
@given(
    groups=st.lists(st.lists(NAMES, max_size=3, unique=True), min_size=1, max_size=12),
    caller=st.frozensets(NAMES, max_size=3),
)
def test_saved_masks_allow_exactly_what_the_rule_allows(groups: list[list[str]], caller: frozenset[str]) -> None:
    n = len(groups)
    rows = segments.Rows(
        np.arange(1, n + 1, dtype=np.int64),
        [f"c{i}" for i in range(n)],
        np.ones((n, 4), dtype=np.float32),
        groups,
        [f"text {i}" for i in range(n)],
    )
    base = segments.build_base(rows, 1, n, segments.stemmer(), ann_min_chunks=10**9)
    with tempfile.TemporaryDirectory() as folder:
        segments.save_base(base, Path(folder) / "base")
        loaded = segments.load_base(Path(folder) / "base")
    assert loaded is not None
    assert loaded.masks.allowed(Access(caller)).tolist() == _allowed(groups, caller)


def test_a_base_saved_in_the_old_layout_is_rebuilt_not_trusted(tmp_path: Path) -> None:
    rows = segments.Rows(np.array([1]), ["c0"], np.ones((1, 4), np.float32), [["public"]], ["t"])
    base = segments.build_base(rows, 1, 1, segments.stemmer(), ann_min_chunks=10**9)
    segments.save_base(base, tmp_path / "base")
    (tmp_path / "base" / "groups.json").write_text('{"public": [0]}')  # old: groups beside "public"
    assert segments.load_base(tmp_path / "base") is None
