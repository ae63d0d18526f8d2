"""Check the reward and termination functions a run plans with on the transitions it has,
before it plans with them: the random data of a fresh run, the restored buffer of a
resumed one.

A planner calls them on tensors of any leading shape (R x H rows of predicted
transitions), and a function that returns the wrong shape, non-finite values or raises
would otherwise show up as a broadcasting error deep in a rollout, or as plans that make
no sense. So each function is called on the n recorded transitions (float32 tensors on
the run's device) and on the same rows as a [2, n/2] batch, and must return [n] (and
[2, n/2], the same values) of the right dtype (a float reward, a bool termination),
finite: anything else is a one-line ConfigError naming the function. Then it is compared
with what the environment did: a reward that differs from the environment's own reward
beyond float rounding, or a termination that disagrees with its `terminated` flag, is a
warning that gives the size of the gap (planning with another reward can be meant, e.g.
a shaped one; the run is still scored by the environment's reward). A shaped reward is
checked for shape and finiteness only. Nothing here draws from a random generator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dynaplan.envs.functions import (
    describe,
    is_function_spec,
    resolve_reward,
    resolve_termination,
)
from dynaplan.errors import ConfigError
from dynaplan.types import Transitions

REWARD_RTOL = REWARD_ATOL = 1e-4
"""Float rounding: the environment computes its reward in float64 from its own state, a
function here from the float32 observations."""


@dataclass(frozen=True)
class Planned:
    """One function a run plans with: `kind` reward or termination, `name` as messages
    give it, `compare`: whether the environment's own values should match it."""

    kind: str
    name: str
    fn: Callable[[Tensor, Tensor, Tensor], Tensor]
    compare: bool = True


def planned_functions(env: str, reward: str, termination: str) -> list[Planned]:
    """The functions a run in `env` plans with for `--reward reward` and `--termination
    termination` (not the learned models)."""
    found = []
    reward_fn = resolve_reward(env, reward)
    if reward_fn is not None:
        found.append(Planned("reward", _name("reward", reward, reward_fn), reward_fn,
                             compare=reward != "shaped"))
    termination_fn = resolve_termination(env, termination)
    if termination_fn is not None and not isinstance(termination_fn, nn.Module):
        found.append(Planned("termination", _name("termination", termination, termination_fn),
                             termination_fn))
    return found


def _name(kind: str, value: str, fn: object) -> str:
    return f"{kind} {value}" if is_function_spec(value) else f"{kind} {value} ({describe(fn)})"


def check_functions(env: str, reward: str, termination: str, data: Transitions,
                    warn: Callable[[str], object], what: str = "random") -> None:
    """Check every function a run in `env` plans with (`reward`, `termination`: the
    options' values) on `data`, transitions of `env` (`what`: how messages call them,
    "random" or "recorded"); a fault is a ConfigError, a disagreement with the
    environment a `warn`ing."""
    n = len(data.obs)
    if n == 0:
        return
    for planned in planned_functions(env, reward, termination):
        out = _call(planned, data.obs, data.action, data.next_obs, what)
        _check_output(planned, out, (n,), f"{n} {what} transitions")
        if n >= 2:
            m = n // 2
            rows = slice(0, 2 * m)
            obs, action, next_obs = (t[rows].reshape(2, m, -1)
                                     for t in (data.obs, data.action, data.next_obs))
            batched = _call(planned, obs, action, next_obs, what)
            _check_output(planned, batched, (2, m), f"a [2, {m}] batch of transitions (it "
                          "must broadcast over leading dims: index with [..., i], reduce "
                          "with dim=-1)")
            if not _same(planned, batched.reshape(-1), out[rows]):
                raise ConfigError(f"{planned.name} gives other values for the same "
                                  f"transitions as a [2, {m}] batch than as [{2 * m}] rows; "
                                  "it must treat every leading dim as a batch dim")
        if not planned.compare:
            continue
        if planned.kind == "reward":
            message = _reward_gap(out, data.reward.to(out.dtype), n, what, env)
        else:
            message = _termination_gap(out, data.terminated.to(out.device), n, what, env)
        if message:
            warn(f"{planned.name} {message}")


def _call(planned: Planned, obs: Tensor, action: Tensor, next_obs: Tensor,
          what: str) -> Tensor:
    """The function's output on copies (a function that writes into its inputs must not
    change the run's data), as the planner calls it: without autograd."""
    try:
        with torch.inference_mode():
            out = planned.fn(obs.clone(), action.clone(), next_obs.clone())
    except Exception as exc:
        text = str(exc).strip()
        first = text.splitlines()[0] if text else "(no message)"
        raise ConfigError(f"{planned.name} raised {type(exc).__name__} on the {what} "
                          f"transitions: {first}") from None
    if not isinstance(out, Tensor):
        raise ConfigError(f"{planned.name} returned a value of type {type(out).__name__}, "
                          "not a torch tensor")
    if out.device != obs.device:
        raise ConfigError(f"{planned.name} returned a tensor on {out.device} for inputs on "
                          f"{obs.device}; create new tensors on obs.device")
    return out


def _check_output(planned: Planned, out: Tensor, shape: tuple[int, ...], given: str) -> None:
    if tuple(out.shape) != shape:
        raise ConfigError(f"{planned.name} returned shape {_dims(out.shape)} for {given}; it "
                          f"must return {_dims(shape)}, one value per transition")
    if planned.kind == "termination" and out.dtype != torch.bool:
        raise ConfigError(f"{planned.name} returned {_dtype(out)} values; a termination "
                          "returns bool (True where the episode ends), e.g. x.abs() > 0.2")
    if planned.kind == "reward":
        if not out.dtype.is_floating_point:
            raise ConfigError(f"{planned.name} returned {_dtype(out)} values; a reward "
                              "returns floats (e.g. x.float())")
        bad = int((~torch.isfinite(out)).sum())
        if bad:
            raise ConfigError(f"{planned.name} returned {bad} non-finite values (nan or inf) "
                              f"of {out.numel()} for {given}")


def _same(planned: Planned, a: Tensor, b: Tensor) -> bool:
    if planned.kind == "termination":
        return bool(torch.equal(a, b))
    return bool(torch.allclose(a, b, rtol=1e-5, atol=1e-6))


def _reward_gap(out: Tensor, env_reward: Tensor, n: int, what: str, env: str) -> str:
    gap = (out - env_reward).abs()
    off = ~torch.isclose(out, env_reward, rtol=REWARD_RTOL, atol=REWARD_ATOL)
    count = int(off.sum())
    if not count:
        return ""
    return (f"differs from {env}'s own reward on {count} of {n} {what} transitions "
            f"(max |gap| {float(gap.max()):.3g}, mean |gap| {float(gap.mean()):.3g}); the "
            "planner maximizes it, the run is scored by the environment's reward")


def _termination_gap(out: Tensor, terminated: Tensor, n: int, what: str, env: str) -> str:
    count = int((out != terminated).sum())
    if not count:
        return ""
    ends, caught = int(terminated.sum()), int((out & terminated).sum())
    extra = int((out & ~terminated).sum())
    return (f"disagrees with {env}'s terminated flag on {count} of {n} {what} transitions "
            f"(it predicts {caught} of the environment's {ends} terminations, and {extra} "
            "where the environment goes on)")


def _dims(shape: tuple[int, ...] | torch.Size) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _dtype(t: Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")
