"""The fused torch rollout: the objective's horizon loop as torch ops on folded weights.

For the models it knows, a dynamics MLP (models/world.py) or a Gaussian ensemble
(models/ensemble.py), it runs their planning forms, rebuilt by `refresh()` after every
fit: normalizers and eval-mode BatchNorms folded into the Linear layers (fused.py,
fused_ensemble.py), intermediate buffers reused from step to step, and the seed's
dynamics and reward networks, which read the same input, as one batched matmul per layer.
A learned reward model runs inside the loop, on R rows a step. Results equal the
reference loop's (objective.StepRollout) up to float32 rounding.

`compile` puts the fused networks (and, unless dynamics and reward are one network pair,
the whole dynamics step) through `torch.compile`, which fuses the small elementwise
kernels; first calls are slow while it compiles (`dynaplan bench --compile`).
"""

from __future__ import annotations

import torch

from dynaplan.accel.fused import FusedMLPs
from dynaplan.accel.fused_ensemble import FusedEnsemble
from dynaplan.models.propagation import EnsembleDynamics
from dynaplan.models.world import DynamicsModel, RewardModel
from dynaplan.types import RewardFn, Trajectory


def _shape(model: object) -> tuple:
    net = model.net  # type: ignore[attr-defined]
    return net.hidden, net.activation


class FusedTorchRollout:
    """state [R, O], actions [R, H, A] -> Trajectory, for a DynamicsModel or an
    EnsembleDynamics over a GaussianEnsemble (`knows`). `terminates`: whether the
    objective applies a termination (without one, the seed's case sums its rewards
    itself)."""

    name = "torch"

    def __init__(self, dynamics: DynamicsModel | EnsembleDynamics, reward: RewardFn,
                 terminates: bool, compile: bool = False) -> None:
        self.dynamics, self.reward = dynamics, reward
        self.terminates, self.compile = terminates, compile
        self.learned = isinstance(reward, RewardModel)
        # dynamics and reward networks of one shape run as one batched network
        self.joint = (isinstance(dynamics, DynamicsModel) and self.learned
                      and _shape(dynamics) == _shape(reward))
        self._dyn_net: FusedMLPs | None = None
        self._rew_net: FusedMLPs | None = None
        self._ens_net: FusedEnsemble | None = None
        self._built = False
        self._step = self._fused_step
        self._next = self._fused_next

    def refresh(self) -> None:
        """Snapshot the models' current weights into the fused planning networks."""
        self._built = True
        if self.joint:  # dynamics and reward share their input: one network pair
            net = FusedMLPs([self.dynamics, self.reward])  # type: ignore[list-item]
            self._dyn_net = torch.compile(net) if self.compile else net  # type: ignore[assignment]
            return
        if self.learned:
            self._rew_net = FusedMLPs([self.reward])  # type: ignore[list-item]
        if isinstance(self.dynamics, DynamicsModel):
            self._dyn_net = FusedMLPs([self.dynamics])
        elif not self.compile:  # compiled, the ensemble module itself goes through dynamo
            self._ens_net = FusedEnsemble(self.dynamics.ensemble)
        self._step = torch.compile(self._fused_step) if self.compile else self._fused_step
        self._next = torch.compile(self._fused_next) if self.compile else self._fused_next

    def __call__(self, state: torch.Tensor, actions: torch.Tensor) -> Trajectory:
        if not self._built:
            self.refresh()
        if self.joint and not self.terminates and not self.compile:
            return Trajectory(returns=self._rollout_joint(state, actions))
        states, rewards = [state], []
        for a_t in actions.unbind(1):
            if self.learned:
                state, reward = self._step(state, a_t)
                rewards.append(reward)
            else:
                state = self._next(state, a_t)
            states.append(state)
        r = torch.stack(rewards, dim=1) if self.learned else None
        if r is not None and not self.terminates:
            return Trajectory(rewards=r)
        return Trajectory(states=torch.stack(states, dim=1), rewards=r)

    def _fused_step(self, state: torch.Tensor,
                    action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(s [R, O], a [R, A]) -> (s' [R, O], learned r [R])."""
        x = torch.cat([state, action], dim=-1)
        if self.joint:
            out = self._dyn_net(x)  # type: ignore[misc]
            return state + out[0], out[1, :, 0]
        assert self._rew_net is not None
        return self._fused_next(state, action), self._rew_net(x)[0, :, 0]

    def _fused_next(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """(s [R, O], a [R, A]) -> s' [R, O], the dynamics alone."""
        net = self._dyn_net
        if net is None:  # an ensemble: its own propagation, through its fused form
            assert isinstance(self.dynamics, EnsembleDynamics)
            return self.dynamics(state, action, predict=self._ens_net)
        h = net.hidden(torch.cat([state, action], dim=-1), reuse=not self.compile)
        w, b = net.w_out_t[0].t(), net.b_out[0, 0]
        if net.epilogue:  # h W + b in one cuBLASLt kernel, then + s
            return torch.addmm(b, h[0], w).add_(state)
        # the output head applied to the state itself: s + h W + b in two kernels
        return torch.addmm(state, h[0], w).add_(b)

    def _rollout_joint(self, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The seed's case (learned dynamics + learned reward, one particle, no
        termination), with every op that can be hoisted out of the horizon loop hoisted:
        state [R, O], actions [R, H, A] -> returns [R].

        Per step: the action is copied into the shared input [s, a], the hidden layers
        run as batched matmuls into reused buffers, and the two output heads are applied
        in place: the dynamics head adds its state change to the input's state part
        (addmm_, then its bias), the reward head adds the reward to the running total
        (addmv_; its bias is added once, H times): 8 calls a step, no views made inside
        the loop. The hidden 512 x 256 matmul is then most of a step (torch.profiler,
        setting a of `dynaplan bench`: 0.38 of 0.50 ms; the plain loop it replaced made
        14 calls and about 10 views a step and took 0.61 ms).
        """
        net = self._dyn_net
        assert isinstance(net, FusedMLPs)
        rows, horizon, act_dim = actions.shape
        obs_dim = state.shape[-1]
        x = state.new_empty(rows, obs_dim + act_dim)  # the model input [s, a]
        x_state, x_action = x[:, :obs_dim], x[:, obs_dim:]
        x_state.copy_(state)
        x_wide = x.expand(net.k, rows, x.shape[1])
        w_state = net.w_out_t[0, :obs_dim].t()  # [h, O] view of the dynamics head
        b_state = net.b_out[0, 0, :obs_dim]
        w_reward = net.w_out_t[1, 0]  # [h] reward head
        total = x.new_zeros(rows).add_(net.b_out[1, 0, 0], alpha=horizon)
        heads: tuple[torch.Tensor, ...] = ()
        for a_t in actions.unbind(1):
            x_action.copy_(a_t)
            h = net.hidden(x_wide, reuse=True)  # the same buffer [2, R, h] every step
            if not heads:
                heads = h.unbind(0)
            x_state.addmm_(heads[0], w_state).add_(b_state)  # s_{t+1} = s_t + delta
            total.addmv_(heads[1], w_reward)
        return total
