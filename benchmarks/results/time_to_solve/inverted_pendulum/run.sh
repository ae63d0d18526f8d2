#!/usr/bin/env bash
set -u
for s in 0 1 2 3 4; do
  /work/main/.venv/bin/python -m dynaplan train --env InvertedPendulum-v5 --preset pets --seed $s --iterations 6 --eval-every 1 --eval-episodes 5 --video-every 0 --device cpu --tensorboard off --quiet --out /work/out/tts_ip/s$s > /dev/null 2>&1
  echo "s$s rc=$? $(date +%T)"
done
