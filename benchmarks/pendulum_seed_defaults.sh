#!/usr/bin/env bash
# Issue 2 benchmark: Pendulum-v1 with the seed's defaults, CEM and random shooting,
# seeds 0 1 2, 12 iterations, 10 evaluation episodes per iteration; beside the seed's
# own code (../shared/anchors/seed_reference.py) with the same seeds.
# Usage: bash benchmarks/pendulum_seed_defaults.sh OUT_DIR [ITERATIONS] [SEED_REF_ITERATIONS]
# (the recorded run used ITERATIONS=4 and SEED_REF_ITERATIONS=4 for the time budget,
# plus one 12-iteration CEM run: dynaplan train --iterations 12 --eval-episodes 10 --seed 0)
set -euo pipefail
out=${1:-bench_out}
iters=${2:-12}
ref_iters=${3:-12}
mkdir -p "$out/seedref"
dynaplan compare --planners cem random --seeds 0 1 2 --iterations "$iters" --eval-episodes 10 \
  --video-every 6 --quiet --out "$out/compare_pendulum"
for p in cem random; do for s in 0 1 2; do
  python ../shared/anchors/seed_reference.py --planner $p --iterations "$ref_iters" --seed $s \
    --out "$out/seedref/${p}_s${s}.json"
done; done
python benchmarks/summarize_pendulum.py "$out"
