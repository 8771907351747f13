"""What a decision costs: operations, spikes and energy, counted by SpikingJelly's op_counter.

The counts run on each network as its definition runs it: the spiking agent step by step
(`forward_reference`: every module called T times, as the tutorial defines the network and as
neuromorphic hardware would run it; the fast path computes the same function with other
operations), the ANN in its plain forward. SpikingJelly counts multiply-accumulates (MAC: a float
input times a weight), accumulates (AC: additions, among them the synaptic operations, SynOp,
that a spike triggers) and `estimate_simple_energy` turns them into energy: Horowitz (ISSCC 2014),
45 nm, float32, 4.6 pJ per MAC and 0.9 pJ per AC (`energy_pj`), and, with memory traffic, 24.96 pJ
per byte of weights and biases read and of neuron state read and written at each step
(`energy_total_pj`). Spikes are the outputs of the hidden layers' neurons (the IF layers, or
whatever neurons a changed network has there), recorded by SpikingJelly's OutputMonitor. A
decision is one observation in, one action mean out (`actor`, what a deployed policy runs) or
action mean and value (`actor_critic`), one observation at a time.

`firing_rates` are the spiking layers' activity that TensorBoard shows at each update; for a network
the fast path does not compute, `hidden_spikes` records its spikes the same way, step by step.

It knows the two networks' layout (`actor` and `critic`, each ending in its readout, and for the SNN
`T`), not how they were trained.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, monitor, neuron
from spikingjelly.activation_based.op_counter import SimpleEnergyCostConfig, estimate_simple_energy

from machinery import fast_if

FIELDS = ("mac", "ac", "synop", "spikes", "energy_pj", "energy_total_pj")
NEURONS = (neuron.BaseNode, neuron.SimpleBaseNode)  # every SpikingJelly neuron, IFNode among them
COSTS = SimpleEnergyCostConfig.fp32()  # what estimate_simple_energy uses by default
ENERGY_MODEL = {
    "source": "SpikingJelly op_counter.estimate_simple_energy (Horowitz, ISSCC 2014; 45 nm, float32)",
    "pj_per_mac": COSTS.e_mac_pj,
    "pj_per_ac": COSTS.e_ac_pj,
    "pj_per_memory_byte": COSTS.e_memory_pj_per_byte,
    "energy_pj": "compute: MACs and ACs",
    "energy_total_pj": "compute, and weights, biases and neuron state read or written at each time step",
    "per_decision": "one observation at a time",
}


class Decision(nn.Module):
    """One decision of `model`: the actor alone, or actor and critic, run as the network is defined."""

    def __init__(self, model: nn.Module, with_critic: bool):
        super().__init__()
        self.model, self.with_critic = model, with_critic

    def forward(self, x: torch.Tensor):
        if not is_spiking(self.model):
            return (self.model.actor(x), self.model.critic(x)) if self.with_critic else self.model.actor(x)
        if self.with_critic:
            return self.model.forward_reference(x)
        for _ in range(self.model.T):
            self.model.actor(x)
        mu = self.model.actor[-1].v
        functional.reset_net(self.model.actor)
        return mu


@torch.no_grad()
def hidden_spikes(branch: nn.Sequential, T: int, x: torch.Tensor) -> list[torch.Tensor]:
    """The outputs [T, batch, ...] of each layer of spiking neurons in `branch` but its readout, the
    branch run T steps on x as it is defined, then reset: any SpikingJelly neurons, where
    `fast_if.hidden_spikes` computes the tutorial's IF layers only (4 to 19 times faster here)."""
    recorded = monitor.OutputMonitor(branch[:-1], NEURONS)
    try:
        for _ in range(T):
            branch(x)
    finally:
        recorded.remove_hooks()
        functional.reset_net(branch)
    return [torch.stack(recorded[name]) for name in recorded.name_records_index]


@torch.no_grad()
def firing_rates(model: nn.Module, states: torch.Tensor, readout_cls: type) -> dict[str, float]:
    """TensorBoard's spiking scalars for an update (the spiking agent's `Agent.diagnostics`): each
    hidden spiking layer on the rollout's states, its mean firing rate (the fraction of the T steps a
    neuron fires) and the fraction of its neurons silent on the whole batch. The tags name the branch,
    and the layer from the second on (actor_layer2, ...). The fast path's kernels step the tutorial's
    IF layers; a network they do not compute (a changed `branch()`) is recorded step by step."""
    computed_fast = fast_if.fast_path_mismatch(model, readout_cls) is None
    record = fast_if.hidden_spikes if computed_fast else hidden_spikes
    scalars = {}
    for name, branch in (("actor", model.actor), ("critic", model.critic)):
        for layer, spikes in enumerate(record(branch, model.T, states), start=1):
            rates, tag = spikes.mean(dim=0), name if layer == 1 else f"{name}_layer{layer}"
            scalars[f"snn/firing_rate/{tag}"] = float(rates.mean())
            scalars[f"snn/never_firing_fraction/{tag}"] = float((rates.amax(dim=0) == 0).float().mean())
    return scalars


def on_cpu(model: nn.Module) -> nn.Module:
    """The model, or a copy of it on the CPU, where counting runs: training's model stays where it is."""
    return model if next(model.parameters()).device.type == "cpu" else copy.deepcopy(model).cpu()


def is_spiking(model: nn.Module) -> bool:
    return hasattr(model, "forward_reference")


@torch.no_grad()
def count(model: nn.Module, obs: torch.Tensor, with_critic: bool) -> dict[str, float]:
    """FIELDS per decision on the batch `obs` [B, obs_dim]. The operations and spikes are exact means
    over the batch; `energy_total_pj` is per decision only at B = 1, since SpikingJelly counts a
    weight's read once per call, whatever the batch (`cost_per_decision` decides one at a time)."""
    # the hidden layers' neurons, of whatever kind (a reader may change the IF ones), not the readout
    spikes = [monitor.OutputMonitor(branch[:-1], NEURONS) for branch in (model.actor, model.critic)]
    try:
        with torch.inference_mode(False):  # under inference mode the counters miss the matrix products
            report = estimate_simple_energy(Decision(model, with_critic), obs)
        fired = sum(float(out.sum()) for branch in spikes for out in branch.records)
    finally:
        for branch in spikes:
            branch.remove_hooks()
    counts, n = report.counts, len(obs)
    return {
        "mac": counts["mac"] / n,
        "ac": counts["ac"] / n,
        "synop": counts["synop"] / n,
        "spikes": fired / n,
        "energy_pj": report.energy_compute_pj / n,
        "energy_total_pj": report.energy_total_pj / n,
    }


def cost_per_decision(model: nn.Module, observations: torch.Tensor, with_critic: bool = True) -> dict:
    """The mean of FIELDS over `observations` [N, obs_dim], decided one at a time, for the actor (and,
    if `with_critic`, for actor and critic)."""
    model = on_cpu(model)
    out = {}
    for name, critic in (("actor", False), ("actor_critic", True))[: 2 if with_critic else 1]:
        per_obs = [count(model, obs[None].cpu(), critic) for obs in observations]
        out[name] = {field: sum(c[field] for c in per_obs) / len(per_obs) for field in FIELDS}
    return out


def sample(observations: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """Up to `size` of the observations, drawn without replacement from their own generator."""
    if len(observations) <= size:
        return observations
    picks = torch.randperm(len(observations), generator=torch.Generator().manual_seed(seed))[:size]
    return observations[picks]


def due(step: int, args) -> bool:
    """Whether the evaluation at `step` measures the cost too: the first evaluation, and the first at
    or after each multiple of --cost-interval (counting runs op by op: tens of ms per SNN decision)."""
    if not args.cost_interval:
        return False
    return step == args.eval_interval or (step - args.eval_interval) // args.cost_interval < step // args.cost_interval


def actor_scalars(model: nn.Module, observations: torch.Tensor, seed: int, size: int = 16) -> dict[str, float]:
    """TensorBoard's cost scalars at an evaluation: the actor's SynOps and compute energy per decision,
    on a sample of the observations it decided on (both are exact means over a batch)."""
    measured = count(on_cpu(model), sample(observations, size, seed).cpu(), with_critic=False)
    return {
        "cost/actor_synops_per_decision": measured["synop"],
        "cost/actor_energy_pj_per_decision": measured["energy_pj"],
    }


def actor_line(cost: dict[str, float]) -> str:
    return (
        f"per decision (actor): {cost['mac']:.0f} MAC, {cost['ac']:.0f} AC, {cost['synop']:.0f} SynOps, "
        f"{cost['spikes']:.1f} spikes, {cost['energy_pj'] / 1e3:.2f} nJ compute, "
        f"{cost['energy_total_pj'] / 1e3:.2f} nJ with memory"
    )
