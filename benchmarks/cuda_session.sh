#!/usr/bin/env bash
# Issue 3's GPU checks, in one call of a lent GPU machine (its Python has torch but not
# gymnasium): the CUDA tests, a kernel census of plan calls (benchmarks/cuda_profile.py),
# then `dynaplan bench` through CUDA graphs (each setting's plain calls timed beside it),
# in float32 and with --tf32. Each step has its own time limit, so a slow one cannot
# starve the rest.
#
# Usage, from the repository root: bash benchmarks/cuda_session.sh OUT_DIR
# Wheels in .whl/ (gymnasium, Farama-Notifications) are installed to /tmp/site first when
# present; the seed's code is read from $SEED_REF (default .devcarry/seed_reference.py,
# a copy of ../shared/anchors/seed_reference.py, which does not travel to the machine).
set -uo pipefail
out=${1:?usage: bash benchmarks/cuda_session.sh OUT_DIR}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
ref=${SEED_REF:-.devcarry/seed_reference.py}
dynaplan() { python3 -m dynaplan.cli "$@"; }
export -f dynaplan

{
    date -u
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.used \
        --format=csv
    python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
    echo "== CUDA tests"
    timeout 120 python3 -m pytest -q -p no:cacheprovider -rs tests/test_cuda_graph.py \
        tests/test_cuda_paths.py
    echo "== kernel census and the epilogue A/B"
    timeout 100 python3 benchmarks/cuda_profile.py --json "$out/cuda_profile.json"
    echo "== bench, CUDA graphs (plain calls beside them)"
    timeout 200 bash -c "dynaplan bench --device cuda --cuda-graph --seed-reference '$ref' \
        --json '$out/bench_cuda_graph.json'"
    echo "== bench with TF32 matmuls (plans, floor probes and fits)"
    timeout 120 bash -c "dynaplan bench --device cuda --cuda-graph --tf32 \
        --seed-reference '' --json '$out/bench_cuda_tf32.json'"
    date -u
} 2>&1 | tee "$out/session.log"
