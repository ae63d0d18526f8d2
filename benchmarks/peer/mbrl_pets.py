"""mbrl-lib's PETS on Pendulum-v1 at dynaplan's `--preset pets` setting, timed the way
dynaplan times itself; one CSV row per iteration. Runs in mbrl-lib's own virtual
environment (benchmarks/peer/setup_mbrl.sh), never in dynaplan's:

    OMP_NUM_THREADS=1 VENV/bin/python benchmarks/peer/mbrl_pets.py --steps 2000 --seed 0 \
        --eval-episodes 10 --out OUT/mbrl_s0.csv

It is mbrl-lib's own pieces, wired as in its `mbrl/algorithms/pets.py`: the ensemble from
`mbrl.util.common.create_one_dim_tr_model` (a GaussianMLP, inputs normalized in double
precision, targets the state change), the replay buffer, `get_basic_buffer_iterators`
(bootstrap resample per member, drawn once a fit), `ModelTrainer`, `ModelEnv` and
`create_trajectory_optim_agent_for_model` with a `CEMOptimizer` (the previous solution,
shifted, starts each plan). What differs from pets.py, and why:

- the loop is dynaplan's: one random episode (200 steps), then per iteration fit, one
  planned 200-step episode, evaluation; pets.py refits every `freq_train_model` steps,
  which is the same with 200 (Pendulum-v1 episodes are 200 steps)
- `ModelTrainer.train` runs `--epochs` epochs (40) with no early stopping (pets.py's
  helper passes patience 1 where the config has none); `--patience N` brings it back.
  It still scores the validation rows after every epoch and keeps the best weights, as
  mbrl-lib always does (`--no-epoch-eval`: train blind, as dynaplan does)
- the reward is Pendulum-v1's own, known: mbrl-lib has no pendulum reward function, and
  its `ModelEnv` hands a reward function (action, next_obs) only, where Pendulum-v1's
  reward is of the state before the step (as gymnasium and dynaplan compute it); a small
  ModelEnv subclass passes the state before the step (`--reward-on next`: mbrl-lib's
  convention, the same formula on next_obs)
- the CEM acts on the best sample found (CEMOptimizer's default; mbrl-lib's example
  config action_optimizer/cem.yaml says return_mean_elites: true), as dynaplan's pets
  preset does on Pendulum-v1 (`--return-mean-elites` for the mean)
- the log-variance bounds are learned (dynaplan's are; mbrl-lib's example config has
  learn_logvar_bounds: false, `--fixed-logvar-bounds`), with mbrl-lib's penalty 0.01
- Adam at dynaplan's learning rate 1e-3 and weight decay 5e-5, validation share 0.2

Columns: iteration, env_steps (transitions so far, random ones included), train_return,
eval_return (mean over the episodes; reset seeds 10000 + i, as dynaplan's), eval_episodes,
fit_s (wall seconds of the iteration's model fit: iterators, normalizer update,
ModelTrainer.train), fit_epochs (epochs that ran), plan_ms_p50 (median wall ms of
agent.act over the iteration's training episode), eval_s (wall seconds of the iteration's
evaluation, its episodes one after another), wall_s (wall seconds since the script's
start, after its imports, with every evaluation taken out: building, random data, fits,
acting).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym  # noqa: E402
import mbrl.env.termination_fns as termination_fns  # noqa: E402
import mbrl.models  # noqa: E402
import mbrl.planning  # noqa: E402
import mbrl.util.common  # noqa: E402
import numpy as np  # noqa: E402
import omegaconf  # noqa: E402
import torch  # noqa: E402

# gymnasium 0.26.3's env checker names np.bool8, deprecated since numpy 1.24 (after the
# imports: gymnasium's logger puts its own "once" filter first)
warnings.filterwarnings("ignore", message=".*np.bool8", category=DeprecationWarning)

ENV_ID = "Pendulum-v1"
EPISODE = 200  # Pendulum-v1's episode limit: the random data and the steps between refits
EVAL_SEED_BASE = 10_000  # dynaplan's: evaluation episode i resets with seed 10000 + i
COLUMNS = ("iteration", "env_steps", "train_return", "eval_return", "eval_episodes", "fit_s",
           "fit_epochs", "plan_ms_p50", "eval_s", "wall_s")


def pendulum_reward(obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """Pendulum-v1: -(angle_normalize(th)^2 + 0.1 thdot^2 + 0.001 u^2), obs = (cos th,
    sin th, thdot), u clipped to [-2, 2] as the environment does; [B, 1]."""
    th = torch.atan2(obs[:, 1:2], obs[:, 0:1])  # in [-pi, pi]: angle_normalize(th)
    u = act[:, 0:1].clamp(-2.0, 2.0)
    return -(th**2 + 0.1 * obs[:, 2:3] ** 2 + 0.001 * u**2)


class StateRewardModelEnv(mbrl.models.ModelEnv):
    """mbrl-lib's ModelEnv whose reward function sees the state before each step:
    ModelEnv.step calls reward_fn(actions, next_obs); here it gets the state the step
    starts from instead (model_state["obs"], kept just before the step)."""

    def __init__(self, env, model, termination_fn, generator, reward_on: str):
        reward_fn = self._reward_before if reward_on == "obs" else \
            (lambda act, next_obs: pendulum_reward(next_obs, act))
        super().__init__(env, model, termination_fn, reward_fn, generator=generator)
        self._obs_before: torch.Tensor | None = None

    def _reward_before(self, act: torch.Tensor, _next_obs: torch.Tensor) -> torch.Tensor:
        assert self._obs_before is not None
        return pendulum_reward(self._obs_before, act)

    def step(self, actions, model_state, sample=False):
        self._obs_before = torch.as_tensor(model_state["obs"], device=self.device)
        return super().step(actions, model_state, sample=sample)


class TimedAgent(mbrl.planning.Agent):
    """Times every act() of the agent it wraps (wall seconds, as dynaplan's MPCAgent times
    its plan calls)."""

    def __init__(self, agent: mbrl.planning.Agent) -> None:
        self.agent, self.seconds = agent, []

    def act(self, obs: np.ndarray, **kwargs) -> np.ndarray:
        start = time.perf_counter()
        action = self.agent.act(obs, **kwargs)
        self.seconds.append(time.perf_counter() - start)
        return action

    def reset(self) -> None:
        self.agent.reset()


def config(args: argparse.Namespace) -> omegaconf.DictConfig:
    """The configuration mbrl-lib's helpers read, at dynaplan's pets preset. Hydra 1.1+
    instantiates nested configs recursively: `_recursive_: False` hands GaussianMLP its
    activation config and TrajectoryOptimizerAgent its optimizer config as configs, as
    mbrl-lib (written for hydra 1.0) expects; both instantiate them themselves."""
    activation = {"relu": "torch.nn.ReLU", "silu": "torch.nn.SiLU"}[args.activation]
    return omegaconf.OmegaConf.create({
        "seed": args.seed,
        "device": "cpu",
        "dynamics_model": {
            "_target_": "mbrl.models.GaussianMLP",
            "_recursive_": False,
            "device": "cpu",
            "num_layers": 3,  # hidden layers (input -> h1 -> h2 -> h3 -> output)
            "in_size": "???",
            "out_size": "???",
            "ensemble_size": 5,
            "hid_size": 64,
            "deterministic": False,
            "propagation_method": "fixed_model",  # TS-inf
            "learn_logvar_bounds": not args.fixed_logvar_bounds,
            "activation_fn_cfg": {"_target_": activation},
        },
        "algorithm": {
            "learned_rewards": False,
            "target_is_delta": True,
            "normalize": True,
            "normalize_double_precision": True,
            "num_particles": 5,
            "agent": {
                "_target_": "mbrl.planning.TrajectoryOptimizerAgent",
                "_recursive_": False,
                "action_lb": "???",
                "action_ub": "???",
                "planning_horizon": 15,
                "replan_freq": 1,
                "verbose": False,
                "keep_last_solution": True,
                "optimizer_cfg": {
                    "_target_": "mbrl.planning.CEMOptimizer",
                    "num_iterations": 3,
                    "elite_ratio": 0.1,  # 10 of 100
                    "population_size": 100,
                    "alpha": 0.1,
                    "lower_bound": "???",
                    "upper_bound": "???",
                    "return_mean_elites": args.return_mean_elites,
                    "device": "cpu",
                    "clipped_normal": False,
                },
            },
        },
        "overrides": {
            "num_steps": args.steps,
            "model_lr": 1e-3,
            "model_wd": 5e-5,
            "model_batch_size": 32,
            "validation_ratio": 0.2,
            "num_epochs_train_model": args.epochs,
            "patience": args.patience,
        },
    })


def fit(model, trainer, cfg, buffer, evaluate: bool) -> tuple[float, int]:
    """mbrl.util.common.train_model_and_save_model_and_data without the saving, with
    ModelTrainer.train's patience as given (None: every epoch runs). Returns the wall
    seconds and the epochs that ran."""
    o = cfg.overrides
    start = time.perf_counter()
    train_iter, val_iter = mbrl.util.common.get_basic_buffer_iterators(
        buffer, o.model_batch_size, o.validation_ratio, ensemble_size=len(model),
        shuffle_each_epoch=True, bootstrap_permutes=False)
    model.update_normalizer(buffer.get_all())
    losses, _ = trainer.train(train_iter, dataset_val=val_iter,
                              num_epochs=o.num_epochs_train_model,
                              patience=o.patience or None, evaluate=evaluate, silent=True)
    return time.perf_counter() - start, len(losses)


def evaluate(env: gym.Env, agent: mbrl.planning.Agent, episodes: int) -> list[float]:
    """One episode per seed EVAL_SEED_BASE + i, the agent planning from a cold start in
    each; nothing is stored."""
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=EVAL_SEED_BASE + i)
        agent.reset()
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(agent.act(obs))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


def write(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    start = time.perf_counter()  # wall_s counts from here (after the imports)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=2000,
                   help="environment steps in all, the 200 random ones included; a "
                        "multiple of 200 (default: 2000, dynaplan's pets preset)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-episodes", type=int, default=10,
                   help="evaluation episodes after every iteration (default: 10)")
    p.add_argument("--out", type=Path, required=True, help="the CSV to write")
    p.add_argument("--epochs", type=int, default=40, help="epochs per fit (default: 40)")
    p.add_argument("--patience", type=int, default=0,
                   help="mbrl-lib's early stopping: stop after N epochs without a "
                        "validation improvement (default: 0, off)")
    p.add_argument("--no-epoch-eval", action="store_true",
                   help="do not score the validation rows after each epoch, nor keep the "
                        "best epoch's weights (ModelTrainer.train evaluate=False)")
    p.add_argument("--activation", choices=("relu", "silu"), default="relu",
                   help="hidden activation (default: relu, dynaplan's pets preset)")
    p.add_argument("--reward-on", choices=("obs", "next"), default="obs",
                   help="the state the known reward is computed from: before the step "
                        "(Pendulum-v1's, dynaplan's) or after it (mbrl-lib's reward_fn "
                        "convention) (default: obs)")
    p.add_argument("--return-mean-elites", action="store_true",
                   help="act on the CEM's final mean instead of its best sample")
    p.add_argument("--fixed-logvar-bounds", action="store_true",
                   help="keep the log-variance bounds fixed (mbrl-lib's example config)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    p.add_argument("--quiet", action="store_true", help="no per-iteration lines")
    args = p.parse_args(argv)
    if args.steps < 2 * EPISODE or args.steps % EPISODE:
        p.error(f"--steps must be a multiple of {EPISODE}, at least {2 * EPISODE}")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # model init and the CEM's samples (torch's global RNG)
    np.random.seed(args.seed)
    rng = np.random.default_rng(args.seed)  # the replay buffer's splits and bootstraps
    generator = torch.Generator(device="cpu").manual_seed(args.seed)
    cfg = config(args)

    env, eval_env = gym.make(ENV_ID), gym.make(ENV_ID)
    env.action_space.seed(args.seed)
    obs_shape, act_shape = env.observation_space.shape, env.action_space.shape
    model = mbrl.util.common.create_one_dim_tr_model(cfg, obs_shape, act_shape)
    dtype = np.double if cfg.algorithm.normalize_double_precision else np.float32
    buffer = mbrl.util.common.create_replay_buffer(cfg, obs_shape, act_shape, rng=rng,
                                                   obs_type=dtype, action_type=dtype,
                                                   reward_type=dtype)
    mbrl.util.common.rollout_agent_trajectories(env, EPISODE, mbrl.planning.RandomAgent(env),
                                                {}, replay_buffer=buffer, seed=args.seed)
    model_env = StateRewardModelEnv(env, model, termination_fns.no_termination, generator,
                                    args.reward_on)
    trainer = mbrl.models.ModelTrainer(model, optim_lr=cfg.overrides.model_lr,
                                       weight_decay=cfg.overrides.model_wd)
    agent = TimedAgent(mbrl.planning.create_trajectory_optim_agent_for_model(
        model_env, cfg.algorithm.agent, num_particles=cfg.algorithm.num_particles))

    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    eval_total = 0.0
    for it in range(args.steps // EPISODE - 1):
        fit_s, epochs = fit(model, trainer, cfg, buffer, evaluate=not args.no_epoch_eval)
        agent.seconds.clear()
        obs, _ = env.reset()
        agent.reset()
        train_return, done = 0.0, False
        while not done:  # one planned episode, added to the data
            obs, reward, terminated, truncated, _ = \
                mbrl.util.common.step_env_and_add_to_buffer(env, obs, agent, {}, buffer)
            train_return += float(reward)
            done = terminated or truncated
        plan_ms = 1e3 * float(np.median(agent.seconds))
        t_eval = time.perf_counter()
        returns = evaluate(eval_env, agent.agent, args.eval_episodes)
        eval_s = time.perf_counter() - t_eval
        eval_total += eval_s
        row = dict(iteration=it, env_steps=buffer.num_stored, train_return=train_return,
                   eval_return=float(np.mean(returns)) if returns else math.nan,
                   eval_episodes=args.eval_episodes,
                   fit_s=fit_s, fit_epochs=epochs, plan_ms_p50=plan_ms, eval_s=eval_s,
                   wall_s=time.perf_counter() - start - eval_total)
        rows.append(row)
        write(args.out, rows)
        if not args.quiet:
            print(f"iteration {it}: steps {row['env_steps']}, return {train_return:.1f}, "
                  f"eval {row['eval_return']:.1f}, fit {fit_s:.2f} s ({epochs} epochs), "
                  f"plan {plan_ms:.1f} ms, eval {eval_s:.1f} s, wall {row['wall_s']:.1f} s",
                  file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
