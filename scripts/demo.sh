#!/usr/bin/env bash
# The end-to-end demo on the embedded defaults: install, index examples/hr, search, answer with
# citations, then change a policy and show the answer follow within seconds, with no retraining.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
DEMO="${RAGTUNE_DEMO_DIR:-$ROOT/demo-workspace}"
HR="$ROOT/examples/hr"
KB="$DEMO/kb"   # a copy of the knowledge base, so the demo can edit a policy

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
now() { date +%s.%N; }

rm -rf "$DEMO"
mkdir -p "$DEMO"
cp "$HR/ragtune.toml" "$DEMO/ragtune.toml"   # the example's persona and user dana; the rest is default
step ragtune init "$DEMO"
step ragtune models
cp -r "$HR/docs" "$KB"
cd "$DEMO"

step ragtune ingest "$KB"
step ragtune ingest --sql "sqlite:///$HR/offices.sqlite" --query "SELECT * FROM offices" --id-column id
step ragtune ingest "$KB"
step ragtune tune fusion --questions "$HR/questions.jsonl"   # fit the hybrid weight on labelled questions
step ragtune search "Lisbon office manager and address" -k 2
step ragtune search "salary band for a senior engineer" -k 2
step ragtune search "salary band for a senior engineer" -k 2 --as-user dana

QUESTION="How many days of paid annual leave do full-time employees get per year?"
step ragtune ask "$QUESTION"
step ragtune ask "How long is the probation period for new employees?"
step ragtune ask "What is the CEO's favourite colour?"
step ragtune ask "$QUESTION" --strategy base

printf '\n\033[1m# A policy changes: 25 -> 27 days of annual leave (in the copy at %s)\033[0m\n' "$KB"
sed -i 's/25 days of paid annual leave/27 days of paid annual leave/' "$KB/policies/annual-leave.md"
start=$(now)
step ragtune ingest "$KB"
synced=$(now)
step ragtune ask "$QUESTION" --stream
done_at=$(now)
python -c "print(f'\n\033[1mfresh answer {$done_at - $start:.1f} s after the edit (re-sync {$synced - $start:.1f} s, start-up included); no retraining\033[0m')"

step ragtune eval retrieval "$HR/beir"

printf '\n\033[1m# RAG, fine-tuning or both? Tune, then measure every strategy on the same questions\033[0m\n'
sed -i 's/27 days of paid annual leave/25 days of paid annual leave/' "$KB/policies/annual-leave.md"
step ragtune ingest "$KB"
step ragtune tune generator --data "$HR/style.jsonl" --public --max-steps 20 --name tone
step ragtune export tone
awk 'NR % 10 == 1' "$HR/questions.jsonl" > "$DEMO/questions-demo.jsonl"   # 14 of the 136 questions
step ragtune compare --questions "$DEMO/questions-demo.jsonl" --strategies base,rag,finetuned,hybrid \
  --freshness "$HR/freshness.json" --style "$HR/style.jsonl" --report "$DEMO/report"
step ragtune advise --facts-change weekly --citations --no-tone --latency-ms 3000 --budget low --no-gpu \
  --sensitivity restricted
printf '\nopen %s/report/report.html for the plots and every answer side by side\n' "$DEMO"
