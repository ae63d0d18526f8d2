"""How much memory one plan call needs, checked before a run starts: sizes whose first plan
call would need more than the machine has are refused in one line, not found out by the
kernel's out-of-memory killer after the random data was collected.

The estimate counts a call's largest tensors, in float32, for R = B x N x P rows (B start
states: the evaluation episodes planned as one batch; N candidates, a tenth more for kept
elites and the mean; P particles) over H steps with O observations, A actions and hidden
layers W wide: the candidate actions and their particle copies (3 R H A), the predicted
states and their transition views (3 R (H + 1) O), the rewards and termination masks
(3 R H), the hidden activations of a step (4 R W), and, for rollouts that evaluate a
learned reward over all R x H transitions at once, those activations (2 R H W). It is an
upper estimate of the peak, within a small factor; only sizes far beyond the machine
are refused.
"""

from __future__ import annotations

import os

import torch

from dynaplan.config import TrainConfig
from dynaplan.envs import EnvSpec
from dynaplan.errors import ConfigError

SEED_WIDTH = 512
"""The widest layer of the seed's MLPs (dynamics and reward)."""


def plan_bytes(config: TrainConfig, spec: EnvSpec) -> int:
    """The estimate of the module docstring for `config`'s planner and models."""
    options = config.planner.options
    candidates = int(options.num_sequences * 1.1) + 1
    start_states = max(1, config.eval_episodes)
    particles = 1 if config.model.dynamics == "mlp" else config.model.ensemble.particles
    rows = start_states * candidates * particles
    h, o, a = config.planner.horizon, spec.obs_dim, spec.action_dim
    width = SEED_WIDTH
    if config.model.dynamics != "mlp":
        width = max(width, config.model.ensemble.hidden)
    floats = rows * (3 * h * a + 3 * (h + 1) * o + 3 * h + 4 * width)
    if config.model.reward == "learned":
        floats += 2 * rows * h * SEED_WIDTH
    return 4 * floats


def available_bytes(device: torch.device) -> int | None:
    """Memory free for a plan call on `device` (None where it cannot be told)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_plan_memory(config: TrainConfig, spec: EnvSpec, device: torch.device) -> None:
    """Refuse, in one line with both figures, sizes whose plan call needs more memory than
    `device` has free."""
    need, free = plan_bytes(config, spec), available_bytes(device)
    if free is None or need <= free:
        return
    p = config.planner
    particles = "" if config.model.dynamics == "mlp" else \
        f" x {config.model.ensemble.particles} particles"
    raise ConfigError(
        f"a plan call would need about {need / 2**30:.1f} GiB ({p.options.num_sequences} "
        f"sequences{particles} x {max(1, config.eval_episodes)} start state(s) x "
        f"{p.horizon} steps), more than the {free / 2**30:.1f} GiB free on {device}; lower "
        "--num-sequences, --particles, --horizon or --eval-episodes")
