#!/usr/bin/env bash
# Search benchmarks behind the README's numbers (not run by CI: about a minute in all).
#  1. NSGA-II on ZDT1 and ZDT2, population 100 × 250 generations, seeds 1-5: hypervolume of
#     the final front and of every evaluated point vs the true front's, reference (1.1, 1.1).
#  2. The synthetic sub-network problem (20 dims × 4 choices): plain NSGA-II with 500 real
#     evaluations vs predictor-guided search with 150, same seeds, same reference point rule.
#  3. A search SIGKILLed mid-way and started again with the same command.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product sculpt >/dev/null
S=.build/debug/sculpt
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT

echo "== ZDT (population 100, 250 generations)"
for p in zdt1 zdt2; do
  for seed in 1 2 3 4 5; do $S search-benchmark $p --seed $seed --json; done
done | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
for p in ("zdt1", "zdt2"):
    r = [x for x in rows if x["problem"] == p]
    f = [x["ratio"] for x in r]; a = [x["archive_ratio"] for x in r]; t = sum(x["seconds"] for x in r) / len(r)
    print(f"{p}: final front HV/true min {min(f):.4f} mean {sum(f)/len(f):.4f}; all evaluated HV/true min {min(a):.4f} mean {sum(a)/len(a):.4f}; {t:.2f} s/run")
'

echo "== synthetic: plain NSGA-II (500 evaluations, population 50) vs predictor-guided (150, population 25)"
# The reference point is fixed by the problem's extremes so both runs are measured alike.
for seed in 1 2 3 4 5; do
  plain=$($S search-benchmark synthetic --evaluations 500 --population 50 --seed $seed --db "$TMP/p$seed.sqlite" 2>/dev/null)
  guided=$($S search-benchmark synthetic --evaluations 150 --population 25 --predictor --seed $seed --db "$TMP/g$seed.sqlite" 2>"$TMP/g$seed.log")
  echo "seed $seed"
  echo "  plain : $plain"
  echo "  guided: $guided"
  hv=$(echo "$plain" | grep -o 'hypervolume [0-9.]*' | cut -d' ' -f2)
  python3 - "$hv" "$TMP/g$seed.log" <<'PY'
import re, sys
target = float(sys.argv[1])
rounds = [(int(e), float(h)) for e, h in re.findall(r"evaluations (\d+)  hypervolume ([0-9.]+)", open(sys.argv[2]).read())]
hit = next((e for e, h in rounds if h >= target), None)
print("  guided reaches plain's 500-evaluation hypervolume after", hit if hit else "more than 150", "evaluations")
PY
done
echo "(both use the problem's fixed reference point: accuracy of the smallest sub-network - 0.01,"
echo " latency of the largest + 1)"

echo "== SIGKILL and resume"
args=(search-benchmark synthetic --evaluations 300 --population 30 --predictor --seed 9)
$S "${args[@]}" --db "$TMP/ref.sqlite" 2>/dev/null
$S "${args[@]}" --db "$TMP/k.sqlite" 2>/dev/null & pid=$!
sleep 3; kill -9 $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
echo "stored at kill: $($S pareto "$TMP/k.sqlite" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["evaluations"])')"
$S "${args[@]}" --db "$TMP/k.sqlite" 2>/dev/null
cmp <($S pareto "$TMP/ref.sqlite" --json) <($S pareto "$TMP/k.sqlite" --json) && echo "same front and hypervolume as the uninterrupted run"
