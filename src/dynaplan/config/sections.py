"""The run configuration: frozen dataclasses nested by concern, validated on construction.

    TrainConfig      the environment, the data schedule, evaluation, video, seed, device
      .model         ModelConfig: what is learned and how it is fitted
        .ensemble    EnsembleConfig: an ensemble's size, network, fit and propagation
      .planner       PlannerConfig: which planner, its horizon, warm start, and its own
                     options (the planner's options dataclass, declared beside it)
      .speed         SpeedConfig: how the same computation runs faster (accel/)

The defaults are the seed exercise's (Pendulum-v1, CEM, 100 iterations of 200 steps, seed
123). Every field's help becomes `--help`; a field's `flag` metadata names its option
where that differs from the field (config/flat.py: the names users write). A bad value
never reaches the training loop: each section checks itself, and messages name the
option as users write it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from dynaplan import accel
from dynaplan.config.mapping import JsonMapping, mapping_value
from dynaplan.errors import ConfigError, quoted
from dynaplan.planners import PLANNERS
from dynaplan.types import (
    ACTIVATIONS,
    DEVICES,
    DYNAMICS_MODELS,
    PROPAGATIONS,
    REWARDS,
    TENSORBOARD_MODES,
    TERMINATION_VALUES,
    TERMINATIONS,
    WARM_STARTS,
    option,
)

MAX_SEED = 2**32 - 1
"""The largest seed: numpy, torch and gymnasium all take seeds up to 2^32 - 1, and a run
derives its generators' seeds from it."""


def flag_of(section: Any, name: str) -> str:
    """The option name users write for field `name` of a section."""
    f = next(f for f in dataclasses.fields(section) if f.name == name)
    return f.metadata.get("flag", name)


def _check(section: Any, positive: tuple[str, ...] = (), at_least_zero: tuple[str, ...] = (),
           numbers: tuple[str, ...] = ()) -> None:
    """Type and range checks of a section's fields; choices of every field that has them."""
    for name in positive + at_least_zero:
        value, flag = getattr(section, name), flag_of(section, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{flag} must be an integer, got {quoted(value)}")
        if value <= 0 and name in positive:
            raise ConfigError(f"{flag} must be positive, got {value}")
        if value < 0:
            raise ConfigError(f"{flag} must be >= 0, got {value}")
    for name in numbers:
        value, flag = getattr(section, name), flag_of(section, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{flag} must be a number, got {quoted(value)}")
        if not math.isfinite(value):
            raise ConfigError(f"{flag} must be a finite number, got {quoted(value)}")
    for f in dataclasses.fields(section):
        choices = f.metadata.get("choices")
        value = getattr(section, f.name)
        if not choices or value is None or value in choices:
            continue
        if f.metadata.get("functions"):  # a word, or a user's module:function
            if not (isinstance(value, str) and ":" in value):
                raise ConfigError(f"{f.metadata.get('flag', f.name)} must be one of "
                                  f"{', '.join(choices)} or module:function, got "
                                  f"{quoted(value)}")
            continue
        raise ConfigError(f"{f.metadata.get('flag', f.name)} must be one of "
                          f"{', '.join(choices)}, got {quoted(value)}")


@dataclass(frozen=True)
class EnsembleConfig:
    """An ensemble dynamics model (`dynamics` ensemble or deterministic-ensemble); the
    deterministic one has no variance to sample, so its particles differ by member only."""

    size: int = option(5, "ensemble: members E", flag="ensemble_size")
    keep: int = option(0, "ensemble: plan with the members of lowest validation loss "
                       "(0: all)", flag="keep_members")
    particles: int = option(20, "ensemble: particles P per candidate sequence",
                            flag="particles")
    propagation: str = option("ts1", "ensemble: ts1 redraws each particle's member every "
                              "step, tsinf keeps it, expectation averages the members",
                              flag="propagation", choices=PROPAGATIONS)
    hidden: int = option(200, "ensemble: width of each hidden layer", flag="ensemble_hidden")
    layers: int = option(4, "ensemble: hidden layers", flag="ensemble_layers")
    activation: str = option("silu", "ensemble: hidden activation (silu as in PETS; relu "
                             "costs far less per plan on a CPU)", flag="ensemble_activation",
                             choices=ACTIVATIONS)
    lr: float = option(1e-3, "ensemble: Adam learning rate", flag="ensemble_lr")
    batch_size: int = option(256, "ensemble: minibatch size per member",
                             flag="ensemble_batch_size")

    def __post_init__(self) -> None:
        _check(self, positive=("size", "particles", "hidden", "layers", "batch_size"),
               at_least_zero=("keep",), numbers=("lr",))
        if not self.lr > 0:
            raise ConfigError(f"ensemble_lr must be positive, got {self.lr}")

    @property
    def kept(self) -> int:
        """Members used for planning (keep, or all of them)."""
        return self.keep or self.size

    def check_consistent(self) -> None:
        """The checks that matter only when an ensemble is learned."""
        if self.keep > self.size:
            raise ConfigError(f"keep_members ({self.keep}) must not exceed ensemble_size "
                              f"({self.size})")
        if self.propagation != "expectation" and self.particles % self.kept:
            raise ConfigError(f"particles ({self.particles}) must be a multiple of the kept "
                              f"ensemble members ({self.kept}) for propagation "
                              f"{self.propagation}")


@dataclass(frozen=True)
class ModelConfig:
    """What is learned, how it is fitted, and what the planner plans with."""

    dynamics: str = option("mlp", "dynamics model: the seed's deterministic MLP, a PETS "
                           "probabilistic ensemble, or an ensemble of deterministic MLPs "
                           "(the ensemble_* options size both ensembles)",
                           choices=DYNAMICS_MODELS)
    reward: str = option("learned", "plan with the learned reward model, the env's known "
                         "(or registered) reward, a shaped planning reward, or your own "
                         "batched torch function module:function (docs/rewards.md)",
                         choices=REWARDS, functions=True)
    termination: str = option("auto", "stop predicted returns at the env's known (or "
                              "registered) termination (known), at a learned termination "
                              "model's (learned), never (none), at your own function's "
                              "(module:function, docs/rewards.md), or auto: known where the "
                              "env has one, else learned once the data hold a termination",
                              choices=TERMINATIONS, functions=True)
    termination_value: str = option(
        "zero", "what each step after a predicted termination is worth to the planner: "
        "zero, the hard cut of PETS, or floor, the lowest of 0 and the lowest per-step "
        "reward in the data (ending an episode never beats staying in it)",
        choices=TERMINATION_VALUES)
    epochs: int = option(50, "passes over the training split per model fit")
    batch_size: int = option(2000, "minibatch size for fitting the MLPs")
    lr: float = option(3e-4, "Adam learning rate of the MLPs (dynamics and reward)")
    valid_fraction: float = option(0.2, "share of transitions held out for validation loss")
    input_noise: float = option(0.001, "std of Gaussian noise added to the MLPs' normalized "
                                "inputs while fitting")
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)

    def __post_init__(self) -> None:
        _check(self, positive=("epochs", "batch_size"),
               numbers=("lr", "valid_fraction", "input_noise"))
        if not self.lr > 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        if not 0 < self.valid_fraction < 1:
            raise ConfigError(f"valid_fraction must be in (0, 1), got {self.valid_fraction}")
        if not self.input_noise >= 0:
            raise ConfigError(f"input_noise must be >= 0, got {self.input_noise}")
        if not isinstance(self.ensemble, EnsembleConfig):
            raise ConfigError(f"model.ensemble must be an EnsembleConfig, got "
                              f"{quoted(self.ensemble)}")
        if self.dynamics != "mlp":
            self.ensemble.check_consistent()


@dataclass(frozen=True)
class PlannerConfig:
    """Which planner, over what horizon, warm-started or not, with its own options."""

    name: str = option("cem", "trajectory optimizer", flag="planner",
                       choices=tuple(PLANNERS))
    horizon: int = option(15, "planning horizon H in steps")
    warm_start: str = option("auto", "start each plan from the previous one shifted "
                             "(auto: off for cem/random, on for icem/mppi)",
                             choices=WARM_STARTS)
    options: Any = field(default=None)
    """The planner's options dataclass (`PLANNERS[name].Options`; None: its defaults)."""

    def __post_init__(self) -> None:
        _check(self, positive=("horizon",))
        kind = PLANNERS[self.name].Options
        if self.options is None:
            object.__setattr__(self, "options", kind())
        elif type(self.options) is not kind:
            raise ConfigError(f"planner {self.name} takes {kind.__name__}, got "
                              f"{type(self.options).__name__}")


@dataclass(frozen=True)
class SpeedConfig:
    """How the same computation runs faster (accel/); no choice here changes what is
    computed beyond float rounding."""

    rollout_kernel: str = option(
        "auto", "run each plan call's rollouts as the plain torch reference, as fused torch "
        "ops, as one Triton kernel (a CUDA device with the triton package; an ensemble by "
        "tsinf; experimental), or as one native C kernel (the CPU: Linux x86-64 with AVX2 "
        "and a C compiler; an ensemble by tsinf); auto: native where it can run, else "
        "torch", choices=accel.ROLLOUT_KERNELS)
    cuda_graph: bool = option(False, "capture each plan call as a CUDA graph and replay it "
                              "(a CUDA device only)")
    tf32: bool = option(False, "planning rollouts multiply on TF32 tensor cores: faster, "
                        "about 1e-3 relative error; fitting stays float32 (a CUDA device "
                        "only)")

    def __post_init__(self) -> None:
        _check(self)
        for name in ("cuda_graph", "tf32"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be off or on, got {quoted(getattr(self, name))}")

    def accelerators(self) -> dict[str, tuple[str, str]]:
        """The accelerators these settings ask for: kind -> (option, value), as users
        write them; "auto", "reference" and "torch" ask for nothing that may be missing."""
        asked = {}
        if self.rollout_kernel in ("native", "triton"):
            asked[self.rollout_kernel] = ("rollout_kernel", self.rollout_kernel)
        for name in ("cuda_graph", "tf32"):
            if getattr(self, name):
                asked[name] = (name, "on")
        return asked


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a `dynaplan train` run (saved as config.json)."""

    env: str = option("Pendulum-v1", "gymnasium environment id (Box observation and action "
                      "spaces), or module:EnvId (the module is imported first, which "
                      "registers the id), or module:factory (a callable returning an env)")
    env_kwargs: JsonMapping = option(JsonMapping(), "keyword arguments of the environment, "
                                     "a JSON or YAML mapping passed to gym.make(env, **kwargs) "
                                     "or the factory")
    preset: str | None = option(None, "option bundle (pets, icem, mppi, pets-paper); flags "
                                "override its values", unset="none")
    iterations: int = option(100, "outer iterations of fit-then-act (Algorithm 1)")
    steps_per_iteration: int = option(200, "environment steps collected with the planner "
                                      "per iteration (whole episodes)")
    random_trajectories: int = option(10, "random-action episodes collected before the "
                                      "first fit")
    train_episode_steps: int | None = option(None, "end every training episode (random and "
                                             "planned) after at most N steps; evaluation "
                                             "episodes keep the environment's own limit",
                                             unset="the environment's limit")
    eval_episodes: int = option(0, "episodes on fixed reset seeds after each iteration, not "
                                "added to the data")
    eval_every: int = option(1, "evaluate after every K-th iteration and the last one")
    video_every: int = option(10, "save an mp4 of the last training episode of iterations "
                              "0, K, 2K, ... and of the last one (0: never)")
    tensorboard: str = option("auto", "write the metrics as TensorBoard event files into "
                              "RUN_DIR/tensorboard: auto where the tensorboard package is "
                              "installed (dynaplan[tensorboard]), on (refuse to start without "
                              "it), off", choices=TENSORBOARD_MODES)
    seed: int = option(123, "seed of every random generator (env, data split, init, planner)")
    device: str = option("auto", "torch device; auto picks cuda when available",
                         choices=DEVICES)
    model: ModelConfig = field(default_factory=ModelConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)

    def __post_init__(self) -> None:
        _check(self, positive=("iterations", "steps_per_iteration", "random_trajectories",
                               "eval_every"),
               at_least_zero=("eval_episodes", "video_every", "seed"))
        if self.seed > MAX_SEED:
            raise ConfigError(f"seed must be at most {MAX_SEED} (2^32 - 1, what every "
                              f"generator of a run takes), got {self.seed}")
        if not isinstance(self.env, str) or not self.env:
            raise ConfigError(f"env must be a non-empty string, got {quoted(self.env)}")
        object.__setattr__(self, "env_kwargs", mapping_value(self.env_kwargs, "env_kwargs"))
        reserved = [k for k in ("render_mode", "max_episode_steps") if k in self.env_kwargs]
        if reserved:
            raise ConfigError(f"env_kwargs must not set {reserved[0]}: dynaplan sets "
                              "render_mode for videos and max_episode_steps from "
                              "train_episode_steps")
        value = self.train_episode_steps
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value <= 0):
            raise ConfigError(f"train_episode_steps must be a positive integer, got "
                              f"{quoted(value)}")
        for name, kind in (("model", ModelConfig), ("planner", PlannerConfig),
                           ("speed", SpeedConfig)):
            if not isinstance(getattr(self, name), kind):
                raise ConfigError(f"{name} must be a {kind.__name__}")
        for accelerator, (option_name, shown) in self.speed.accelerators().items():
            reason = accel.why_not(accelerator, self.device, runtime=False)
            if reason is not None:
                hint = "device cpu, or auto without CUDA" if accelerator == "native" else \
                    "device cuda or auto"
                raise ConfigError(f"{option_name} {shown} {reason} ({hint})")
        # a known one the env lacks, a module:function that does not import: refused here
        from dynaplan.envs.functions import resolve_reward, resolve_termination

        resolve_reward(self.env, self.model.reward)
        resolve_termination(self.env, self.model.termination)
