"""--compile's policy step of the ANN twin (PPO.py) as one numba call, as `fast_if.decisions` is
the spiking agent's.

The rollout's decisions are one to a few observations, and torch.compile's `act` spent most of
its time in the Python around its kernels (guards, the compiled wrapper), which the env steps
between two calls evict from the caches. Here `act` is one call: both branches' Linear layers and
their ReLU or tanh, the Gaussian's sample and log-probability (`fast_if.gaussian_sample`), on
numpy views of the parameters kept from one call to the next (`fast_if.kept_views`). The same
function as `act` to float rounding (a Linear's sums run in another order than torch's matrix
product, tanh is libm's): like the rest of --compile, it is not the default path. At the cleanrl
preset it took the compiled training loop's policy step from 105 to 50 us per rollout step on
CartPole-v1 and from 88 to 43 on HalfCheetah-v5, and the loop 25% and 18% faster (docs/results.md,
"The ANN's policy step in one kernel").
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np
import torch
import torch.nn as nn

from machinery.fast_if import gaussian_sample, kept, kept_views, numba_runs

ACTIVATIONS = (nn.ReLU, nn.Tanh)


@numba.njit(cache=True)
def _linear(weight, bias, x, out):  # pragma: no cover (compiled)
    """out = weight x + bias, each row's products summed in 8 lanes: one chain of dependent additions
    per row would leave the CPU waiting on each, where the lanes are added side by side (SIMD)."""
    lanes, n = np.empty(8, x.dtype), x.shape[0]
    for o in range(weight.shape[0]):
        row, tail = weight[o], n - n % 8
        lanes[:] = 0
        for i in range(0, tail, 8):
            for k in range(8):
                lanes[k] += row[i + k] * x[i + k]
        acc = bias[o]
        for k in range(8):
            acc += lanes[k]
        for i in range(tail, n):
            acc += row[i] * x[i]
        out[o] = acc


@numba.njit(cache=True)
def _decisions_cpu(x, weights, biases, tanh, log_std, noise):  # pragma: no cover (compiled)
    """`Spiking_PPO.act` of the ANN: weights[g * depth + layer] is layer `layer` of branch g (0 the
    critic, 1 the actor), the last one its output, without activation."""
    depth, batch = len(weights) // 2, x.shape[0]
    value, mean = np.empty((batch, 1), x.dtype), np.empty((batch, noise.shape[1]), x.dtype)
    width = max([w.shape[0] for w in weights])
    h, next_h = np.empty(width, x.dtype), np.empty(width, x.dtype)
    for g, out in ((0, value), (1, mean)):
        for b in range(batch):
            layer_in = x[b]
            for layer in range(depth):
                weight = weights[g * depth + layer]
                layer_out = next_h[: weight.shape[0]] if layer % 2 else h[: weight.shape[0]]
                _linear(weight, biases[g * depth + layer], layer_in, layer_out)
                if layer < depth - 1:
                    for o in range(layer_out.shape[0]):
                        layer_out[o] = np.tanh(layer_out[o]) if tanh else max(layer_out[o], np.float32(0))
                layer_in = layer_out
            out[b] = layer_in
    return (*gaussian_sample(mean, log_std, noise), value)


def layers_of(model: nn.Module) -> tuple[tuple[nn.Linear, ...], type] | None:
    """The Linear layers of the critic, then of the actor, and the activation between them, where
    `model` is the ANN twin's network (both branches Linear, then (activation, Linear) per hidden
    layer, of the same depth and activation, every Linear with a bias); else None."""
    branches = getattr(model, "critic", None), getattr(model, "actor", None)
    if not all(isinstance(branch, nn.Sequential) for branch in branches) or not hasattr(model, "log_std"):
        return None
    kinds = [tuple(type(m) for m in branch) for branch in branches]
    activation = kinds[0][1] if len(kinds[0]) > 1 else None
    expected = (nn.Linear, *(activation, nn.Linear) * ((len(kinds[0]) - 1) // 2))
    if activation not in ACTIVATIONS or kinds[0] != expected or kinds[1] != expected:
        return None
    linears = tuple(m for branch in branches for m in branch if type(m) is nn.Linear)
    return None if any(linear.bias is None for linear in linears) else (linears, activation)


def decisions(model: nn.Module) -> Callable | None:
    """For --compile: `Spiking_PPO.act` of `model` as one numba call, where `model` is the ANN
    twin's network (`layers_of`) in float32 on the CPU; else None."""
    if layers_of(model) is None or not numba_runs(next(model.parameters())):
        return None
    return decide


def decide(model: nn.Module, obs: torch.Tensor, noise: torch.Tensor):
    """`decisions`' act: `Spiking_PPO.act`'s (action, log-probability, value), on the model's
    `fast_if.kept_views`. The network's layers are found once per network (`layers_of`, `kept`: 9 of
    a 23 us decision at the cleanrl preset when found at every call; a throwaway timing), as the
    spiking agent's are when it is built: --compile is made for the network as it is built."""
    linears, activation = kept(model, layers_of)
    weights, biases, (log_std,) = kept_views(model)((linears, "weight"), (linears, "bias"), ((model,), "log_std"))
    obs, noise = obs.contiguous().numpy(), noise.contiguous().numpy()
    out = _decisions_cpu(obs, weights, biases, activation is nn.Tanh, log_std, noise)
    return tuple(map(torch.from_numpy, out))
