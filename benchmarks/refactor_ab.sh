#!/usr/bin/env bash
# Interleaved `dynaplan bench` of two checkouts of dynaplan in one sitting (A B A B ...):
# the speed check of a refactor (issue "One seam for speed": settings a, c and fitting
# within 5% of the code before it).
#
#   bash benchmarks/refactor_ab.sh OLD_SRC NEW_SRC OUT [PAIRS]
#
# OLD_SRC / NEW_SRC: the `src` folders of the two checkouts (e.g. a `git worktree` of the
# older commit); both run in this project's virtual environment, from the project root so
# that the seed's reference code is found. Writes OUT/{old,new}_K.json and prints the
# ratios of each run.
set -euo pipefail
old=$1; new=$2; out=$3; pairs=${4:-3}
mkdir -p "$out"
cd "$(dirname "$0")/.."
run() {  # SRC NAME
  PYTHONPATH=$1 python -c "
import importlib, importlib.util, sys
name = 'dynaplan.app.cli' if importlib.util.find_spec('dynaplan.app') else 'dynaplan.cli'
sys.argv[0] = 'dynaplan'
sys.exit(importlib.import_module(name).main())" bench --calls 200 --json "$out/$2.json" \
    > "$out/$2.txt" 2>&1
  python - "$out/$2.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = {x["setting"]: x for x in r["settings"]}
print(sys.argv[1], "a", round(s["a_seed_cem"]["ratio_to_floor"], 3),
      "c", round(s["c_pets_sized"]["ratio_to_floor"], 3),
      "fit", round(r["fit"]["ratio_to_floor"], 3))
PY
}
for k in $(seq 1 "$pairs"); do
  run "$old" "old_$k"
  run "$new" "new_$k"
done
