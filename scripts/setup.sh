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
LLAMA_CMAKE_ARGS="${RAGTUNE_LLAMA_CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF}"
LLAMA_KEY="$(printf '0.3.36 %s' "$LLAMA_CMAKE_ARGS" | sha1sum | cut -c1-12)"
STAMP="$VENV/.ragtune-$(sha1sum "$ROOT/pyproject.toml" | cut -c1-12)-${EXTRAS:-base}-llama-$LLAMA_KEY"
if [ ! -f "$STAMP" ]; then
  echo "installing ragtune${EXTRAS:+[$EXTRAS]} into $VENV (first run takes a few minutes)"
  "$PY" -m pip install --quiet --upgrade pip
  "$PY" -m pip install --quiet torch==2.13.0
  # llama-cpp-python has no binary wheel on PyPI: compile it once (5-10 minutes) and keep the wheel.
  # The build is portable (AVX2/FMA/F16C, no AVX-512 or AMX kernels): a native build crashed in
  # llama_decode on AVX-512/AMX Xeons, and a wheel built on one CPU must run on any other.
  # RAGTUNE_LLAMA_CMAKE_ARGS overrides the flags (e.g. "-DGGML_NATIVE=ON"); the cache is keyed by them.
  WHEELS="${RAGTUNE_WHEEL_CACHE:-$HOME/.cache/ragtune/wheels}/llama-$LLAMA_KEY"
  mkdir -p "$WHEELS"
  if ! ls "$WHEELS"/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1; then
    echo "compiling llama-cpp-python 0.3.36 once into $WHEELS (5-10 minutes; CMAKE_ARGS=$LLAMA_CMAKE_ARGS)"
    # --no-cache-dir: pip's own wheel cache would hand back a wheel built with other flags.
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
      "$PY" -m pip wheel --quiet --no-cache-dir --no-deps llama-cpp-python==0.3.36 -w "$WHEELS"
  fi
  "$PY" -m pip install --quiet --force-reinstall --no-deps "$WHEELS"/llama_cpp_python-0.3.36-*.whl
  "$PY" -m pip install --quiet --find-links "$WHEELS" -e "$ROOT${EXTRAS:+[$EXTRAS]}"
  # One real token from the packaged model, in a child process: a bad build fails here, loudly.
  if ! "$PY" -m ragtune.generate.smoke; then
    echo "setup: llama.cpp could not generate one token with the wheel in $WHEELS." >&2
    echo "setup: rebuild it portable with: rm -rf '$WHEELS' && ./scripts/setup.sh" >&2
    echo "setup: (or choose flags: RAGTUNE_LLAMA_CMAKE_ARGS='-DGGML_NATIVE=OFF -DGGML_AVX2=ON ...')" >&2
    exit 1
  fi
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
