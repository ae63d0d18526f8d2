#!/usr/bin/env bash
# dynaplan's `--preset pets` beside mbrl-lib's PETS at the same setting on Pendulum-v1, in
# one sitting on a quiet machine: per seed the dynaplan run, then the mbrl-lib run (one at a
# time, one torch thread each), then benchmarks/peer/compare.py writes OUT/side_by_side.md
# and OUT/side_by_side.png.
#   bash benchmarks/peer/side_by_side.sh OUT [SEEDS...]          (seeds default: 0 1 2 3 4)
# Environment:
#   ITERATIONS=9       planned iterations of 200 steps after the 200 random ones (the
#                      preset's 9: 2,000 steps in all)
#   EVAL_EPISODES=10   evaluation episodes after every iteration (fixed reset seeds)
#   MBRL_VENV=/work/mbrl-venv   mbrl-lib's own environment; made by setup_mbrl.sh if missing
#   DYNAPLAN=dynaplan  the dynaplan command (default: .venv/bin/dynaplan where it exists)
#   PYTHON=python      dynaplan's Python for compare.py (default: .venv/bin/python)
#   DYNAPLAN_ARGS=, MBRL_ARGS=   extra flags for each side (a smoke test: "--epochs 2" on both)
set -euo pipefail
out=${1:?usage: side_by_side.sh OUT [SEEDS...]}; shift
seeds=${*:-0 1 2 3 4}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
iterations=${ITERATIONS:-9}
episodes=${EVAL_EPISODES:-10}
venv=${MBRL_VENV:-/work/mbrl-venv}
if [ -z "${DYNAPLAN:-}" ]; then
  if [ -x "$root/.venv/bin/dynaplan" ]; then DYNAPLAN=$root/.venv/bin/dynaplan; else DYNAPLAN=dynaplan; fi
fi
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$root/.venv/bin/python" ]; then PYTHON=$root/.venv/bin/python; else PYTHON=python; fi
fi
steps=$(( 200 * (iterations + 1) ))

for s in $seeds; do  # one sitting: never mixed with the runs of another
  if [ -e "$out/dynaplan_s$s" ] || [ -e "$out/mbrl_s$s.csv" ]; then
    echo "side_by_side.sh: $out already holds seed $s's runs; choose another OUT" >&2; exit 2
  fi
done
[ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import mbrl" 2>/dev/null \
  || bash "$here/setup_mbrl.sh" "$venv"
mkdir -p "$out"
log=$out/runs.log
{
  echo "# side_by_side.sh $(date -u +%FT%TZ): seeds $seeds, iterations $iterations ($steps steps), $episodes eval episodes"
  echo "# host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# dynaplan: $("$DYNAPLAN" --version 2>/dev/null || echo '?') ($(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo '?'))"
  echo "# mbrl-lib: $("$venv/bin/python" -c 'import mbrl, torch; print(mbrl.__version__, "torch", torch.__version__)' 2>/dev/null)"
} | tee -a "$log"

export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
for s in $seeds; do
  t=$(date +%s)
  # shellcheck disable=SC2086  # the extra flags split into words
  "$DYNAPLAN" train --env Pendulum-v1 --preset pets --seed "$s" --iterations "$iterations" \
    --eval-episodes "$episodes" --video-every 0 --device cpu --tensorboard off --quiet \
    ${DYNAPLAN_ARGS:-} --out "$out/dynaplan_s$s" >>"$out/dynaplan_s$s.log" 2>&1 \
    && rc=0 || rc=$?
  echo "dynaplan seed $s: rc=$rc $(( $(date +%s) - t )) s, load $(cut -d' ' -f1 /proc/loadavg)" | tee -a "$log"
  t=$(date +%s)
  # shellcheck disable=SC2086
  "$venv/bin/python" "$here/mbrl_pets.py" --steps "$steps" --seed "$s" \
    --eval-episodes "$episodes" ${MBRL_ARGS:-} --out "$out/mbrl_s$s.csv" \
    >>"$out/mbrl_s$s.log" 2>&1 && rc=0 || rc=$?
  echo "mbrl-lib seed $s: rc=$rc $(( $(date +%s) - t )) s, load $(cut -d' ' -f1 /proc/loadavg)" | tee -a "$log"
done
"$PYTHON" "$here/compare.py" "$out"
