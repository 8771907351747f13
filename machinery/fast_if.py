"""The fast path's IF layer: T steps of IF neurons under a constant input, in closed form.

`ActorCritic.forward_fast` (Spiking_PPO.py) computes the tutorial's network without calling each
module T times, and a deeper one (--hidden-layers) through `deep_spike_counts`. This module holds
the part that needs kernels; it knows nothing of PPO or envs.

The derivation. The first Linear sees the same observation x at every step, so its output
h = W1 x + b1 is constant over the T steps. An IF neuron with hard reset to 0 (the tutorial's) then
follows the scalar recurrence

    v[t] = v_after[t-1] + h,   spike[t] = (v[t] >= threshold),   v_after[t] = v[t] (1 - spike[t]),

and with soft reset (--soft-reset, SpikingJelly's v_reset=None) v_after[t] = v[t] - threshold spike[t].

A NonSpikingLIFNode fed y[0..T-1] from rest ends at sum_t w[t] y[t] with
w[t] = (1/tau) (1 - 1/tau)^(T-1-t) (`lif_readout_weights`), and y[t] = W2 spike[t] + b2, so the
readout is W2 (sum_t w[t] spike[t]) + sum(w) b2: the second Linear runs once, on weighted spike
counts. What the network needs from the IF layer is therefore the count sum_t w[t] spike[t]
(forward) and its derivative with respect to h (backward), through the unrolled recurrence with
SpikingJelly's sigmoid surrogate and its reset left in the graph. Forward mode along the potentials
gives it per neuron: dv[t] = 1 + a[t-1] dv[t-1] with a[t] = d v_after[t] / d v[t], which is
(1 - spike[t]) - s'[t] v[t] for the hard reset and 1 - s'[t] threshold for the soft one, and the
count gains w[t] s'[t] dv[t], where s'[t] is the surrogate's derivative at v[t].

Hidden layers after the first (--hidden-layers) see spikes that change from step to step, so no
closed form applies: `IFSpikes` steps their IF neurons through T, forward and backward, in one
kernel call each. In such a network the next layer needs the first IF layer's spikes step by step
too, so `IFSpikes` also takes a single input to apply at every step, without T copies of it. Those
spikes are periodic when the reset is hard (the recurrence above starts over from 0 after each
spike), which makes the second layer's product cheaper than a dense one (`PeriodicLinear`).

On the CPU numba kernels run the time loop, vectorized across neurons (torch would pay its
per-op overhead at each of the T steps); on other devices the same loop runs as torch ops. Both
add potentials in the neuron's own order, so the spikes are bit-identical to SpikingJelly's.
Under torch.compile (--compile) the numba kernels are torch custom ops (`cpu_kernel`), which the
compiler keeps as they are and compiles the rest of the network around; the autograd Functions
are in the form torch.func's transforms accept (`setup_context`), so that the compiled mini-batch
step can take the gradient through them. --compile's policy step, whose few observations left the
compiled graph's own overhead most of its time, is one numba call instead (`decisions`).
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from typing import NamedTuple

import numba
import numpy as np
import torch
import torch.nn as nn
from spikingjelly.activation_based import neuron, surrogate

from machinery.cli import UsageError

SURROGATE_ARG_LIMIT = 36.0  # sigmoid'(36) < 1e-15: clamping there changes nothing that float32 shows
# but keeps denormal floats, which slow arithmetic down tenfold, out of the far-below-threshold tail.
NUMBA_ON_CPU = True  # False runs the portable torch kernels on the CPU too (the tests check both)

# float32 throughout (f32 constants): a float64 literal would widen the loop and stop LLVM from
# vectorizing it.
f32 = np.float32


def numba_runs(t: torch.Tensor) -> bool:
    """Whether the numba kernels compute on `t`: a float32 CPU tensor, unless NUMBA_ON_CPU is off."""
    return t.device.type == "cpu" and t.dtype == torch.float32 and NUMBA_ON_CPU


def signature_kept(function: type[torch.autograd.Function]) -> type[torch.autograd.Function]:
    """`function` with its forward's signature computed once. An autograd.Function that defines
    setup_context (the form torch.func takes) has its arguments bound to the forward's signature at
    every apply, and inspect.signature computes it anew each time unless the function carries it as
    __signature__: 18 us of a decision's 117 us here (batch 10, the tutorial's network), more in the
    training loop. Nothing else changes."""
    function.forward.__signature__ = inspect.signature(function.forward)
    return function


_LIBRARY = torch.library.Library("spiking_ppo", "DEF")  # the custom ops of `cpu_kernel`


def cpu_kernel(schema: str, fake):
    """A numba kernel on arrays as a function of contiguous tensors, returning new tensors.

    Eagerly it is called as it is. Under torch.compile, which cannot trace numba, it is the custom
    op spiking_ppo::<its name> (`schema` its signature, `fake` the shapes of its outputs): a node the
    compiled graph calls as it is. Only under torch.compile, because a custom op's dispatch costs
    microseconds a call, a tenth of the rollout's policy step at the cleanrl preset. The op is
    registered with `torch.library.Library`, not `torch.library.custom_op`, whose Python layers
    around the dispatcher took 14 against 7 us a call here (a throwaway timing, 6 calls per
    mini-batch step of the cleanrl preset's spiking agent); it has no autograd kernel of its own,
    as the autograd Functions below hold the gradient.
    """

    def wrap(kernel):
        def as_arrays(a):  # a list of tensors (the fused network's weights) becomes a tuple of arrays
            if isinstance(a, list | tuple):
                return tuple(t.numpy() for t in a)
            return a.numpy() if isinstance(a, torch.Tensor) else a

        def on_tensors(*args):
            out = kernel(*map(as_arrays, args))
            return tuple(map(torch.from_numpy, out)) if isinstance(out, tuple) else torch.from_numpy(out)

        name = kernel.__name__.strip("_")
        _LIBRARY.define(name + schema)
        _LIBRARY.impl(name, on_tensors, "CPU")
        torch.library.register_fake(f"spiking_ppo::{name}", fake, lib=_LIBRARY)
        op = getattr(torch.ops.spiking_ppo, name).default

        def call(*args):
            return op(*args) if torch.compiler.is_compiling() else on_tensors(*args)

        return call

    return wrap


def lif_readout_weights(tau: float, T: int) -> torch.Tensor:
    """w[t] such that a NonSpikingLIFNode fed x[0..T-1] from rest ends at sum_t w[t] * x[t].

    Unrolling v_t = (1 - 1/tau) v_{t-1} + x_t / tau gives w[t] = (1/tau) (1 - 1/tau)^(T-1-t).
    """
    decay = 1.0 - 1.0 / tau
    return torch.tensor([decay ** (T - 1 - t) / tau for t in range(T)], dtype=torch.float64)


class FastPathRefused(UsageError, ValueError):
    """A network the fast path does not compute: a ValueError to code that builds the model, and to the
    command line a one-line error (exit 2, nothing written), since the fix is a flag."""


class FastPathLayers(NamedTuple):
    """The layers `ActorCritic.forward_fast` and `decide` reach by name: each branch's first Linear
    and its readout Linear, and an IF layer whose parameters stand for all of them (the fast path
    runs every IF layer of both branches as one, `check_fast_path_applies` makes sure they agree)."""

    critic_in: nn.Linear
    actor_in: nn.Linear
    critic_out: nn.Linear
    actor_out: nn.Linear
    if_node: neuron.IFNode


def check_fast_path_applies(model, readout_cls: type) -> None:
    """FastPathRefused, naming what in `model` the fast path does not compute, if anything: a network
    changed in `branch()` would otherwise be computed as if it were the tutorial's."""
    if mismatch := fast_path_mismatch(model, readout_cls):
        raise FastPathRefused(
            f"the fast path computes the tutorial's network only: {mismatch}; use impl='reference' "
            "(--snn-impl reference), which calls the modules step by step"
        )


def fast_path_mismatch(model, readout_cls: type) -> str | None:
    """What in `model` the fast path does not compute, or None where it computes the whole network.

    It computes each branch as Linear, then (IF neuron, Linear) per hidden layer, then a `readout_cls`
    neuron, with the tutorial's neurons: SpikingJelly's IFNode itself (no subclass), hard reset to
    0 or soft reset, the reset not detached, the sigmoid surrogate, and the same neuron parameters in
    every IF layer of both branches (it runs their IF layers as one). A network changed in any other
    way would be computed wrongly, not refused, if this were not checked.
    """
    branches = (("critic", model.critic), ("actor", model.actor))
    for name, branch in branches:
        expected = [nn.Linear, *[neuron.IFNode, nn.Linear] * ((len(branch) - 2) // 2), readout_cls]
        if [type(m) for m in branch] != expected:
            layers = " -> ".join(type(m).__name__ for m in branch)
            return f"{name} is {layers}, not Linear -> (IFNode -> Linear)... -> {readout_cls.__name__}"
    first_if = model.actor[1]
    for name, branch in reversed(branches):  # the actor first: the others are compared with its first IF layer
        for i, layer in enumerate(branch):
            where = f"{name}.{i}"
            if isinstance(layer, nn.Linear) and layer.bias is None:
                return f"{where} has no bias"
            if isinstance(layer, neuron.IFNode):
                surrogate_fn = layer.surrogate_function
                if type(surrogate_fn) is not surrogate.Sigmoid or not surrogate_fn.spiking:
                    return f"{where}'s surrogate is {type(surrogate_fn).__name__}, not a spiking Sigmoid"
                if layer.v_reset not in (0.0, None):
                    return f"{where} resets to {layer.v_reset}, not to 0 (or by subtraction: v_reset=None)"
                if layer.detach_reset:
                    return f"{where} detaches its reset from the graph (detach_reset=True)"
                ours = (layer.v_threshold, layer.v_reset, surrogate_fn.alpha)
                firsts = (first_if.v_threshold, first_if.v_reset, first_if.surrogate_function.alpha)
                if ours != firsts:
                    return f"{where}'s (threshold, reset, alpha) {ours} differ from actor.1's {firsts}"
            if hasattr(layer, "step_mode") and layer.step_mode != "s":
                return f"{where} is in multi-step mode; the network calls each module one step at a time"
        readout = branch[-1]
        if readout.v_reset != 0.0 or not readout.decay_input or readout.tau != model.actor[-1].tau:
            return f"{name}'s readout is not the actor's, from rest with decay_input"
    return None


@cpu_kernel(
    "(Tensor h, float threshold, float alpha, Tensor w, bool soft_reset) -> (Tensor, Tensor)",
    lambda h, threshold, alpha, w, soft_reset: (h.new_empty(h.shape), h.new_empty((w.shape[0], *h.shape))),
)
@numba.njit(cache=True)
def _if_forward_cpu(h, threshold, alpha, w, soft_reset):  # pragma: no cover (compiled)
    th, al, limit = f32(threshold), f32(alpha), f32(SURROGATE_ARG_LIMIT)
    v, count = np.zeros_like(h), np.zeros_like(h)
    u_seq = np.empty((len(w), len(h)), dtype=h.dtype)
    for t in range(u_seq.shape[0]):
        w_t = w[t]
        for n in range(h.shape[0]):
            v_t = v[n] + h[n]
            fired = v_t >= th
            u_seq[t, n] = min(max(al * (v_t - th), -limit), limit)
            count[n] += w_t if fired else f32(0)
            v[n] = (v_t - th if soft_reset else f32(0)) if fired else v_t
    return count, u_seq


@cpu_kernel(
    "(Tensor u_seq, Tensor sig, float threshold, float alpha, Tensor w, bool soft_reset) -> Tensor",
    lambda u_seq, sig, threshold, alpha, w, soft_reset: u_seq.new_empty(u_seq.shape[1:]),
)
@numba.njit(cache=True)
def _if_gradient_factor_cpu(u_seq, sig, threshold, alpha, w, soft_reset):  # pragma: no cover (compiled)
    th, al = f32(threshold), f32(alpha)
    dv, factor = np.zeros_like(u_seq[0]), np.zeros_like(u_seq[0])
    for t in range(u_seq.shape[0]):
        for n in range(factor.shape[0]):
            surrogate_grad = al * sig[t, n] * (f32(1) - sig[t, n])
            dv_t = dv[n] + f32(1)
            factor[n] += w[t] * surrogate_grad * dv_t
            if soft_reset:
                reset_grad = f32(1) - surrogate_grad * th
            else:
                not_fired = f32(0) if u_seq[t, n] >= f32(0) else f32(1)
                reset_grad = not_fired - surrogate_grad * (th + u_seq[t, n] / al)
            dv[n] = dv_t * reset_grad
    return factor


def if_forward(h: torch.Tensor, threshold: float, alpha: float, w: torch.Tensor, soft_reset: bool = False):
    """Weighted spike counts sum_t w[t] spike[t], and the surrogate's argument at each step [T, *h.shape]."""
    T = len(w)
    if numba_runs(h):
        count, u_seq = _if_forward_cpu(h.detach().reshape(-1).contiguous(), threshold, alpha, w, soft_reset)
        return count.view_as(h), u_seq.view(T, *h.shape)
    v_seq = h.new_empty((T, *h.shape))  # potentials before each reset
    v = torch.zeros_like(h)
    for t in range(T):
        torch.add(v, h, out=v_seq[t])
        v = reset(v_seq[t], threshold, soft_reset)
    count = torch.tensordot(w, (v_seq >= threshold).to(h.dtype), 1)
    u_seq = ((v_seq - threshold) * alpha).clamp_(-SURROGATE_ARG_LIMIT, SURROGATE_ARG_LIMIT)
    return count, u_seq


def reset(v: torch.Tensor, threshold: float, soft_reset: bool) -> torch.Tensor:
    """The potentials after the reset, in the torch kernels: as SpikingJelly computes them."""
    return v - (v >= threshold) * threshold if soft_reset else v * (v < threshold)


def reset_gradient(u_seq: torch.Tensor, surrogate_grad: torch.Tensor, threshold: float, alpha: float, soft_reset: bool):
    """d v_after / d v at each step, from the surrogate's saved argument u = alpha (v - threshold)."""
    if soft_reset:
        return 1.0 - threshold * surrogate_grad
    return (u_seq < 0).to(u_seq.dtype) - (threshold + u_seq / alpha) * surrogate_grad


def if_gradient_factor(
    u_seq: torch.Tensor, threshold: float, alpha: float, w: torch.Tensor, soft_reset: bool = False
) -> torch.Tensor:
    """d(sum_t w[t] spike[t]) / dh per neuron, through the unrolled recurrence with surrogate spikes.

    Forward mode along the potentials: dv[t] = 1 + a[t-1] dv[t-1], where
    a[t] = d(v after reset)/d(v before reset) (`reset_gradient`; SpikingJelly does not detach the
    reset), and the count gains w[t] surrogate'[t] dv[t].
    """
    T, sig = len(w), torch.sigmoid(u_seq)
    if numba_runs(u_seq):
        factor = _if_gradient_factor_cpu(u_seq.view(T, -1), sig.view(T, -1), threshold, alpha, w, soft_reset)
        return factor.view(u_seq.shape[1:])
    surrogate_grad = alpha * sig * (1.0 - sig)
    a = reset_gradient(u_seq, surrogate_grad, threshold, alpha, soft_reset)
    dv = torch.ones_like(u_seq)
    for t in range(1, T):
        torch.addcmul(dv[t], a[t - 1], dv[t - 1], out=dv[t])
    return torch.einsum("t,t...,t...->...", w, surrogate_grad, dv)


@signature_kept
class IFSpikeCount(torch.autograd.Function):
    """Weighted spike count of SpikingJelly IF neurons driven by the same input h for T steps.

    Forward: ``sum_t w[t] * spike[t]``. Backward: the gradient autograd would find through the
    unrolled IFNode recurrence with its sigmoid surrogate, reset included (hard, or soft with
    `soft_reset`); with a constant input it is a per-neuron factor times the incoming gradient.
    Its second output, the surrogate's argument at each step, is what backward needs (`if_forward`):
    an output rather than a saved intermediate, as torch.func requires; `if_spike_count` drops it.
    """

    @staticmethod
    def forward(h: torch.Tensor, w: torch.Tensor, threshold: float, alpha: float, soft_reset: bool):
        return if_forward(h, threshold, alpha, w, soft_reset)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, w, ctx.threshold, ctx.alpha, ctx.soft_reset = inputs
        ctx.save_for_backward(output[1], w)
        ctx.mark_non_differentiable(output[1])
        # autograd would fill a zero gradient for that output at each backward, which is never read:
        # a 1 MB memset a mini-batch step at the tutorial's settings, 2 to 4% of its time here
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx, grad_count: torch.Tensor, _):
        u_seq, w = ctx.saved_tensors
        factor = if_gradient_factor(u_seq, ctx.threshold, ctx.alpha, w, ctx.soft_reset)
        return grad_count * factor, None, None, None, None


def if_spike_count(h: torch.Tensor, w: torch.Tensor, threshold: float, alpha: float, soft_reset: bool):
    """`IFSpikeCount`: the weighted spike counts of IF neurons under the constant input h, differentiable.
    Without gradient (the rollout's and evaluation's decisions) its forward runs alone, the same
    kernels: through the Function's apply, which binds and records its arguments, the tutorial's
    network took 99 us a forward at batch 10 here, without it 65 us (a throwaway timing)."""
    if not torch.is_grad_enabled():
        return if_forward(h, threshold, alpha, w, soft_reset)[0]
    return IFSpikeCount.apply(h, w, threshold, alpha, soft_reset)[0]


# ---- IF layers whose spikes are needed step by step (deeper networks) ---------------------------
@cpu_kernel(
    "(Tensor x, int T, float threshold, float alpha, bool soft_reset) -> (Tensor, Tensor)",
    lambda x, T, threshold, alpha, soft_reset: tuple(x.new_empty((x.shape[0], T, x.shape[2])) for _ in "su"),
)
@numba.njit(cache=True)
def _if_steps_forward_cpu(x, T, threshold, alpha, soft_reset):  # pragma: no cover (compiled)
    th, al, limit = f32(threshold), f32(alpha), f32(SURROGATE_ARG_LIMIT)
    groups, neurons = x.shape[0], x.shape[2]
    spikes, u_seq = np.empty((groups, T, neurons), dtype=x.dtype), np.empty((groups, T, neurons), dtype=x.dtype)
    v = np.zeros(neurons, dtype=x.dtype)
    for g in range(groups):
        v[:] = f32(0)
        for t in range(T):
            x_t = x[g, 0] if x.shape[1] == 1 else x[g, t]  # one row: the same input at every step
            spikes_t, u_t = spikes[g, t], u_seq[g, t]
            for n in range(neurons):
                v_t = v[n] + x_t[n]
                fired = v_t >= th
                u_t[n] = min(max(al * (v_t - th), -limit), limit)
                spikes_t[n] = f32(1) if fired else f32(0)
                v[n] = (v_t - th if soft_reset else f32(0)) if fired else v_t
    return spikes, u_seq


@cpu_kernel(
    "(Tensor grad_spikes, Tensor u_seq, Tensor sig, float threshold, float alpha, bool summed, bool soft_reset)"
    " -> Tensor",
    lambda grad_spikes, u_seq, sig, threshold, alpha, summed, soft_reset: u_seq.new_empty(
        (u_seq.shape[0], 1 if summed else u_seq.shape[1], u_seq.shape[2])
    ),
)
@numba.njit(cache=True)
def _if_steps_backward_cpu(grad_spikes, u_seq, sig, threshold, alpha, summed, soft_reset):  # pragma: no cover
    th, al = f32(threshold), f32(alpha)
    groups, T, neurons = u_seq.shape
    grad_x = np.zeros((groups, 1 if summed else T, neurons), dtype=u_seq.dtype)
    grad_after = np.zeros(neurons, dtype=u_seq.dtype)  # dL / d(potential after the reset) of the step after
    for g in range(groups):
        grad_after[:] = f32(0)
        for t in range(T - 1, -1, -1):
            grad_row = grad_x[g, 0] if summed else grad_x[g, t]
            for n in range(neurons):
                surrogate_grad = al * sig[g, t, n] * (f32(1) - sig[g, t, n])
                if soft_reset:
                    reset_grad = f32(1) - th * surrogate_grad
                else:
                    not_fired = f32(0) if u_seq[g, t, n] >= f32(0) else f32(1)
                    reset_grad = not_fired - (th + u_seq[g, t, n] / al) * surrogate_grad
                grad_after[n] = grad_spikes[g, t, n] * surrogate_grad + grad_after[n] * reset_grad
                grad_row[n] += grad_after[n]
    return grad_x


def if_steps_forward(
    x: torch.Tensor, T: int, threshold: float, alpha: float, soft_reset: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes of IF neurons over T steps, [G, T, *shape], and the surrogate's argument at each step
    (clamped as in `if_forward`), from x [G, T, *shape] (a current per step) or [G, 1, *shape] (the
    same at each)."""
    shape, rows = (x.shape[0], T, *x.shape[2:]), x.detach().reshape(x.shape[0], x.shape[1], -1)
    if numba_runs(x):
        spikes, u_seq = _if_steps_forward_cpu(rows.contiguous(), T, threshold, alpha, soft_reset)
        return spikes.view(shape), u_seq.view(shape)
    v_seq, v = rows.new_empty((rows.shape[0], T, rows.shape[2])), torch.zeros_like(rows[:, 0])
    for t in range(T):
        torch.add(v, rows[:, 0] if rows.shape[1] == 1 else rows[:, t], out=v_seq[:, t])
        v = reset(v_seq[:, t], threshold, soft_reset)
    u_seq = ((v_seq - threshold) * alpha).clamp_(-SURROGATE_ARG_LIMIT, SURROGATE_ARG_LIMIT)
    return (v_seq >= threshold).to(x.dtype).view(shape), u_seq.view(shape)


def if_steps_backward(grad_spikes, u_seq, threshold: float, alpha: float, summed: bool, soft_reset: bool = False):
    """dL/dx from dL/dspikes through the unrolled recurrence (reverse mode, reset not detached): per
    step [G, T, ...], or `summed` over the steps [G, 1, ...] for an input that was the same at each."""
    G, T = u_seq.shape[:2]
    shape = (G, 1, *u_seq.shape[2:]) if summed else u_seq.shape
    sig = torch.sigmoid(u_seq)  # in torch: vectorized, which numba's exp in the loop is not
    if numba_runs(u_seq):
        flat = (a.reshape(G, T, -1).contiguous() for a in (grad_spikes, u_seq, sig))
        return _if_steps_backward_cpu(*flat, threshold, alpha, summed, soft_reset).view(shape)
    surrogate_grad = alpha * sig * (1.0 - sig)
    reset_grad = reset_gradient(u_seq, surrogate_grad, threshold, alpha, soft_reset)
    grad_x, grad_after = torch.empty_like(u_seq), torch.zeros_like(u_seq[:, 0])
    for t in range(T - 1, -1, -1):
        grad_after = grad_spikes[:, t] * surrogate_grad[:, t] + grad_after * reset_grad[:, t]
        grad_x[:, t] = grad_after
    return grad_x.sum(1, keepdim=True) if summed else grad_x


@signature_kept
class IFSpikes(torch.autograd.Function):
    """The spikes [G, T, ...] of G groups of SpikingJelly IF neurons (hard reset to 0, or soft with
    `soft_reset`; not detached; sigmoid surrogate) driven from rest by x[:, t] at step t, or by
    x[:, 0] at every step when x has one step [G, 1, ...] (the first layer, whose input is the
    observation's current): the step-by-step IFNode's output and gradient. The groups are the
    actor's and the critic's layers, kept apart so that each branch's spikes are contiguous for its
    Linear.

    Backward runs the recurrence v[t] = v_after[t-1] + x[t] in reverse: dL/dv[t] =
    dL/dspike[t] s'[t] + dL/dv_after[t] a[t] (a[t] = d v_after[t] / d v[t], as in
    `if_gradient_factor`), and dL/dx[t] = dL/dv[t] = dL/dv_after[t-1] (summed over t for a constant
    input). v[t] comes back from the surrogate's saved argument, as in `if_gradient_factor`. On the
    CPU numba runs both loops over T (torch would pay its per-op overhead at each step); elsewhere
    they run as torch ops. Its second output is the surrogate's argument, as `IFSpikeCount`'s;
    `if_spikes` drops it.
    """

    @staticmethod
    def forward(x: torch.Tensor, T: int, threshold: float, alpha: float, soft_reset: bool):
        return if_steps_forward(x, T, threshold, alpha, soft_reset)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, _, ctx.threshold, ctx.alpha, ctx.soft_reset = inputs
        ctx.summed = x.shape[1] == 1
        ctx.save_for_backward(output[1])
        ctx.mark_non_differentiable(output[1])
        ctx.set_materialize_grads(False)  # no zero gradient for that output (`IFSpikeCount`)

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor, _):
        (u_seq,) = ctx.saved_tensors
        grad_x = if_steps_backward(grad_spikes, u_seq, ctx.threshold, ctx.alpha, ctx.summed, ctx.soft_reset)
        return grad_x, None, None, None, None


def if_spikes(x: torch.Tensor, T: int, threshold: float, alpha: float, soft_reset: bool) -> torch.Tensor:
    """`IFSpikes`: the spikes [G, T, ...] of IF neurons driven by x [G, T or 1, ...], differentiable."""
    return IFSpikes.apply(x, T, threshold, alpha, soft_reset)[0]


def hidden_spikes(branch: nn.Sequential, T: int, x: torch.Tensor) -> list[torch.Tensor]:
    """The spikes [T, batch, neurons] of each hidden IF layer of a branch the fast path computes
    (`fast_path_mismatch`), on observations x [batch, inputs], by `IFSpikes` and the products the
    fast path trains with (`currents_into`): what `machinery.cost.hidden_spikes` records from the branch
    run step by step, in a fraction of its time."""
    if_node = branch[1]
    neurons = if_node.v_threshold, if_node.surrogate_function.alpha, if_node.v_reset is None
    first, *deeper = branch[:-2:2]
    spikes = if_spikes(first(x)[None, None], T, *neurons)  # one group, and every step sees the same observation
    layers = [spikes[0]]
    for depth, linear in enumerate(deeper, start=2):
        currents = currents_into(depth, spikes, linear.weight.t()[None], linear.bias[None], neurons[2])
        spikes = if_spikes(currents, T, *neurons)
        layers.append(spikes[0])
    return layers


# ---- the second hidden layer's product, on the first layer's periodic spikes --------------------
@cpu_kernel(
    "(Tensor spikes, Tensor weight, Tensor bias) -> (Tensor, Tensor)",
    lambda spikes, weight, bias: (
        spikes.new_empty((*spikes.shape[:3], weight.shape[2])),
        spikes.new_empty((spikes.shape[0], spikes.shape[2], spikes.shape[3]), dtype=torch.int64),
    ),
)
@numba.njit(cache=True)
def _periodic_linear_cpu(spikes, weight, bias):  # pragma: no cover (compiled)
    # two functions: in one, LLVM no longer vectorized the sums (1,050 us a call against 160 here)
    periods = _first_spike_steps(spikes)
    return _periodic_currents(periods, weight, bias, spikes.shape[1]), periods


@numba.njit(cache=True)
def _first_spike_steps(spikes):  # pragma: no cover (compiled)
    groups, T, batch, inputs = spikes.shape
    periods = np.zeros((groups, batch, inputs), dtype=np.int64)  # 0: never fired
    for g in range(groups):
        for b in range(batch):
            for t in range(T - 1, -1, -1):  # step by step, each a contiguous row: the first spike's is last
                for j in range(inputs):
                    if spikes[g, t, b, j] != f32(0):
                        periods[g, b, j] = t + 1
    return periods


@numba.njit(cache=True)
def _periodic_currents(periods, weight, bias, T):  # pragma: no cover (compiled)
    groups, batch, inputs = periods.shape
    outputs = weight.shape[2]
    currents = np.empty((groups, T, batch, outputs), dtype=weight.dtype)
    by_period = np.empty((T + 1, outputs), dtype=weight.dtype)  # row p: the weight rows of period p summed
    used = np.empty(T + 1, dtype=np.bool_)  # the periods some input has: the others' rows are not summed
    for g in range(groups):
        for b in range(batch):
            used[:] = False
            for j in range(inputs):
                p = periods[g, b, j]
                if p > 0:
                    if used[p]:
                        for o in range(outputs):
                            by_period[p, o] += weight[g, j, o]
                    else:
                        used[p] = True
                        for o in range(outputs):
                            by_period[p, o] = weight[g, j, o]
            for t in range(T):
                row = currents[g, t, b]
                for o in range(outputs):
                    row[o] = bias[g, o]
            # each period's sum into its steps p, 2p, ...: a row gets its periods' in ascending order,
            # as a loop over each step's divisors would, without an integer division per pair
            for p in range(1, T + 1):
                if used[p]:
                    for t in range(p, T + 1, p):
                        row = currents[g, t - 1, b]
                        for o in range(outputs):
                            row[o] += by_period[p, o]
    return currents


@cpu_kernel(
    "(Tensor periods, Tensor grad_currents) -> Tensor",
    lambda periods, grad: grad.new_empty((periods.shape[0], periods.shape[2], grad.shape[3])),
)
@numba.njit(cache=True)
def _periodic_linear_weight_grad_cpu(periods, grad_currents):  # pragma: no cover (compiled)
    groups, T, batch, outputs = grad_currents.shape
    grad_weight = np.zeros((groups, periods.shape[2], outputs), dtype=grad_currents.dtype)
    by_period = np.empty((T + 1, outputs), dtype=grad_currents.dtype)  # row p: the steps p, 2p, ... summed
    used = np.empty(T + 1, dtype=np.bool_)
    for g in range(groups):
        for b in range(batch):
            used[:] = False
            for j in range(periods.shape[2]):
                used[periods[g, b, j]] = True
            for p in range(1, T + 1):
                if not used[p]:
                    continue
                for o in range(outputs):
                    by_period[p, o] = f32(0)
                for t in range(p, T + 1, p):
                    for o in range(outputs):
                        by_period[p, o] += grad_currents[g, t - 1, b, o]
            for j in range(periods.shape[2]):
                p = periods[g, b, j]
                if p > 0:
                    for o in range(outputs):
                        grad_weight[g, j, o] += by_period[p, o]
    return grad_weight


@signature_kept
class PeriodicLinear(torch.autograd.Function):
    """x W + bias on every step of spikes [G, T, batch, inputs] that are periodic: each input fires
    at steps p, 2p, 3p, ... (its period p, the step of its first spike) or never. That is what the
    first hidden layer sends: its IF neurons see the same current at every step and reset to 0, so
    each one's potential starts over after a spike, bit for bit. The product at step t is then the
    bias plus, over the divisors p of t, the sum of the weight rows of the inputs of period p: each
    row is added once per sample, not once per step and spike, where a dense product costs T times
    the work (an exact reformulation, rounded in another order). Its gradient with respect to the
    weights gathers the same way (the steps p, 2p, ... of the incoming gradient summed, once per
    period); the one with respect to the spikes, which the first layer's surrogate gradient needs
    at every step, is the dense product. weight is [G, inputs, outputs], bias [G, outputs]. Numba
    kernels, on the CPU: at the cleanrl preset's CartPole-v1 mini-batch (128 samples) the forward took
    145 us a call where the dense product took 371, the weights' gradient 96 where it took 400 (the
    product to the spikes 366; docs/results.md, "The second layer's product on periodic spikes"). On
    a machine with AVX-512, where MKL's dense product is faster, the forward was level with it at
    T = 16, took 9 to 21% less time at T = 32 and twice as long at T = 4 (docs/results.md, "The
    periodic sums without a division").
    Its second output, the periods, is what backward needs."""

    @staticmethod
    def forward(spikes: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor):
        return _periodic_linear_cpu(spikes.detach().contiguous(), weight.detach().contiguous(), bias.detach())

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, weight, _ = inputs
        ctx.save_for_backward(output[1], weight)
        ctx.mark_non_differentiable(output[1])
        ctx.set_materialize_grads(False)  # no zero gradient for that output (`IFSpikeCount`)

    @staticmethod
    def backward(ctx, grad_currents: torch.Tensor, _):
        periods, weight = ctx.saved_tensors
        grad_currents = grad_currents.contiguous()
        grad_spikes = torch.bmm(grad_currents.flatten(1, 2), weight.transpose(1, 2)).view(*grad_currents.shape[:3], -1)
        grad_weight = _periodic_linear_weight_grad_cpu(periods, grad_currents)
        return grad_spikes, grad_weight, grad_currents.sum((1, 2))


def linear_of_periodic_spikes(spikes: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """`PeriodicLinear`: the currents [G, T, batch, outputs] that the first hidden layer's spikes
    drive into the second, differentiable; numba kernels, so a float32 CPU tensor (`numba_runs`)."""
    return PeriodicLinear.apply(spikes, weight, bias)[0]


# ---- a network of two or more hidden layers -----------------------------------------------------
def deep_spike_counts(x: torch.Tensor, hidden, readout_w: torch.Tensor, T: int, neurons: tuple) -> torch.Tensor:
    """The weighted spike counts sum_t w[t] spike[t] [branch, batch, H] of the last hidden IF layer of
    the critic and the actor (--hidden-layers 2 or more), from observations x [batch, inputs];
    `hidden` are their hidden Linears in (critic, actor) pairs, layer by layer, and `neurons` the IF
    neurons' (threshold, alpha, soft_reset). Layers after the first see spikes that change from step
    to step: their IF neurons step through T in one kernel (`IFSpikes`), and both branches' Linears
    run once on all T steps' spikes, as one batched matmul (the tensors hold the branch first, so
    neither branch's spikes are copied); the second layer's on the first one's periodic spikes
    (`PeriodicLinear`) where the reset is hard. Without gradient (the rollout's and evaluation's
    decisions) one kernel computes all of that (`if_network_counts`)."""
    threshold, _, soft_reset = neurons
    if not torch.is_grad_enabled() and numba_runs(x):
        return if_network_counts(x, hidden, readout_w, threshold, soft_reset)
    critic_in, actor_in = hidden[:2]
    h = torch.stack((critic_in(x), actor_in(x))).unsqueeze(1)  # [branch, 1 step (the same at each), batch, H]
    spikes = if_spikes(h, T, *neurons)
    for layer in range(2, len(hidden), 2):
        critic_mid, actor_mid = hidden[layer : layer + 2]
        weight = torch.stack((critic_mid.weight.t(), actor_mid.weight.t()))  # [branch, in, out], contiguous
        bias = torch.stack((critic_mid.bias, actor_mid.bias))
        spikes = if_spikes(currents_into(layer // 2 + 1, spikes, weight, bias, soft_reset), T, *neurons)
    return torch.matmul(readout_w, spikes.flatten(2)).view(2, len(x), -1)


def currents_into(depth: int, spikes: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, soft_reset: bool):
    """The currents [G, T, batch, H] that the spikes [G, T, batch, H] of hidden layer depth - 1 drive
    into hidden layer `depth` (2 or more) through weight [G, H, H] and bias [G, H]: on the first
    layer's periodic spikes (a hard reset) `PeriodicLinear`'s product, else a batched matmul."""
    if depth == 2 and not soft_reset and numba_runs(spikes):
        return linear_of_periodic_spikes(spikes, weight, bias)
    return torch.baddbmm(bias.unsqueeze(1), spikes.flatten(1, -2), weight).view_as(spikes)


# ---- the whole network without gradient (the rollout's and evaluation's decisions) ------------
@numba.njit(cache=True)
def _network_counts(x, weights, biases, w, threshold, soft_reset):  # pragma: no cover (compiled)
    th = f32(threshold)
    layers, neurons = len(weights) // 2, biases[0].shape[0]
    counts = np.zeros((2, x.shape[0], neurons), dtype=x.dtype)
    h, current, v = np.empty(neurons, x.dtype), np.empty(neurons, x.dtype), np.empty((layers, neurons), x.dtype)
    fired = np.empty(neurons, dtype=np.int64)  # the indices of the neurons that fired, ascending
    for g in range(2):  # the critic, then the actor
        # a layer's input is spikes: W s = the sum of the columns of W where s is 1, rows of W's transpose
        columns = [np.ascontiguousarray(weights[2 * layer + g].T) for layer in range(1, layers)]
        for b in range(x.shape[0]):
            for n in range(neurons):
                acc = biases[g][n]
                for i in range(x.shape[1]):
                    acc += weights[g][n, i] * x[b, i]
                h[n] = acc
            v[:] = f32(0)
            fired_count = 0
            for t in range(len(w)):
                for layer in range(layers):
                    if layer == 0:
                        current[:] = h
                    else:
                        current[:] = biases[2 * layer + g]
                        for k in range(fired_count):
                            current += columns[layer - 1][fired[k]]
                    fired_count = 0
                    for n in range(neurons):
                        v_t = v[layer, n] + current[n]
                        if v_t >= th:
                            fired[fired_count] = n
                            fired_count += 1
                            v[layer, n] = v_t - th if soft_reset else f32(0)
                        else:
                            v[layer, n] = v_t
                for k in range(fired_count):
                    counts[g, b, fired[k]] += w[t]
    return counts


def parameter_arrays(modules, name: str) -> tuple[np.ndarray, ...]:
    """The `name` parameter (weight or bias) of each of `modules`, as arrays of one type (C-contiguous
    float32), so that a numba kernel indexes their tuple by a variable."""
    return tuple(getattr(module, name).detach().contiguous().numpy() for module in modules)


class ParameterViews:
    """The `parameter_arrays` of groups of (modules, parameter name), kept from one call to the next
    and made again only where a parameter's memory is no longer its array's (another model, a parameter
    replaced, or one not contiguous, whose array is a copy): the arrays are views of the tensors' memory,
    so the optimizer's steps in place show through. Making them, `decide`'s 13 tensors for a network of
    two hidden layers, took 25 us of a 45 us decision at batch 1 here; with them kept the decision took
    29 us, and 22 us where the check of the addresses reads the modules' `_parameters` without
    `nn.Module.__getattr__` (10 us against 2.5 for the cleanrl preset's 14 parameters; throwaway
    timings, HalfCheetah-v5)."""

    def __init__(self) -> None:
        self.addresses, self.arrays = None, ()

    def __call__(self, *groups: tuple[tuple[nn.Module, ...], str]) -> tuple[tuple[np.ndarray, ...], ...]:
        # _parameters[name] is getattr(module, name) for a parameter, without nn.Module's __getattr__
        addresses = tuple(module._parameters[name].data_ptr() for modules, name in groups for module in modules)
        if addresses != self.addresses:
            self.arrays = tuple(parameter_arrays(modules, name) for modules, name in groups)
            self.addresses = tuple(array.ctypes.data for arrays in self.arrays for array in arrays)
        return self.arrays


_KEPT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # owner -> {make: make(owner)}


def kept(owner: nn.Module, make: Callable):
    """`make(owner)`, made at the first call for `owner` and kept for the later ones as long as `owner`
    lives (a network, or a part of one): held weakly, what is kept keeps no network alive after its
    last use. One value per `make`."""
    per_owner = _KEPT.setdefault(owner, {})
    if make not in per_owner:
        per_owner[make] = make(owner)
    return per_owner[make]


def kept_views(owner: nn.Module) -> ParameterViews:
    """The `ParameterViews` of the kernel calls of `owner`, `kept`."""
    return kept(owner, new_views)


def new_views(_owner: nn.Module) -> ParameterViews:
    return ParameterViews()


def if_network_counts(x: torch.Tensor, branches, readout_w: torch.Tensor, threshold: float, soft_reset: bool):
    """The weighted spike counts sum_t w[t] spike[t] [2, batch, hidden] of the last hidden IF layer of
    the critic and the actor, from observations x [batch, inputs], for a network of two or more hidden
    layers and no gradient: what `deep_spike_counts` computes with `IFSpikes` and a matrix product per layer,
    to float rounding, in one numba call. `branches` are the critic's and the actor's hidden Linears,
    in pairs, layer by layer. A layer's input is 0 or 1, so its product is a sum of the weight columns
    of the neurons that fired. Without autograd's bookkeeping, per-op dispatch and the surrogate's
    arguments, the eager policy step of the cleanrl preset took half the time in the training loop
    (docs/results.md, "Decisions in one kernel"). Never compiled: --compile's policy step is
    `decisions`, and the update needs the gradient. The arrays of the parameters are kept between
    calls (`kept_views` of the network's first Linear): making them took 16 of a 61 us decision at
    batch 1 (a throwaway timing)."""
    weights, biases = kept_views(branches[0])((branches, "weight"), (branches, "bias"))
    return torch.from_numpy(
        _network_counts(x.contiguous().numpy(), weights, biases, readout_w.numpy(), threshold, soft_reset)
    )


# ---- the rollout's decision in one kernel (--compile) ----------------------------------------
LOG_SQRT_2PI = f32(np.log(np.sqrt(2 * np.pi)))


@numba.njit(cache=True)
def _decisions_cpu(
    x, weights, biases, w, threshold, soft_reset, out_weights, out_biases, w_sum, log_std, noise
):  # pragma: no cover (compiled)
    """`Spiking_PPO.act` of `_network_counts`' network: the readout, value = W_c counts_c + sum(w) b_c and
    mean = W_a counts_a + sum(w) b_a; the action mean + std noise; its log-probability under the
    Gaussian, as torch.distributions.Normal computes it."""
    counts = _network_counts(x, weights, biases, w, threshold, soft_reset)
    batch, actions = x.shape[0], noise.shape[1]
    value, mean = np.empty((batch, 1), x.dtype), np.empty((batch, actions), x.dtype)
    for b in range(batch):
        for g, out in ((0, value), (1, mean)):
            for o in range(out.shape[1]):
                acc = w_sum * out_biases[g][o]
                for n in range(counts.shape[2]):
                    acc += counts[g, b, n] * out_weights[g][o, n]
                out[b, o] = acc
    return (*gaussian_sample(mean, log_std, noise), value)


@numba.njit(cache=True)
def gaussian_sample(mean, log_std, noise):  # pragma: no cover (compiled)
    """The action mean + std noise of the policy's Gaussian, and its log-probability as
    torch.distributions.Normal computes it; `act`'s arithmetic for the numba policy steps."""
    action, log_prob = np.empty_like(mean), np.empty_like(mean)
    std = np.exp(log_std[0])
    log_scale = np.log(std)
    for b in range(mean.shape[0]):
        for a in range(mean.shape[1]):
            action[b, a] = mean[b, a] + std[a] * noise[b, a]
            deviation = action[b, a] - mean[b, a]
            log_prob[b, a] = -(deviation * deviation) / (f32(2) * (std[a] * std[a])) - log_scale[a] - LOG_SQRT_2PI
    return action, log_prob


def decisions(model: nn.Module) -> Callable | None:
    """For --compile: `Spiking_PPO.act` of `model` as one numba call, where `_network_counts` computes
    its network (a spiking ActorCritic's fast path, with one hidden layer or more, float32 on the CPU),
    the same function to float rounding; else None. Its rollout decisions are one or a few
    observations, where the compiled `act` spent most of its time in the layers of Python around the
    kernel (guards, the compiled wrapper, a custom op's dispatch), which the env steps between two
    calls evict from the caches: at the cleanrl preset this took the compiled training loop's policy
    step from 185 to 94 us per rollout step on CartPole-v1 and from 151 to 72 us on HalfCheetah-v5,
    and the loop 21% and 17% faster; at the tutorial's settings (one hidden layer) from 136 to 51 us
    and the loop 18% faster (docs/results.md, "The compiled policy step in one kernel")."""
    if not getattr(model, "_hidden", ()) or not numba_runs(next(model.parameters())):
        return None
    return decide


def decide(model: nn.Module, obs: torch.Tensor, noise: torch.Tensor):
    """`decisions`' act: `Spiking_PPO.act`'s (action, log-probability, value), on the model's
    `kept_views`."""
    if_node, hidden, outputs = model._layers.if_node, model._hidden, (model._layers.critic_out, model._layers.actor_out)
    weights, biases, out_weights, out_biases, (log_std,) = kept_views(model)(
        (hidden, "weight"), (hidden, "bias"), (outputs, "weight"), (outputs, "bias"), ((model,), "log_std")
    )
    out = _decisions_cpu(
        obs.contiguous().numpy(), weights, biases, model.readout_w.numpy(), float(if_node.v_threshold),
        if_node.v_reset is None, out_weights, out_biases, f32(model.readout_w_sum), log_std, noise.contiguous().numpy(),
    )  # fmt: skip
    return tuple(map(torch.from_numpy, out))
