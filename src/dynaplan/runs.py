"""Run folders: their layout, their config, and a run loaded back as an acting agent.

    runs/<env>__<planner>__s<seed>__<timestamp>/
      config.json    the run's TrainConfig (config/flat.py's stored form)
      run.json       who ran it with what: versions, commit, command, device, one entry
                     per session (run_info.py)
      preset.json    what its --preset set and what the user replaced (a run with a preset)
      metrics.csv    one row per iteration (metrics.py)
      episodes.csv   one row per training episode
      summary.json   written when the run completes
      checkpoints/   one verified folder per iteration (checkpoint.py)
      plots/         the figures, redrawn as the run goes (plots.py)
      videos/        an mp4 of a training episode after iteration 0 and every K-th one
      tensorboard/   TensorBoard event files of the metrics (tensorboard_log.py)
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from dynaplan import accel
from dynaplan.agent import MPCAgent
from dynaplan.build import (
    build_models,
    build_objective,
    build_planner,
    build_termination,
    plan_with_termination,
    resolve_device,
    termination_value,
)
from dynaplan.checkpoint import Checkpoint, list_checkpoints
from dynaplan.checkpoint_read import load_models
from dynaplan.config import TrainConfig, from_dict, to_dict
from dynaplan.config.flat import replace_values, to_flat
from dynaplan.envs import EnvGiven, EnvSource, EnvSpec, env_source
from dynaplan.errors import ConfigError
from dynaplan.safe_files import make_dirs, write_text

CONFIG, METRICS, EPISODES, SUMMARY = "config.json", "metrics.csv", "episodes.csv", "summary.json"
PRESET, RUN_INFO = "preset.json", "run.json"
CHECKPOINTS, PLOTS, VIDEOS, TENSORBOARD = "checkpoints", "plots", "videos", "tensorboard"
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
_log = logging.getLogger(__name__)


def name_part(text: str) -> str:
    """`text` as part of a folder name: a "module:EnvId" or namespaced "ns/Env-v0" env
    names one folder, not a path (every character but letters, digits and ._+- as _)."""
    return _UNSAFE.sub("_", text)


def default_run_dir(config: TrainConfig, root: Path = Path("runs")) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return root / f"{name_part(config.env)}__{config.planner.name}__s{config.seed}__{stamp}"


def prepare_run_dir(path: Path, resuming: bool = False) -> Path:
    """Create the run folder (and its subfolders, each the folder's own, no link); refuse
    one that cannot be written, or, unless `resuming`, one that already holds a run. A
    folder whose run stopped before its first checkpoint holds no run: it is reused."""
    if not resuming and (path / CONFIG).exists() and not _crashed_start(path):
        raise ConfigError(f"{path} already holds a run; choose another --out, or continue it "
                          f"with --resume {path}")
    for sub in (CHECKPOINTS, PLOTS, VIDEOS):
        make_dirs(path, path / sub)
    write_text(path / ".write_test", "", root=path)
    (path / ".write_test").unlink()
    return path


def _crashed_start(path: Path) -> bool:
    """Whether `path` holds a dynaplan run that stopped before its first checkpoint (its
    config.json reads, no checkpoint): nothing in it is worth keeping."""
    if list_checkpoints(path / CHECKPOINTS):
        return False
    try:
        load_run_config(path)
    except ConfigError:
        return False
    return True


def write_config(run_dir: Path, config: TrainConfig) -> None:
    write_text(run_dir / CONFIG, json.dumps(to_dict(config), indent=2) + "\n", root=run_dir)


def write_preset(run_dir: Path, config: TrainConfig) -> str | None:
    """preset.json of a run with a preset (presets.applied: the values it set, their
    sources, the ones the user replaced); returns the line the run prints, None without
    a preset."""
    if config.preset is None:
        return None
    from dynaplan.presets import applied, applied_line

    record = applied(config.preset, config.env, to_flat(config), config.env_kwargs)
    write_text(run_dir / PRESET, json.dumps(record, indent=2) + "\n", root=run_dir)
    return applied_line(record)


def load_run_config(run_dir: Path) -> TrainConfig:
    """The run's config (a flat config.json of an older dynaplan migrated)."""
    path = run_dir / CONFIG
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run folder (no {CONFIG})")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} does not hold a mapping of options")
    return from_dict(data, source=str(path))


def read_summary(run_dir: Path) -> dict | None:
    """The run's summary.json (a completed run), or None when there is none or it is
    unreadable."""
    try:
        summary = json.loads((run_dir / SUMMARY).read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def runnable_here(config: TrainConfig, device: torch.device) -> TrainConfig:
    """`config` with every accelerator that cannot run on `device` in this process turned
    back to its default (a GPU run evaluated on a CPU, a native-kernel run where no
    compiler is): the same plans up to float rounding."""
    dropped = {name: ("auto" if name == "rollout_kernel" else "off")
               for kind, (name, _) in config.speed.accelerators().items()
               if accel.why_not(kind, device) is not None}
    if not dropped:
        return config
    return replace_values(config, device=device.type, **dropped)


@dataclass(frozen=True)
class LoadedRun:
    """A run folder's models and planner, loaded from one of its checkpoints."""

    config: TrainConfig
    spec: EnvSpec
    dynamics: nn.Module
    reward: nn.Module
    checkpoint: Checkpoint
    agent: MPCAgent
    env: EnvSource
    """Makes the run's environment (or the one passed to `load_agent`) to act in."""

    @property
    def env_steps(self) -> int | None:
        """Environment steps of the run at the end of the checkpoint's iteration."""
        rows = self.checkpoint.state.get("metrics") or []
        steps = rows[-1].get("env_steps") if rows and isinstance(rows[-1], dict) else None
        return int(steps) if isinstance(steps, (int, float)) else None


def load_agent(run_dir: Path, device: str = "auto", seed: int = 0,
               iteration: int | None = None, override: dict | None = None,
               env: EnvGiven | None = None) -> LoadedRun:
    """Build the run's models, load a checkpoint into them (the newest, or the one of
    `iteration`) and wrap its planner in an agent. `override`: option values (as users
    write them: planner settings, for example) that replace the run's before anything is
    built. `env`: the environment to act in (an id, a factory or an instance, with the
    run's env kwargs for an id or a factory) instead of the run's own; a run whose env was
    passed from Python needs it (envs/source.py)."""
    config = load_run_config(run_dir)
    if override:
        config = replace_values(config, **override)
    dev = resolve_device(device)
    config = runnable_here(config, dev)
    source = env_source(config.env, config.env_kwargs, env)
    spec = source.describe()
    dynamics, reward = build_models(spec, dev, config)
    termination = build_termination(spec, dev, config)
    checkpoint = load_models(run_dir / CHECKPOINTS, dynamics, reward, _log.warning, iteration,
                             termination)
    dynamics.eval()
    reward.eval()
    # an ensemble's particles draw from a generator of their own
    objective = build_objective(config, dynamics, reward,
                                torch.Generator(device=dev).manual_seed(seed + 1))
    if termination is not None and bool(termination.fitted):
        termination.eval()
        plan_with_termination(config, objective, termination)
    objective.refresh()
    objective.termination_value = termination_value(
        config, torch.as_tensor(checkpoint.buffer.reward))
    gen = torch.Generator(device=dev).manual_seed(seed)
    agent = MPCAgent(build_planner(config, objective, spec, gen), dev)
    return LoadedRun(config, spec, dynamics, reward, checkpoint, agent, source)


def code_version(where: Path | None = None) -> str:
    """`git rev-parse --short HEAD` of the code (with +dirty when the package's files
    differ from it), or 'unknown' outside git."""
    where = where or Path(__file__).resolve().parent  # the dynaplan package
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=where,
                              capture_output=True, text=True, timeout=10)
        if head.returncode:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=where,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
