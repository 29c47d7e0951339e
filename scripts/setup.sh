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
  # llama-cpp-python has no binary wheel on PyPI: compile it once (5-10 minutes) and keep the wheel.
  WHEELS="${RAGTUNE_WHEEL_CACHE:-$HOME/.cache/ragtune/wheels}"
  mkdir -p "$WHEELS"
  if ! ls "$WHEELS"/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1; then
    echo "compiling llama-cpp-python 0.3.36 once into $WHEELS (5-10 minutes)"
    CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" "$PY" -m pip wheel --quiet --no-deps llama-cpp-python==0.3.36 -w "$WHEELS"
  fi
  "$PY" -m pip install --quiet --find-links "$WHEELS" -e "$ROOT${EXTRAS:+[$EXTRAS]}"
  touch "$STAMP"
fi
# `ragtune export --format gguf` runs llama.cpp's own converter, which only the sdist carries.
CONVERTER="$HOME/.cache/ragtune/llama.cpp/0.3.36"
if [ ! -f "$CONVERTER/convert_hf_to_gguf.py" ]; then
  echo "unpacking llama.cpp's GGUF converter into $CONVERTER"
  SDIST="$(mktemp -d)"
  "$PY" -m pip download --quiet --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d "$SDIST"
  mkdir -p "$CONVERTER"
  tar -xzf "$SDIST"/llama_cpp_python-0.3.36.tar.gz -C "$CONVERTER" --strip-components=3 \
    llama_cpp_python-0.3.36/vendor/llama.cpp/convert_hf_to_gguf.py \
    llama_cpp_python-0.3.36/vendor/llama.cpp/conversion \
    llama_cpp_python-0.3.36/vendor/llama.cpp/gguf-py
  rm -rf "$SDIST"
fi
export PATH="$VENV/bin:$PATH"
