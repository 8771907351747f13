"""The fast path's IF layer: T steps of IF neurons under a constant input, in closed form.

`ActorCritic.forward_fast` (Spiking_PPO.py) computes the tutorial's network without calling each
module T times. This module holds the part that needs kernels; it knows nothing of PPO or envs.

The derivation. The first Linear sees the same observation x at every step, so its output
h = W1 x + b1 is constant over the T steps. An IF neuron with hard reset to 0 then follows the
scalar recurrence

    v[t] = v_after[t-1] + h,   spike[t] = (v[t] >= threshold),   v_after[t] = v[t] (1 - spike[t]).

A NonSpikingLIFNode fed y[0..T-1] from rest ends at sum_t w[t] y[t] with
w[t] = (1/tau) (1 - 1/tau)^(T-1-t) (`lif_readout_weights`), and y[t] = W2 spike[t] + b2, so the
readout is W2 (sum_t w[t] spike[t]) + sum(w) b2: the second Linear runs once, on weighted spike
counts. What the network needs from the IF layer is therefore the count sum_t w[t] spike[t]
(forward) and its derivative with respect to h (backward), through the unrolled recurrence with
SpikingJelly's sigmoid surrogate and its reset left in the graph. Forward mode along the potentials
gives it per neuron: dv[t] = 1 + a[t-1] dv[t-1] with a[t] = (1 - spike[t]) - s'[t] v[t], and the
count gains w[t] s'[t] dv[t], where s'[t] is the surrogate's derivative at v[t].

Hidden layers after the first (--hidden-layers) see spikes that change from step to step, so no
closed form applies: `IFSpikes` steps their IF neurons through T, forward and backward, in one
kernel call each.

On the CPU two numba kernels run the time loop, vectorized across neurons (torch would pay its
per-op overhead at each of the T steps); on other devices the same loop runs as torch ops. Both
add potentials in the neuron's own order, so the spikes are bit-identical to SpikingJelly's.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from spikingjelly.activation_based import surrogate

SURROGATE_ARG_LIMIT = 36.0  # sigmoid'(36) < 1e-15: clamping there changes nothing that float32 shows
# but keeps denormal floats, which slow arithmetic down tenfold, out of the far-below-threshold tail.
NUMBA_ON_CPU = True  # False runs the portable torch kernels on the CPU too (the tests check both)

# float32 throughout (f32 constants): a float64 literal would widen the loop and stop LLVM from
# vectorizing it.
f32 = np.float32


def lif_readout_weights(tau: float, T: int) -> torch.Tensor:
    """w[t] such that a NonSpikingLIFNode fed x[0..T-1] from rest ends at sum_t w[t] * x[t].

    Unrolling v_t = (1 - 1/tau) v_{t-1} + x_t / tau gives w[t] = (1/tau) (1 - 1/tau)^(T-1-t).
    """
    decay = 1.0 - 1.0 / tau
    return torch.tensor([decay ** (T - 1 - t) / tau for t in range(T)], dtype=torch.float64)


def check_fast_path_applies(model) -> None:
    """The fast path assumes the tutorial's neurons: hard reset to 0, sigmoid surrogate, and the
    same neuron parameters in every IF layer of both branches (it runs their IF layers as one)."""
    actor_if, actor_readout = model.actor[1], model.actor[-1]
    if_nodes = [*model.critic[1:-1:2], *model.actor[1:-1:2]]
    for if_node in if_nodes:
        assert if_node.v_reset == 0.0 and isinstance(if_node.surrogate_function, surrogate.Sigmoid)
        assert if_node.v_threshold == actor_if.v_threshold
        assert if_node.surrogate_function.alpha == actor_if.surrogate_function.alpha
    for readout in (model.critic[-1], actor_readout):
        assert readout.v_reset == 0.0 and readout.decay_input and readout.tau == actor_readout.tau


@numba.njit(cache=True)
def _if_forward_cpu(h, threshold, alpha, w):  # pragma: no cover (compiled)
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
            v[n] = f32(0) if fired else v_t
    return count, u_seq


@numba.njit(cache=True)
def _if_gradient_factor_cpu(u_seq, sig, threshold, alpha, w):  # pragma: no cover (compiled)
    th, al = f32(threshold), f32(alpha)
    dv, factor = np.zeros_like(u_seq[0]), np.zeros_like(u_seq[0])
    for t in range(u_seq.shape[0]):
        for n in range(factor.shape[0]):
            surrogate_grad = al * sig[t, n] * (f32(1) - sig[t, n])
            dv_t = dv[n] + f32(1)
            factor[n] += w[t] * surrogate_grad * dv_t
            not_fired = f32(0) if u_seq[t, n] >= f32(0) else f32(1)
            dv[n] = dv_t * (not_fired - surrogate_grad * (th + u_seq[t, n] / al))
    return factor


def if_forward(h: torch.Tensor, threshold: float, alpha: float, w: torch.Tensor):
    """Weighted spike counts sum_t w[t] spike[t], and the surrogate's argument at each step [T, *h.shape]."""
    T = len(w)
    if h.device.type == "cpu" and h.dtype == torch.float32 and NUMBA_ON_CPU:
        count, u_seq = _if_forward_cpu(h.detach().reshape(-1).numpy(), threshold, alpha, w.numpy())
        return torch.from_numpy(count).view_as(h), torch.from_numpy(u_seq).view(T, *h.shape)
    v_seq = h.new_empty((T, *h.shape))  # potentials before each reset
    v = torch.zeros_like(h)
    for t in range(T):
        torch.add(v, h, out=v_seq[t])
        v = v_seq[t] * (v_seq[t] < threshold)
    count = torch.tensordot(w, (v_seq >= threshold).to(h.dtype), 1)
    u_seq = ((v_seq - threshold) * alpha).clamp_(-SURROGATE_ARG_LIMIT, SURROGATE_ARG_LIMIT)
    return count, u_seq


def if_gradient_factor(u_seq: torch.Tensor, threshold: float, alpha: float, w: torch.Tensor) -> torch.Tensor:
    """d(sum_t w[t] spike[t]) / dh per neuron, through the unrolled recurrence with surrogate spikes.

    Forward mode along the potentials: dv[t] = 1 + a[t-1] dv[t-1], where
    a[t] = d(v after reset)/d(v before reset) = (1 - spike[t]) - surrogate'[t] * v[t]
    (SpikingJelly does not detach the reset), and the count gains w[t] surrogate'[t] dv[t].
    """
    T, sig = len(w), torch.sigmoid(u_seq)
    if u_seq.device.type == "cpu" and u_seq.dtype == torch.float32 and NUMBA_ON_CPU:
        factor = _if_gradient_factor_cpu(
            u_seq.view(T, -1).numpy(), sig.view(T, -1).numpy(), threshold, alpha, w.numpy()
        )
        return torch.from_numpy(factor).view(u_seq.shape[1:])
    surrogate_grad = alpha * sig * (1.0 - sig)
    a = torch.addcmul((u_seq < 0).to(u_seq.dtype), surrogate_grad, threshold + u_seq / alpha, value=-1.0)
    dv = torch.ones_like(u_seq)
    for t in range(1, T):
        torch.addcmul(dv[t], a[t - 1], dv[t - 1], out=dv[t])
    return torch.einsum("t,t...,t...->...", w, surrogate_grad, dv)


class IFSpikeCount(torch.autograd.Function):
    """Weighted spike count of SpikingJelly IF neurons driven by the same input h for T steps.

    Forward: ``sum_t w[t] * spike[t]``. Backward: the gradient autograd would find through the
    unrolled IFNode recurrence with its sigmoid surrogate, reset included; with a constant
    input it is a per-neuron factor times the incoming gradient.
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor, w: torch.Tensor, threshold: float, alpha: float) -> torch.Tensor:
        count, u_seq = if_forward(h, threshold, alpha, w)
        ctx.save_for_backward(u_seq, w)
        ctx.threshold, ctx.alpha = threshold, alpha
        return count

    @staticmethod
    def backward(ctx, grad_count: torch.Tensor):
        u_seq, w = ctx.saved_tensors
        return grad_count * if_gradient_factor(u_seq, ctx.threshold, ctx.alpha, w), None, None, None


# ---- IF layers whose input changes over the T steps (hidden layers after the first) ------------
@numba.njit(cache=True)
def _if_steps_forward_cpu(x, threshold):  # pragma: no cover (compiled)
    th = f32(threshold)
    v = np.zeros_like(x[0])
    spikes, v_seq = np.empty_like(x), np.empty_like(x)
    for t in range(x.shape[0]):
        for n in range(x.shape[1]):
            v_t = v[n] + x[t, n]
            fired = v_t >= th
            v_seq[t, n] = v_t
            spikes[t, n] = f32(1) if fired else f32(0)
            v[n] = f32(0) if fired else v_t
    return spikes, v_seq


@numba.njit(cache=True)
def _if_steps_backward_cpu(grad_spikes, v_seq, spikes, sig, alpha):  # pragma: no cover (compiled)
    al = f32(alpha)
    grad_x = np.empty_like(v_seq)
    grad_after = np.zeros_like(v_seq[0])  # dL / d(potential after the reset) of the step after
    for t in range(v_seq.shape[0] - 1, -1, -1):
        for n in range(v_seq.shape[1]):
            surrogate_grad = al * sig[t, n] * (f32(1) - sig[t, n])
            reset_grad = (f32(1) - spikes[t, n]) - v_seq[t, n] * surrogate_grad
            grad_after[n] = grad_spikes[t, n] * surrogate_grad + grad_after[n] * reset_grad
            grad_x[t, n] = grad_after[n]
    return grad_x


def if_steps_forward(x: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes of IF neurons driven by x[t] at step t [T, ...], and their potentials before each reset."""
    T, shape = x.shape[0], x.shape
    if x.device.type == "cpu" and x.dtype == torch.float32 and NUMBA_ON_CPU:
        spikes, v_seq = _if_steps_forward_cpu(x.detach().reshape(T, -1).contiguous().numpy(), threshold)
        return torch.from_numpy(spikes).view(shape), torch.from_numpy(v_seq).view(shape)
    v_seq, v = torch.empty_like(x), torch.zeros_like(x[0])
    for t in range(T):
        torch.add(v, x[t], out=v_seq[t])
        v = v_seq[t] * (v_seq[t] < threshold)
    return (v_seq >= threshold).to(x.dtype), v_seq


def if_steps_backward(grad_spikes, v_seq, spikes, threshold: float, alpha: float) -> torch.Tensor:
    """dL/dx from dL/dspikes, through the unrolled recurrence (reverse mode, reset not detached)."""
    T = v_seq.shape[0]
    # the sigmoid in torch: vectorized, which numba's exp in the loop is not (half the backward's time)
    sig = torch.sigmoid(((v_seq - threshold) * alpha).clamp_(-SURROGATE_ARG_LIMIT, SURROGATE_ARG_LIMIT))
    if v_seq.device.type == "cpu" and v_seq.dtype == torch.float32 and NUMBA_ON_CPU:
        flat = (a.reshape(T, -1).contiguous().numpy() for a in (grad_spikes, v_seq, spikes, sig))
        return torch.from_numpy(_if_steps_backward_cpu(*flat, alpha)).view(v_seq.shape)
    surrogate_grad = alpha * sig * (1.0 - sig)
    reset_grad = (1.0 - spikes) - v_seq * surrogate_grad
    grad_x, grad_after = torch.empty_like(v_seq), torch.zeros_like(v_seq[0])
    for t in range(T - 1, -1, -1):
        grad_after = grad_spikes[t] * surrogate_grad[t] + grad_after * reset_grad[t]
        grad_x[t] = grad_after
    return grad_x


class IFSpikes(torch.autograd.Function):
    """The spikes [T, ...] of SpikingJelly IF neurons (hard reset to 0, not detached; sigmoid
    surrogate) driven by x[t] at step t, from rest: the step-by-step IFNode's output and gradient.

    Backward runs the recurrence v[t] = v_after[t-1] + x[t], v_after[t] = v[t] (1 - spike[t]) in
    reverse: dL/dv[t] = dL/dspike[t] s'[t] + dL/dv_after[t] ((1 - spike[t]) - v[t] s'[t]), and
    dL/dx[t] = dL/dv[t] = dL/dv_after[t-1]. On the CPU numba runs both loops over T (torch would pay
    its per-op overhead at each step); elsewhere they run as torch ops.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, threshold: float, alpha: float) -> torch.Tensor:
        spikes, v_seq = if_steps_forward(x, threshold)
        ctx.save_for_backward(v_seq, spikes)
        ctx.threshold, ctx.alpha = threshold, alpha
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):
        v_seq, spikes = ctx.saved_tensors
        return if_steps_backward(grad_spikes, v_seq, spikes, ctx.threshold, ctx.alpha), None, None
