#!/usr/bin/env bash
# Issue 3 benchmark: planning latency vs the matmul floor and the seed's own planners.
# Usage: bash benchmarks/bench_cpu.sh  (from the repository root, nothing else running:
# on this 2-core VM a second busy process makes every 2-thread kernel wait for it)
set -euo pipefail
uptime
dynaplan bench --calls 200 --json benchmarks/results/bench_cpu.json
