#!/usr/bin/env bash
# Create .venv and install ragtune into it (once per pyproject.toml version); sourced by demo.sh and test.sh.
# torch is pinned and installed first: any other torch spec would pull a multi-GB CUDA build.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RAGTUNE_VENV:-$ROOT/.venv}"
EXTRAS="${1:-}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV"
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
STAMP="$VENV/.ragtune-$(sha1sum "$ROOT/pyproject.toml" | cut -c1-12)-${EXTRAS:-base}"
if [ ! -f "$STAMP" ]; then
  echo "installing ragtune${EXTRAS:+[$EXTRAS]} into $VENV (first run takes a few minutes)"
  "$PY" -m pip install --quiet --upgrade pip
  "$PY" -m pip install --quiet torch==2.13.0
  "$PY" -m pip install --quiet -e "$ROOT${EXTRAS:+[$EXTRAS]}"
  touch "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
