#!/usr/bin/env bash
# Install ragtune with its test dependencies into .venv, then lint, type-check and run the tests.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh" test
cd "$ROOT"
ruff check src tests bench
mypy
set +e
pytest "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$code"
