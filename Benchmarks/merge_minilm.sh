#!/usr/bin/env bash
# Merging two real fine-tunes (not run by CI: 33 merges and 66 evaluations, ~30 minutes on 2 shared cores).
#
# MiniLM fine-tuned separately on fortunes/topics (task 0) and fortunes/everyday (task 1) with
# the same recipe (`sculpt train --method full`, see each run's run.json), merged by every
# task-vector method over a small grid, then each merged encoder evaluated on both test sets
# with the head of its task (`sculpt eval MERGED --task N`). Prints a markdown table: accuracy
# on each task and as a fraction of the single-task model's, best merge (by the smaller
# fraction) marked. LiNeS rows use the same λ as a task-arithmetic row.
# EVERYDAY_RUN=../runs/everyday-lpft gives the README's second table (everyday as LP-FT).
#
#   Benchmarks/merge_minilm.sh                # SCULPT=path/to/sculpt (default .build/release/sculpt)
#   TOPICS_RUN=… EVERYDAY_RUN=… OUT=… THREADS=… Benchmarks/merge_minilm.sh
#   ONLY='^(linear|ta-1.0)$' Benchmarks/merge_minilm.sh   # only the merges whose name matches
#
# Merged models are deleted after their evaluation (KEEP=1 keeps them); the results stay in
# $OUT/results.jsonl, the configs in $OUT/configs/.
set -euo pipefail
cd "$(dirname "$0")/.."
SCULPT=${SCULPT:-.build/release/sculpt}
SHARED=${SCULPT_SHARED:-../shared}
TOPICS_RUN=${TOPICS_RUN:-../runs/topics-full}
EVERYDAY_RUN=${EVERYDAY_RUN:-../runs/everyday-full}
OUT=${OUT:-../runs/merge-minilm}
THREADS=${THREADS:-2}
KEEP=${KEEP:-0}
ONLY=${ONLY:-}
BASE=$SHARED/models/all-MiniLM-L6-v2
DATA=$SHARED/datasets/fortunes
TOPICS_TEST=$DATA/topics.test.jsonl
EVERYDAY_TEST=$DATA/everyday.test.jsonl

for f in "$SCULPT" "$BASE/config.json" "$TOPICS_RUN/final/classifier.json" "$EVERYDAY_RUN/final/classifier.json" "$TOPICS_TEST" "$EVERYDAY_TEST"; do
  [ -e "$f" ] || { echo "merge_minilm.sh: missing $f" >&2; exit 1; }
done
# Absolute paths, so the saved configs work from any directory.
BASE=$(cd "$BASE" && pwd); TOPICS_RUN=$(cd "$TOPICS_RUN" && pwd); EVERYDAY_RUN=$(cd "$EVERYDAY_RUN" && pwd)
mkdir -p "$OUT/configs"
RESULTS=$OUT/results.jsonl
: > "$RESULTS"

acc() {  # acc MODEL DATA [--task N] -> accuracy
  local model=$1 data=$2; shift 2
  "$SCULPT" eval "$model" --data "$data" --threads "$THREADS" --json "$@" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["accuracy"])'
}

echo "single-task models" >&2
t_single=$(acc "$TOPICS_RUN" "$TOPICS_TEST")
e_single=$(acc "$EVERYDAY_RUN" "$EVERYDAY_TEST")
printf '{"name":"single","method":"single-task","parameters":"each run on its own task","topics":%s,"everyday":%s}\n' "$t_single" "$e_single" >> "$RESULTS"

# merge NAME METHOD 'GLOBAL PARAMETERS' ['TOPICS PARAMETERS' ['EVERYDAY PARAMETERS' (default: the same)]]
merge() {
  local name=$1 method=$2 global=$3 pt=${4:-}
  local pe=${5:-$pt}
  local cfg=$OUT/configs/$name.yaml dir=$OUT/$name per
  if [ -n "$ONLY" ] && ! [[ $name =~ $ONLY ]]; then return 0; fi
  if [ "$pt" = "$pe" ]; then per=${pt:+per model: $pt}; else per="topics: $pt; everyday: $pe"; fi
  {
    echo "merge_method: $method"
    echo "base_model: $BASE"
    echo "models:"
    echo "  - model: $TOPICS_RUN"
    [ -n "$pt" ] && echo "    parameters: {$pt}"
    echo "  - model: $EVERYDAY_RUN"
    [ -n "$pe" ] && echo "    parameters: {$pe}"
    [ -n "$global" ] && echo "parameters: {$global}"
    echo "dtype: float32"
  } > "$cfg"
  echo "$name: merging" >&2
  rm -rf "$dir"
  "$SCULPT" merge "$cfg" --out "$dir" --json > /dev/null
  local t e
  t=$(acc "$dir" "$TOPICS_TEST" --task 0)
  e=$(acc "$dir" "$EVERYDAY_TEST" --task 1)
  printf '{"name":"%s","method":"%s","parameters":"%s","topics":%s,"everyday":%s}\n' \
    "$name" "$method" "${global}${per:+; $per}" "$t" "$e" >> "$RESULTS"
  [ "$KEEP" = 1 ] || rm -rf "$dir"
}

# λ = 0 is the pre-trained encoder under each task's own head: the floor a merge must beat.
merge ta-0.0 task_arithmetic "lambda: 0.0"
# One task vector alone (the other's weight 0): each head on its own encoder, the other's on it.
merge only-topics task_arithmetic "lambda: 1.0" "weight: 1.0" "weight: 0.0"
merge only-everyday task_arithmetic "lambda: 1.0" "weight: 0.0" "weight: 1.0"
merge linear linear "normalize: true"
for w in 0.525,0.475 0.55,0.45 0.6,0.4; do merge linear-w$w linear "normalize: true" "weight: ${w%,*}" "weight: ${w#*,}"; done
for l in 0.5 0.7 1.0; do merge ta-$l task_arithmetic "lambda: $l"; done
# LiNeS at the task-arithmetic λ: shallow layers (and embeddings) scaled by α, the last by α+β.
merge lines-1.0-a0.5-b0.5 lines "lambda: 1.0, alpha: 0.5, beta: 0.5"
merge lines-1.0-a0.7-b0.3 lines "lambda: 1.0, alpha: 0.7, beta: 0.3"
merge lines-0.7-a0.5-b0.5 lines "lambda: 0.7, alpha: 0.5, beta: 0.5"
for d in 0.2 0.5; do merge ties-d$d ties "lambda: 1.0" "density: $d"; done
merge dare_linear-d0.5 dare_linear "lambda: 1.0, seed: 0" "density: 0.5"
merge dare_ties-d0.5 dare_ties "lambda: 1.0, seed: 0" "density: 0.5"
merge magnitude_prune-d0.5 magnitude_prune "lambda: 1.0" "density: 0.5"
# The topics task vector is 1.4x the everyday one (3.15 vs 2.18 in L2; 288 vs 84 steps) and the
# equal-weight merges lose mostly on everyday: per-model weights shift the balance.
merge ta-w0.3,1 task_arithmetic "lambda: 1.0" "weight: 0.3" "weight: 1.0"
merge ta-w0.5,1 task_arithmetic "lambda: 1.0" "weight: 0.5" "weight: 1.0"
merge ta-w0.6,0.8 task_arithmetic "lambda: 1.0" "weight: 0.6" "weight: 0.8"
merge ta-w0.6,1 task_arithmetic "lambda: 1.0" "weight: 0.6" "weight: 1.0"
merge lines-w0.6,1-a0.5-b0.5 lines "lambda: 1.0, alpha: 0.5, beta: 0.5" "weight: 0.6" "weight: 1.0"
merge lines-w0.6,1-a0.8-b0.4 lines "lambda: 1.0, alpha: 0.8, beta: 0.4" "weight: 0.6" "weight: 1.0"
merge lines-w0.6,0.4-a0.5-b0.5 lines "lambda: 1.0, alpha: 0.5, beta: 0.5" "weight: 0.6" "weight: 0.4"
merge ties-d0.2-w0.5,1 ties "lambda: 1.0" "density: 0.2, weight: 0.5" "density: 0.2, weight: 1.0"
merge ties-d0.3-w0.5,1 ties "lambda: 1.0" "density: 0.3, weight: 0.5" "density: 0.3, weight: 1.0"
merge ties-d0.3-w0.6,1 ties "lambda: 1.0" "density: 0.3, weight: 0.6" "density: 0.3, weight: 1.0"
merge ties-d0.3-w0.4,1-l1.1 ties "lambda: 1.1" "density: 0.3, weight: 0.4" "density: 0.3, weight: 1.0"
for w in 0.5 0.6 0.7; do merge ties-d0.5-w$w,1 ties "lambda: 1.0" "density: 0.5, weight: $w" "density: 0.5, weight: 1.0"; done
merge dare_ties-d0.3-w0.5,1 dare_ties "lambda: 1.0, seed: 0" "density: 0.3, weight: 0.5" "density: 0.3, weight: 1.0"

python3 - "$RESULTS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
single = rows[0]
def frac(r): return r["topics"] / single["topics"], r["everyday"] / single["everyday"]
merges = rows[1:]
# The λ = 0 row is the floor, not a merge.
best = max((r for r in merges if r["name"] != "ta-0.0"), key=lambda r: min(frac(r)))
print("| merge | parameters | topics acc | everyday acc | % of single (topics / everyday) |")
print("|---|---|---|---|---|")
print(f"| single-task models | {single['parameters']} | {100*single['topics']:.2f} % | {100*single['everyday']:.2f} % | 100 / 100 |")
for r in merges:
    ft, fe = frac(r)
    mark = " **(best)**" if r is best else ""
    print(f"| `{r['method']}`{mark} | {r['parameters']}{' (floor: the base encoder)' if r['name'] == 'ta-0.0' else ''} | {100*r['topics']:.2f} % | {100*r['everyday']:.2f} % | {100*ft:.1f} / {100*fe:.1f} |")
ft, fe = frac(best)
print(f"\nbest merge: {best['name']} keeps {100*ft:.1f} % (topics) and {100*fe:.1f} % (everyday) of the single-task accuracy;"
      f" >= 90 % of both: {'yes' if min(ft, fe) >= 0.9 else 'NO'}")
EOF
