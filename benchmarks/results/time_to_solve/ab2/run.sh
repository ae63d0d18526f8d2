#!/usr/bin/env bash
# Issue 21, 2026-12-03 (second session): pets on Pendulum-v1 at the session's start (OLD
# src: 78f133a) and now (NEW src), interleaved per seed, one thread; then the new code
# with torch's default two threads. 7 iterations of 100 steps, 5 evaluation episodes
# after every iteration.   bash ab2_run.sh OLD_SRC NEW_SRC OUT
set -euo pipefail
old=$1; new=$2; out=$3
flags="--env Pendulum-v1 --preset pets --iterations 7 --eval-every 1 --eval-episodes 5 --video-every 0 --device cpu --tensorboard off --quiet"
for s in 0 1 2 3 4; do
  PYTHONPATH=$old OMP_NUM_THREADS=1 python -m dynaplan train $flags --seed $s --out $out/old/s$s
  PYTHONPATH=$new OMP_NUM_THREADS=1 python -m dynaplan train $flags --seed $s --out $out/new/s$s
  PYTHONPATH=$new python -m dynaplan train $flags --seed $s --out $out/new_2threads/s$s
done
