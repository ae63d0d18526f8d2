#!/usr/bin/env bash
# A separate virtual environment with mbrl-lib (facebookresearch/mbrl-lib 0.2.0, dormant) for
# the side-by-side benchmark (benchmarks/peer/side_by_side.sh). Never a dependency of
# dynaplan: nothing here touches dynaplan's own environment.
#   bash benchmarks/peer/setup_mbrl.sh VENV          (e.g. /work/mbrl-venv; idempotent)
#
# mbrl 0.2.0 pins hydra-core==1.0.3 and omegaconf<2.1, which do not install on Python 3.11,
# and gymnasium==0.26.3, which breaks on numpy 2. So it is installed with --no-deps and
# only what `import mbrl, mbrl.planning, mbrl.models, mbrl.util.common` needs is added, the
# pins relaxed: hydra-core 1.3.x, omegaconf 2.3.x, numpy<2, gymnasium 0.26.3. Its other
# requirements (jupyter, pytest, tensorboard, sk-video, imageio, matplotlib) serve its
# notebooks, tests, logging and videos, which the benchmark does not use. Hydra 1.1+
# instantiates nested configs recursively, so mbrl_pets.py sets `_recursive_: False` on
# the model and agent configs (mbrl-lib instantiates their nested parts itself). pip then
# reports the unmet and relaxed pins of mbrl 0.2.0 as "dependency conflicts": expected.
set -euo pipefail
venv=${1:?usage: setup_mbrl.sh VENV}
py=${BASE_PYTHON:-python3.11}  # the interpreter the venv is made from

[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check)

# torch first, the CPU wheel (the one this machine's disk holds for 2.13.0)
"${pip[@]}" show torch 2>/dev/null | grep -qx 'Version: 2.13.0.*' \
  || "${pip[@]}" install -q torch==2.13.0
"${pip[@]}" install -q --no-deps mbrl==0.2.0
"${pip[@]}" install -q "numpy<2" "gymnasium==0.26.3" "hydra-core>=1.3,<1.4" \
  "omegaconf>=2.3,<2.4" termcolor tqdm packaging

cd /  # not the repository: import the installed packages
OMP_NUM_THREADS=1 "$venv/bin/python" - <<'EOF'
import gymnasium, hydra, numpy, omegaconf, torch
import mbrl, mbrl.models, mbrl.planning, mbrl.util.common  # noqa: F401
print(f"mbrl {mbrl.__version__}, torch {torch.__version__}, numpy {numpy.__version__}, "
      f"gymnasium {gymnasium.__version__}, hydra-core {hydra.__version__}, "
      f"omegaconf {omegaconf.__version__}")
EOF
