#!/bin/sh
# The README's topics + everyday merge tables (every row of both): merges two fine-tunes of
# one base with each config below and evaluates the merged encoder under each task's head.
#
#   scripts/merge_fortunes.sh SCULPT BASE TOPICS_RUN EVERYDAY_RUN OUT_DIR
#
# e.g. scripts/merge_fortunes.sh .build/release/sculpt ../shared/models/all-MiniLM-L6-v2 \
#          runs/topics-full runs/everyday-full runs/merge-fortunes
# Writes OUT_DIR/<name>.yaml, OUT_DIR/<name>/ (the merged model) and appends one JSON line
# per config to OUT_DIR/results.jsonl.
set -e
[ $# -eq 5 ] || { echo "usage: $0 SCULPT BASE TOPICS_RUN EVERYDAY_RUN OUT_DIR" >&2; exit 2; }
S=$1 BASE=$2 T=$3 E=$4 OUT=$5
DATA=${SCULPT_SHARED:-$(dirname "$0")/../../shared}/datasets/fortunes
mkdir -p "$OUT"

config() { # name method global-parameters topics-weight everyday-weight
  cat > "$OUT/$1.yaml" <<EOF
merge_method: $2
base_model: $BASE
models:
  - model: $T
    parameters: {weight: $4}
  - model: $E
    parameters: {weight: $5}
parameters: {$3}
dtype: float32
EOF
}
config base task_arithmetic "lambda: 0.0" 1 1
config only-topics task_arithmetic "lambda: 1.0" 1 0
config only-everyday task_arithmetic "lambda: 1.0" 0 1
config linear linear "normalize: true" 1 1
config linear-w0.525-0.475 linear "normalize: true" 0.525 0.475
config linear-w0.55-0.45 linear "normalize: true" 0.55 0.45
config linear-w0.6-0.4 linear "normalize: true" 0.6 0.4
config ta-0.7 task_arithmetic "lambda: 0.7" 1 1
config ta-1.0 task_arithmetic "lambda: 1.0" 1 1
config lines-0.7-a0.5 lines "lambda: 0.7, alpha: 0.5, beta: 0.5" 1 1
config lines-1.0-a0.5 lines "lambda: 1.0, alpha: 0.5, beta: 0.5" 1 1
config ties-0.2 ties "density: 0.2, lambda: 1.0" 1 1
config ties-0.5 ties "density: 0.5, lambda: 1.0" 1 1
config dare_linear-0.5 dare_linear "density: 0.5, lambda: 1.0, seed: 0" 1 1
config dare_ties-0.5 dare_ties "density: 0.5, lambda: 1.0, seed: 0" 1 1
config magnitude_prune-0.5 magnitude_prune "density: 0.5, lambda: 1.0" 1 1
config ta-w0.3-1.0 task_arithmetic "lambda: 1.0" 0.3 1
config ta-w0.5-1.0 task_arithmetic "lambda: 1.0" 0.5 1
config ta-w0.6-1.0 task_arithmetic "lambda: 1.0" 0.6 1
config lines-1.0-a0.5-w0.6-1.0 lines "lambda: 1.0, alpha: 0.5, beta: 0.5" 0.6 1
config lines-1.0-a0.5-w0.6-0.4 lines "lambda: 1.0, alpha: 0.5, beta: 0.5" 0.6 0.4
config ties-0.5-w0.5-1.0 ties "density: 0.5, lambda: 1.0" 0.5 1
config ties-0.5-w0.6-1.0 ties "density: 0.5, lambda: 1.0" 0.6 1
config ties-0.5-w0.7-1.0 ties "density: 0.5, lambda: 1.0" 0.7 1
config ties-0.3-w0.6-1.0 ties "density: 0.3, lambda: 1.0" 0.6 1

for y in "$OUT"/*.yaml; do
  n=$(basename "$y" .yaml)
  [ -d "$OUT/$n" ] || "$S" merge "$y" --out "$OUT/$n" > /dev/null
  t=$("$S" eval "$OUT/$n" --task 0 --data "$DATA/topics.test.jsonl" --json)
  e=$("$S" eval "$OUT/$n" --task 1 --data "$DATA/everyday.test.jsonl" --json)
  echo "{\"config\":\"$n\",\"topics\":$t,\"everyday\":$e}" | tee -a "$OUT/results.jsonl"
done
