"""PPO with an ANN actor-critic: the spiking agent's twin, for comparison.

The network has the spiking one's shape with ReLU in place of the IF neurons (or, with
--activation tanh, CleanRL's tanh) and no LIF readout; everything else (environments, PPO,
evaluation, logging, checkpoints) is `Spiking_PPO`'s training loop, imported rather than copied, so
the comparison is fair by construction.

    python PPO.py            # same flags as Spiking_PPO.py, minus the SNN ones, plus --activation
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.distributions import Normal

from machinery.cli import flag
from machinery.run import Agent
from machinery.speed import exit_now
from Spiking_PPO import Args, main

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


@dataclass
class AnnArgs(Args):
    activation: str = flag("relu", "hidden units' nonlinearity: relu (the IF neuron's twin) or tanh (CleanRL's)",
                           choices=tuple(ACTIVATIONS))  # fmt: skip


class ActorCritic(nn.Module):
    def __init__(
        self, num_inputs: int, num_outputs: int, hidden_size: int, std: float = 0.0, hidden_layers: int = 1,
        activation: type[nn.Module] = nn.ReLU,
    ):  # fmt: skip
        super().__init__()

        def branch(num_out: int) -> nn.Sequential:
            hidden = [nn.Linear(num_inputs, hidden_size), activation()]
            for _ in range(hidden_layers - 1):
                hidden += [nn.Linear(hidden_size, hidden_size), activation()]
            return nn.Sequential(*hidden, nn.Linear(hidden_size, num_out))

        self.critic = branch(1)
        self.actor = branch(num_outputs)
        self.log_std = nn.Parameter(torch.ones(1, num_outputs) * std)

    def forward(self, x: torch.Tensor) -> tuple[Normal, torch.Tensor]:
        value = self.critic(x)
        mu = self.actor(x)
        std = self.log_std.exp().expand_as(mu)
        return Normal(mu, std, validate_args=False), value


def build_ann_agent(num_inputs: int, num_actions: int, args: AnnArgs) -> ActorCritic:
    return ActorCritic(
        num_inputs, num_actions, args.hidden_size, std=args.init_log_std, hidden_layers=args.hidden_layers,
        activation=ACTIVATIONS[args.activation],
    )  # fmt: skip


AGENT = Agent(name="PPO", script="PPO", args_cls=AnnArgs, build=build_ann_agent, description=__doc__.split("\n\n")[0])

if __name__ == "__main__":
    exit_now(main(AGENT))
