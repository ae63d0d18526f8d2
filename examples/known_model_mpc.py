"""Known-model MPC: CEM pushes a 2-D point mass to a goal through a model written in
torch. Nothing is learned; the model is the system itself.

    python examples/known_model_mpc.py [--quick]

Prints the cost (squared distance to the goal plus a velocity term) as it goes down.
"""

import argparse
import os

import numpy as np
import torch

import dynaplan

DT, DAMPING = 0.1, 0.95
GOAL = torch.tensor([1.0, -0.5])


def dynamics(state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """state [R, 4] = (x, y, vx, vy), action [R, 2] a force in [-1, 1] -> next state [R, 4]."""
    velocity = DAMPING * state[:, 2:] + DT * action
    return torch.cat([state[:, :2] + DT * velocity, velocity], dim=-1)


def cost(state: torch.Tensor) -> torch.Tensor:
    """[..., 4] -> [...]: squared distance to the goal, plus a little speed."""
    return (state[..., :2] - GOAL).square().sum(-1) + 0.1 * state[..., 2:].square().sum(-1)


def reward(obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """[R, 4], [R, 2], [R, 4] -> [R]: what the planner maximizes."""
    return -cost(next_obs) - 0.01 * action.square().sum(-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default="DYNAPLAN_QUICK" in os.environ,
                        help="a few steps with a small planner (what the tests run)")
    quick = parser.parse_args().quick
    steps = 15 if quick else 60
    controller = dynaplan.mpc(dynamics, reward, action_low=[-1.0, -1.0],
                              action_high=[1.0, 1.0], planner="cem",
                              horizon=10 if quick else 20, num_sequences=100 if quick else 300,
                              num_iterations=5, num_elites=10, warm_start=True)
    state = np.array([-1.0, 1.0, 0.0, 0.0], dtype=np.float32)
    start = float(cost(torch.as_tensor(state)))
    for t in range(1, steps + 1):
        action = controller.act(state)  # [4] -> [2]
        state = dynamics(torch.as_tensor(state)[None], torch.as_tensor(action)[None])[0].numpy()
        if t % 5 == 0:
            print(f"step {t:3d}  cost {float(cost(torch.as_tensor(state))):.3f}")
    print(f"cost {start:.3f} -> {float(cost(torch.as_tensor(state))):.3f} in {steps} steps")


if __name__ == "__main__":
    main()
