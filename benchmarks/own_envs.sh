#!/usr/bin/env bash
# Issue 18's benchmark: environments nobody tuned for, with the generic presets only.
# Hopper-v5, Walker2d-v5 and Ant-v5, 3 seeds, about 5,000 environment steps, 5 evaluation
# episodes on fixed reset seeds after every iteration; JOBS runs at a time (default 2, this
# machine's cores) with one torch thread each. Then: the random and zero-action baselines on
# the same reset seeds, and the report (return vs steps, 95% bands):
#   bash benchmarks/own_envs.sh OUT [SEEDS...]        (ENVS="Hopper-v5" PRESET=pets to pick)
#   python benchmarks/own_envs_summary.py OUT          (baselines, lengths, recall)
#   dynaplan report OUT
set -euo pipefail
out=${1:?usage: own_envs.sh OUT [SEEDS...]}; shift
seeds=${*:-0 1 2}
envs=${ENVS:-Hopper-v5 Walker2d-v5 Ant-v5}
preset=${PRESET:-pets}
mkdir -p "$out"
jobs=()
for e in $envs; do
  for s in $seeds; do
    jobs+=("--env $e --preset $preset --seed $s --out $out/${e}__${preset}__s$s ${EXTRA:-}")
  done
done
printf '%s\n' "${jobs[@]}" | OMP_NUM_THREADS=1 xargs -P "${JOBS:-2}" -I{} sh -c \
  'start=$(date +%s); dynaplan train {} --eval-episodes 5 --video-every 0 --device cpu --quiet >/dev/null 2>>"'"$out"'/errors.log"; echo "rc=$? $(( $(date +%s) - start ))s {}"' \
  | tee -a "$out/times.txt"
