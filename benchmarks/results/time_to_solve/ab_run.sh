#!/usr/bin/env bash
# old (refit every 200 steps) and new (every 100) pets on Pendulum-v1, interleaved per seed
set -euo pipefail
out=$1
for s in 0 1 2 3 4; do
  OMP_NUM_THREADS=1 dynaplan train --env Pendulum-v1 --preset pets --seed $s --iterations 7 --eval-every 1 --eval-episodes 5 --video-every 0 --device cpu --tensorboard off --quiet --out $out/new/s$s
  OMP_NUM_THREADS=1 dynaplan train --env Pendulum-v1 --preset pets --steps-per-iteration 200 --train-episode-steps 200 --iterations 4 --seed $s --eval-every 1 --eval-episodes 5 --video-every 0 --device cpu --tensorboard off --quiet --out $out/old/s$s
done
