#!/usr/bin/env bash
# Issue 21's time to solve: per preset and environment, the environment steps and the wall
# seconds without evaluation (metrics.csv's time/wall_s, random data included) until the
# evaluation return first reaches the threshold (Pendulum-v1 -200, InvertedPendulum-v5
# 1000), median and worst over the seeds; then `dynaplan report` prints them.
#   bash benchmarks/time_to_solve.sh OUT [SEEDS...]            (default seeds 0 1 2 3 4)
#   ENVS="Pendulum-v1" PRESETS="pets icem" ITERATIONS=5 EVAL=10 bash benchmarks/time_to_solve.sh OUT
# One run at a time, one torch thread (a quiet machine: two at once would slow both).
# Evaluation runs after every iteration (so the first iteration that solves is found);
# it is not counted in time/wall_s. The process's start (imports, about 1-2 s) is not
# counted either: `startup_s` in OUT/startup.txt measures it apart.
set -euo pipefail
out=${1:?usage: time_to_solve.sh OUT [SEEDS...]}; shift
seeds=${*:-0 1 2 3 4}
envs=${ENVS:-Pendulum-v1}
presets=${PRESETS:-pets icem}
mkdir -p "$out"
TIMEFORMAT="startup_s %R"  # a fresh interpreter importing what a run imports
{ time OMP_NUM_THREADS=1 python -c "import dynaplan.loop, gymnasium, torch"; } 2> "$out/startup.txt"
cat "$out/startup.txt"
for e in $envs; do
  iterations=${ITERATIONS:-$([ "$e" = Pendulum-v1 ] && echo 5 || echo 10)}
  for p in $presets; do
    for s in $seeds; do
      run="$out/${e}__${p}__s$s"
      [ -f "$run/summary.json" ] && continue
      OMP_NUM_THREADS=1 dynaplan train --env "$e" --preset "$p" --seed "$s" \
        --iterations "$iterations" --eval-every 1 --eval-episodes "${EVAL:-10}" \
        --video-every 0 --device cpu --tensorboard off --quiet --out "$run" ${EXTRA:-}
      echo "$e $p s$s done"
    done
  done
done
dynaplan report "$out"
