#!/usr/bin/env bash
# Issue 3's GPU checks on a lent GPU machine (its Python has torch and triton but not
# gymnasium): the CUDA tests, a kernel census of plan calls (benchmarks/cuda_profile.py),
# `dynaplan bench` through CUDA graphs (each setting's plain calls timed beside it) in
# float32 and with --tf32, and the Triton rollout kernel. Each step has its own time
# limit, so a slow one cannot starve the rest.
#
# Usage, from the repository root: bash benchmarks/cuda_session.sh OUT_DIR [STEP ...]
# STEPs, in this order (default: all): tests census bench tf32 triton triton-bench
# Their time limits add up to 17 minutes, and one device call runs at most 600 s, so a
# session takes a few steps a call: first `tests triton`, then `triton-bench bench tf32`.
#   triton: the Triton rollout kernel against the torch path (triton_rollout_ab.py):
#   settings a, c, d, six tile configurations, float32 and TF32, through CUDA graphs;
#   triton-bench: `dynaplan bench --rollout-kernel triton --tf32`.
# Wheels in .whl/ (gymnasium, Farama-Notifications) are installed to /tmp/site first when
# present; the seed's code is read from $SEED_REF (default .devcarry/seed_reference.py,
# a copy of ../shared/anchors/seed_reference.py, which does not travel to the machine).
set -uo pipefail
out=${1:?usage: bash benchmarks/cuda_session.sh OUT_DIR [STEP ...]}
shift
steps=${*:-tests census bench tf32 triton triton-bench}
want() { [[ " $steps " == *" $1 "* ]]; }
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
ref=${SEED_REF:-.devcarry/seed_reference.py}
dynaplan() { python3 -m dynaplan "$@"; }
export -f dynaplan

{
    date -u
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.used \
        --format=csv
    python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
    python3 -c "import triton; print('triton', triton.__version__)"
    if want tests; then
        echo "== CUDA tests"
        timeout 150 python3 -m pytest -q -p no:cacheprovider -rs tests/test_cuda_graph.py \
            tests/test_cuda_paths.py tests/test_triton_rollout.py
    fi
    if want census; then
        echo "== kernel census and the epilogue A/B"
        timeout 100 python3 benchmarks/cuda_profile.py --json "$out/cuda_profile.json"
    fi
    if want bench; then
        echo "== bench, CUDA graphs (plain calls beside them)"
        timeout 200 bash -c "dynaplan bench --device cuda --cuda-graph --seed-reference \
            '$ref' --json '$out/bench_cuda_graph.json'"
    fi
    if want tf32; then
        echo "== bench with TF32 matmuls (plans, floor probes and fits)"
        timeout 120 bash -c "dynaplan bench --device cuda --cuda-graph --tf32 \
            --seed-reference '' --json '$out/bench_cuda_tf32.json'"
    fi
    if want triton; then
        echo "== the Triton rollout kernel against the torch path, through CUDA graphs"
        timeout 300 python3 benchmarks/triton_rollout_ab.py --tf32 --calls 100 \
            --json "$out/triton_ab.json"
    fi
    if want triton-bench; then
        echo "== bench with the Triton rollout kernel and TF32"
        timeout 150 bash -c "dynaplan bench --device cuda --cuda-graph --rollout-kernel \
            triton --tf32 --seed-reference '' --json '$out/bench_cuda_triton_tf32.json'"
    fi
    date -u
} 2>&1 | tee "$out/session.log"
