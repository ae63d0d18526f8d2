#!/usr/bin/env bash
# Issue 3 benchmark: planning latency vs the matmul floor and the seed's own planners.
# Usage: bash benchmarks/bench_cpu.sh  (from the repository root)
set -euo pipefail
dynaplan bench --calls 200 --json benchmarks/results/bench_cpu.json
