#!/usr/bin/env bash
# Hardware-aware search on a real MiniLM super-network (not run by CI).
#  1. A topics run: $RUN if it exists, else a short full fine-tune of MiniLM on fortunes/topics
#     (1 epoch, max length 64) into $RUN — stated in the output, since a non-elastic run makes a
#     weak super-network (its sub-networks were never trained sliced).
#  2. `sculpt latency-table` on this CPU: per-part table calibrated on 12 sub-networks measured
#     directly, its median absolute percentage error over 20 other random sub-networks measured
#     directly (batch 1 × 64 tokens, 1 thread, CPU clock: CLOCK=wall for elapsed time).
#  3. A short search (60 evaluations, population 20, accuracy:max vs latency:min from the
#     table, accuracy on 200 validation examples) and its front.
# Run it with `nice -n 10 Benchmarks/search_bert.sh`; the machine is shared, so latencies are noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SCULPT_SHARED:-../shared}
RUN=${RUN:-/work/runs/topics-minilm}
SEQ=${SEQ:-64}
EVALS=${EVALS:-60}
POP=${POP:-20}
VAL=${VAL:-200}
CLOCK=${CLOCK:-cpu}
swift build -c release --product sculpt >/dev/null
S=.build/release/sculpt
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT

if [ ! -f "$RUN/final/classifier.json" ]; then
  echo "== no run at $RUN: fine-tuning MiniLM briefly (full, 1 epoch, max length $SEQ)"
  mkdir -p "$(dirname "$RUN")"
  $S train --model "$SHARED/models/all-MiniLM-L6-v2" --data "$SHARED/datasets/fortunes/topics.train.jsonl" \
    --eval-data "$SHARED/datasets/fortunes/topics.test.jsonl" --method full --epochs 1 --batch-size 32 \
    --lr 1e-4 --warmup-ratio 0.1 --max-length "$SEQ" --pooling mean --threads 2 --out "$RUN" 2>/dev/null
else
  echo "== using the existing run $RUN"
fi

echo "== latency table (batch 1, sequence $SEQ, 1 thread, $CLOCK clock; 20 random sub-networks measured directly)"
$S latency-table "$RUN" --batch 1 --seq "$SEQ" --threads 1 --clock "$CLOCK" --runs 21 --check 20

echo "== search: accuracy:max, latency:min (table), $EVALS evaluations, population $POP, $VAL validation examples"
time $S search "$RUN" --objectives accuracy:max,latency:min --latency table --batch 1 --seq "$SEQ" --threads 1 --clock "$CLOCK" --runs 21 \
  --evaluations "$EVALS" --population "$POP" --seed 1 --val-examples "$VAL" --db "$TMP/search.sqlite"
echo "== row 1 of the front (the most accurate) as a sub-network JSON (for sculpt extract --subnet)"
$S front-subnet "$TMP/search.sqlite" --rank 1 --json
