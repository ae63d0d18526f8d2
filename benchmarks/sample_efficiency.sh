#!/usr/bin/env bash
# Issue 4's sample-efficiency runs on Pendulum-v1: the CPU presets (pets, icem, mppi) and
# the seed's defaults, 10 fixed-seed evaluation episodes, JOBS runs at a time (default 2,
# this machine's cores) with one torch thread each. Aggregate with: dynaplan report OUT
#   bash benchmarks/sample_efficiency.sh OUT [SEEDS...]      (METHODS="pets icem" to pick)
set -euo pipefail
out=${1:?usage: sample_efficiency.sh OUT [SEEDS...]}; shift
seeds=${*:-0 1 2 3 4}
methods=${METHODS:-pets seed-cem icem mppi}
mkdir -p "$out"
jobs=()
for m in $methods; do
  for s in $seeds; do
    if [ "$m" = seed-cem ]; then  # the seed exercise: 2000 random steps, one planned iteration
      jobs+=("--iterations 1 --seed $s --out $out/Pendulum-v1__seed-cem__s$s")
    else  # the preset's own schedule, 2000 steps: 1 random episode + 9 iterations of 200
      # steps (pets since issue 21: 100 random steps + 19 iterations of 100)
      jobs+=("--preset $m --eval-every 2 --seed $s --out $out/Pendulum-v1__${m}__s$s")
    fi
  done
done
printf '%s\n' "${jobs[@]}" | OMP_NUM_THREADS=1 xargs -P "${JOBS:-2}" -I{} sh -c \
  'start=$(date +%s); dynaplan train {} --eval-episodes 10 --video-every 0 --device cpu --quiet >/dev/null 2>>"'"$out"'/errors.log"; echo "rc=$? $(( $(date +%s) - start ))s {}"'
