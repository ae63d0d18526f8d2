#!/usr/bin/env bash
# Time to solve InvertedPendulum-v5 with --preset pets, one run at a time on an idle machine.
#   bash run.sh OUT [SEED ...]      (seeds default to 0 1 2 3 4)
#   dynaplan report OUT
set -u
out=${1:?usage: run.sh OUT [SEED ...]}
shift
seeds=${*:-0 1 2 3 4}
mkdir -p "$out"
for s in $seeds; do
  dynaplan train --env InvertedPendulum-v5 --preset pets --seed "$s" --iterations 6 \
    --eval-every 1 --eval-episodes 5 --video-every 0 --device cpu --tensorboard off \
    --quiet --out "$out/s$s" > "$out/s$s.log" 2>&1
  echo "s$s rc=$? $(date +%T)"
done
