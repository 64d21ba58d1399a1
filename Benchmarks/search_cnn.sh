#!/usr/bin/env bash
# Hardware-aware search on the Fashion-MNIST elastic CNN (the README's numbers; not run by CI).
#  1. Train the elastic super-network once (3 stages 8/16/32 channels, 3 blocks each: 1,728
#     sub-networks), unless RUN already holds it.
#  2. The latency table's error against 20 random sub-networks measured directly.
#  3. Accuracy (all 10,000 test images, BatchNorm recalibrated per sub-network) vs latency
#     (batch 64, one thread, CPU clock, measured directly): plain NSGA-II with 500 real
#     evaluations vs predictor-guided search with 150, for every seed of SEEDS, all with one
#     fixed reference point and one store (a sub-network measured by one search is not measured
#     again by another: every search sees the same value for it).
# Usage: Benchmarks/search_cnn.sh [RUN_DIR] [DB]     (SEEDS="1 2 3" EPOCHS=4 VAL_EXAMPLES=10000 to change)
# With 2,000 images (±0.7 points of sampling error) plain NSGA-II's 500 draws profited from
# lucky accuracy readings that 150 could not match; the whole test set removes most of that.
set -euo pipefail
cd "$(dirname "$0")/.."
S=${SCULPT:-.build/release/sculpt}
RUN=${1:-../runs/fmnist-elastic-cnn}
VAL_EXAMPLES=${VAL_EXAMPLES:-10000}
DB=${2:-$RUN/search-$VAL_EXAMPLES.sqlite}
SEEDS=${SEEDS:-1 2 3}
EPOCHS=${EPOCHS:-4}
DATA=${SCULPT_SHARED:-../shared}/datasets/fashion-mnist
[ -x "$S" ] || swift build -c release --product sculpt >/dev/null

if [ ! -f "$RUN/final/classifier.json" ]; then
  echo "== training the elastic super-network ($EPOCHS epochs, sandwich rule)"
  /usr/bin/time -f "training: %e s wall" $S train --model cnn --data "$DATA" --method elastic --width 8 --depth 3 --stages 3 \
    --epochs $EPOCHS --batch-size 64 --lr 2e-3 --weight-decay 5e-4 --schedule cosine --warmup-ratio 0.05 --augment-flip \
    --random-subnets 1 --out "$RUN" 2>&1 | grep -v '^\s*$' | tail -4
fi
$S subnets "$RUN" --eval | tail -3

TIMING=(--batch 64 --threads 1 --clock cpu)
echo "== latency table (batch 64, one thread, CPU clock)"
$S latency-table "$RUN" "${TIMING[@]}" --check 20 | grep -E "^calibration|^median"

COMMON=(--objectives accuracy:max,latency:min --val-examples $VAL_EXAMPLES "${TIMING[@]}" --db "$DB")
# The reference point: the smallest sub-network's accuracy − 0.01 and the largest's latency
# × 1.05 (every search measures those two first; a 2-evaluation search stores them).
$S search "$RUN" "${COMMON[@]}" --algorithm random --evaluations 2 --population 2 --json > "$RUN/extremes.json" 2>/dev/null
REF=$(python3 - "$RUN/extremes.json" <<'PY'
import json, sys
f = json.load(open(sys.argv[1]))["front"]
acc = min(r["values"]["accuracy"] for r in f); lat = max(r["values"]["latency"] for r in f)
print(f"{acc - 0.01:.4f},{lat * 1.05:.4f}")
PY
)
echo "== search: plain NSGA-II (500 evaluations, population 50) vs predictor-guided (150, population 5: a first round of 5, then 29 rounds of 5); reference point $REF"
for seed in $SEEDS; do
  t0=$(date +%s)
  plain=$($S search "$RUN" "${COMMON[@]}" --reference-point "$REF" --evaluations 500 --population 50 --seed $seed --json 2>/dev/null)
  t1=$(date +%s)
  $S search "$RUN" "${COMMON[@]}" --reference-point "$REF" --evaluations 150 --population 5 --predictor --seed $seed --json \
    > "$RUN/guided-$seed.json" 2> "$RUN/guided-$seed.log"
  t2=$(date +%s)
  python3 - "$plain" "$RUN/guided-$seed.json" "$RUN/guided-$seed.log" "$seed" $((t1 - t0)) $((t2 - t1)) <<'PY'
import json, re, sys
plain = json.loads(sys.argv[1]); guided = json.load(open(sys.argv[2]))
rounds = [(int(e), float(h)) for e, h in re.findall(r"evaluations (\d+)  hypervolume ([0-9.e+-]+)", open(sys.argv[3]).read())]
hit = next((e for e, h in rounds if h >= plain["hypervolume"] * (1 - 1e-5)), None)  # progress prints 6 digits
print(f"seed {sys.argv[4]}: plain NSGA-II HV {plain['hypervolume']:.5g} after {plain['evaluations']} evaluations ({plain['evaluator_calls']} measured now, {sys.argv[5]} s), "
      f"front {len(plain['front'])}; guided HV {guided['hypervolume']:.5g} after {guided['evaluations']} ({guided['evaluator_calls']} measured now, {sys.argv[6]} s), "
      f"front {len(guided['front'])}; guided reaches plain's HV after {hit if hit else 'more than ' + str(guided['evaluations'])} evaluations")
PY
done
echo "== the front of the last guided search"
$S pareto "$DB" --search-id "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["search_id"])' "$RUN/guided-${seed}.json")" \
  --plot "$RUN/front.svg" | cut -c1-140
