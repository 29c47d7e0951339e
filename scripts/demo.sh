#!/usr/bin/env bash
# The end-to-end demo on the embedded defaults: install, build a workspace on examples/hr, search it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
DEMO="${RAGTUNE_DEMO_DIR:-$ROOT/demo-workspace}"
HR="$ROOT/examples/hr"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step ragtune init "$DEMO"
grep -q '^\[users.dana\]' "$DEMO/ragtune.toml" || printf '\n[users.dana]\ngroups = ["hr"]\n' >> "$DEMO/ragtune.toml"
cd "$DEMO"
step ragtune ingest "$HR/docs"
step ragtune ingest --sql "sqlite:///$HR/offices.sqlite" --query "SELECT * FROM offices" --id-column id
step ragtune ingest "$HR/docs"
step ragtune search "How many days of paid annual leave do I get?" -k 3
step ragtune search "Who manages the Lisbon office?" -k 2 --mode dense
step ragtune search "Founders' Day" -k 2 --mode bm25
step ragtune search "salary band for a senior engineer" -k 2
step ragtune search "salary band for a senior engineer" -k 2 --as-user dana
step ragtune eval retrieval "$HR/beir"
