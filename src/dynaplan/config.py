"""Run configuration: one frozen dataclass whose field docs become `--help`.

The defaults are the seed exercise's hyperparameters (Pendulum-v1, CEM, 100 iterations of
200 steps, seed 123). Validation happens on construction, so a bad value never reaches the
training loop.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dynaplan.errors import ConfigError

PLANNERS = ("cem", "random", "icem", "mppi")
PRESETS = ("pets", "icem", "mppi", "pets-paper")  # their values: presets.py
SAMPLINGS = ("clip", "truncnorm")
WARM_STARTS = ("auto", "on", "off")
SWITCHES = ("off", "on")
# planner options whose default (None) means "the chosen planner's own default"
PLANNER_OPTIONS = ("alpha", "init_std", "sampling", "return_mean", "beta", "keep_fraction",
                   "decay", "temperature", "noise_std", "smoothing")
SWITCH_OPTIONS = ("return_mean",)  # planner options given as off/on, passed as bool
DEVICES = ("auto", "cpu", "cuda")
REWARDS = ("learned", "known", "shaped")
DYNAMICS = ("mlp", "ensemble")
# ensemble propagation modes (models/propagation.py, Chua et al. 2018 sec. 5)
PROPAGATIONS = ("ts1", "tsinf", "expectation")
TERMINATIONS = ("none", "known")
ACTIVATIONS = ("silu", "relu")
ROLLOUT_KERNELS = ("auto", "torch", "triton", "native")  # planners/objective.py KERNELS
GPU_ONLY = {"cuda_graph": "on", "tf32": "on", "rollout_kernel": "triton"}
"""The options whose value here needs a CUDA device (and is dropped off one by `eval`)."""


def _f(default: Any, help: str, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, **extra})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a `dynaplan train` run (saved as config.json)."""

    env: str = _f("Pendulum-v1", "gymnasium environment id (Box observation and action spaces)")
    preset: str | None = _f(None, "per-environment option bundle (presets.py); flags override "
                            "its values", type=str, choices=PRESETS)
    planner: str = _f("cem", "trajectory optimizer", choices=PLANNERS)
    iterations: int = _f(100, "outer iterations of fit-then-act (Algorithm 1)")
    steps_per_iteration: int = _f(
        200, "environment steps collected with the planner per iteration (whole episodes)"
    )
    random_trajectories: int = _f(10, "random-action episodes collected before the first fit")
    train_episode_steps: int | None = _f(
        None, "end every training episode (random and planned) after at most N steps; "
        "evaluation episodes keep the environment's own limit (default: the environment's "
        "limit)", type=int)
    horizon: int = _f(15, "planning horizon H in steps")
    num_sequences: int = _f(100, "candidate action sequences N per planner iteration")
    cem_iterations: int = _f(5, "refinement iterations per plan call (cem, icem, mppi)")
    num_elites: int = _f(
        10, "CEM/iCEM elites: best sequences that refit the sampling distribution")
    alpha: float | None = _f(None, "cem/icem momentum: weight of the old mean and std",
                             type=float)
    init_std: float | None = _f(
        None, "cem/icem initial std in half action ranges (cem default: from uniform samples)",
        type=float)
    sampling: str | None = _f(None, "cem/icem/mppi: clip samples to the bounds or truncnorm",
                              type=str, choices=SAMPLINGS)
    return_mean: str | None = _f(None, "cem: act on the final mean (PETS) instead of the best "
                                 "sample (the seed)", type=str, choices=SWITCHES)
    beta: float | None = _f(None, "icem colored-noise exponent (0 white, 2 smooth)", type=float)
    keep_fraction: float | None = _f(None, "icem share of elites kept between iterations",
                                     type=float)
    decay: float | None = _f(None, "icem population decay per iteration", type=float)
    temperature: float | None = _f(None, "mppi temperature of the return weighting",
                                   type=float)
    noise_std: float | None = _f(None, "mppi noise std in half action ranges", type=float)
    smoothing: float | None = _f(None, "mppi noise smoothing coefficient in [0, 1)",
                                 type=float)
    warm_start: str = _f("auto", "start each plan from the previous one shifted "
                         "(auto: off for cem/random, on for icem/mppi)", choices=WARM_STARTS)
    epochs: int = _f(50, "passes over the training split per model fit")
    batch_size: int = _f(2000, "minibatch size for model fitting")
    lr: float = _f(3e-4, "Adam learning rate of the dynamics and the reward model")
    valid_fraction: float = _f(0.2, "share of transitions held out for validation loss")
    input_noise: float = _f(0.001, "std of Gaussian noise added to normalized model inputs")
    reward: str = _f("learned", "plan with the learned reward model, the env's known reward "
                     "or a shaped planning reward (envs/rewards.py)", choices=REWARDS)
    termination: str = _f("none", "stop predicted returns at the env's known termination "
                          "(known) or never (none)", choices=TERMINATIONS)
    dynamics: str = _f("mlp", "dynamics model: the seed's deterministic MLP or a PETS "
                       "probabilistic ensemble", choices=DYNAMICS)
    ensemble_size: int = _f(5, "ensemble: Gaussian MLP members E")
    keep_members: int = _f(0, "ensemble: plan with the members of lowest validation loss "
                           "(0: all)")
    particles: int = _f(20, "ensemble: particles P per candidate sequence")
    propagation: str = _f("ts1", "ensemble: ts1 redraws each particle's member every step, "
                          "tsinf keeps it, expectation averages the members",
                          choices=PROPAGATIONS)
    ensemble_hidden: int = _f(200, "ensemble: width of each hidden layer")
    ensemble_layers: int = _f(4, "ensemble: hidden layers")
    ensemble_activation: str = _f("silu", "ensemble: hidden activation (silu as in PETS; relu "
                                  "costs far less per plan on a CPU)", choices=ACTIVATIONS)
    ensemble_lr: float = _f(1e-3, "ensemble: Adam learning rate")
    ensemble_batch_size: int = _f(256, "ensemble: minibatch size per member")
    eval_episodes: int = _f(
        0, "episodes on fixed reset seeds after each iteration, not added to the data"
    )
    eval_every: int = _f(1, "evaluate after every K-th iteration and the last one")
    video_every: int = _f(10, "save an mp4 of the last episode every K iterations (0: never)")
    seed: int = _f(123, "seed of every random generator (env, data split, init, planner)")
    device: str = _f("auto", "torch device; auto picks cuda when available", choices=DEVICES)
    cuda_graph: str = _f("off", "capture each plan call as a CUDA graph and replay it "
                         "(a CUDA device only; planners/graphed.py)", choices=SWITCHES)
    tf32: str = _f("off", "planning rollouts multiply on TF32 tensor cores: faster, about "
                   "1e-3 relative error; fitting stays float32 (a CUDA device only; "
                   "precision.py)", choices=SWITCHES)
    rollout_kernel: str = _f("auto", "run each plan call's dynamics rollouts as torch ops "
                             "step by step, as one Triton kernel (a CUDA device, the "
                             "triton package; an ensemble by tsinf; models/triton_rollout.py; "
                             "experimental), or as one native C kernel (the CPU: Linux x86-64 "
                             "with AVX2 and a C compiler; an ensemble by tsinf; "
                             "models/native_rollout.py); auto: native where it can run, "
                             "else torch", choices=ROLLOUT_KERNELS)

    def __post_init__(self) -> None:
        positive = ("iterations", "steps_per_iteration", "random_trajectories", "horizon",
                    "num_sequences", "cem_iterations", "num_elites", "epochs", "batch_size",
                    "ensemble_size", "particles", "ensemble_hidden", "ensemble_layers",
                    "ensemble_batch_size", "eval_every")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name} must be an integer, got {value!r}")
            if value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}")
        value = self.train_episode_steps
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value <= 0):
            raise ConfigError(f"train_episode_steps must be a positive integer, got {value!r}")
        for name in ("eval_episodes", "video_every", "seed", "keep_members"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name} must be an integer, got {value!r}")
            if value < 0:
                raise ConfigError(f"{name} must be >= 0, got {value}")
        for name in ("lr", "valid_fraction", "input_noise", "ensemble_lr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{name} must be a number, got {value!r}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        if self.ensemble_lr <= 0:
            raise ConfigError(f"ensemble_lr must be positive, got {self.ensemble_lr}")
        if not 0 < self.valid_fraction < 1:
            raise ConfigError(f"valid_fraction must be in (0, 1), got {self.valid_fraction}")
        if self.input_noise < 0:
            raise ConfigError(f"input_noise must be >= 0, got {self.input_noise}")
        if not isinstance(self.env, str) or not self.env:
            raise ConfigError(f"env must be a non-empty string, got {self.env!r}")
        for name in PLANNER_OPTIONS:
            value = getattr(self, name)
            if value is None or name == "sampling" or name in SWITCH_OPTIONS:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{name} must be a number, got {value!r}")
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            if choices and value is not None and value not in choices:
                raise ConfigError(
                    f"{f.name} must be one of {', '.join(choices)}, got {getattr(self, f.name)!r}"
                )
        if self.planner in ("cem", "icem") and self.num_elites > self.num_sequences:
            raise ConfigError(
                f"num_elites ({self.num_elites}) must not exceed num_sequences "
                f"({self.num_sequences})"
            )

        for name, value in GPU_ONLY.items():
            if getattr(self, name) == value and self.device == "cpu":
                raise ConfigError(f"{name} {value} needs a CUDA device (device cuda or auto)")
        if self.rollout_kernel == "native" and self.device == "cuda":
            raise ConfigError("rollout_kernel native runs on the CPU (device cpu, or auto "
                              "without CUDA)")
        if (self.rollout_kernel in ("triton", "native") and self.dynamics == "ensemble"
                and self.propagation != "tsinf"):
            raise ConfigError(f"rollout_kernel {self.rollout_kernel} propagates an ensemble "
                              f"by tsinf only, not {self.propagation}")
        if self.dynamics == "ensemble":
            self._check_ensemble()
        if self.termination == "known":
            from dynaplan.envs.terminations import KNOWN_TERMINATIONS

            if self.env not in KNOWN_TERMINATIONS:
                raise ConfigError(f"termination known: {self.env} has no known termination "
                                  f"(known for {', '.join(sorted(KNOWN_TERMINATIONS))})")

    def _check_ensemble(self) -> None:
        if self.keep_members > self.ensemble_size:
            raise ConfigError(f"keep_members ({self.keep_members}) must not exceed "
                              f"ensemble_size ({self.ensemble_size})")
        kept = self.kept_members
        if self.propagation != "expectation" and self.particles % kept:
            raise ConfigError(f"particles ({self.particles}) must be a multiple of the kept "
                              f"ensemble members ({kept}) for propagation {self.propagation}")

    @property
    def kept_members(self) -> int:
        """Ensemble members used for planning (keep_members, or all of them)."""
        return self.keep_members or self.ensemble_size

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from a mapping whose keys may use dashes or underscores."""
        names = {f.name for f in dataclasses.fields(cls)}
        clean: dict[str, Any] = {}
        for key, value in data.items():
            name = str(key).replace("-", "_")
            if name not in names:
                raise ConfigError(f"{source}: unknown key {key!r}")
            clean[name] = value
        kinds = {f.name: field_type(f) for f in dataclasses.fields(cls)}
        for name, value in clean.items():
            if value is None:
                continue
            if kinds[name] is float and isinstance(value, int) and not isinstance(value, bool):
                clean[name] = float(value)
            elif kinds[name] is str and not isinstance(value, str):
                raise ConfigError(f"{source}: {name} must be a string, got {value!r}")
        return cls(**clean)


def field_type(f: dataclasses.Field) -> type:
    """The scalar type of a TrainConfig field (for optional fields, from its metadata)."""
    return f.metadata.get("type", type(f.default))


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON mapping of train options; refuse anything else in one line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # any parser error becomes one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"config file {path} could not be parsed: {first}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option: value")
    return data
