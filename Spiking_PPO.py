"""Spiking PPO: proximal policy optimization with a spiking actor-critic.

A re-implementation of SpikingJelly's "Reinforcement learning: PPO" tutorial on today's
stack (SpikingJelly 2.0, gymnasium 1.x). Each branch of the actor-critic is
``Linear -> IF neuron -> Linear -> non-spiking LIF neuron``; the observation is shown to the
network for ``T`` time steps and the readout neurons' membrane potentials after the last step
are the value and the action mean. PPO itself is the tutorial's: GAE, random mini-batches,
clipped surrogate.

    python Spiking_PPO.py                      # train on CartPole-v0, log to runs/
    python Spiking_PPO.py --help               # every hyperparameter
    tensorboard --logdir runs

``PPO.py`` imports this file's training loop and swaps in an ANN, so that the two agents
differ in the network only.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import functools
import math
import os
import random
import signal
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import gymnasium as gym
import numba
import numpy as np
import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, neuron, surrogate
from torch.distributions import Normal
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm


# --------------------------------------------------------------------------------------
# Hyperparameters: one typed place, each field a command-line flag (--env-id, --num-envs, ...).
# The defaults are the tutorial's.
# --------------------------------------------------------------------------------------
def flag(default: Any, help: str, check: str | None = None, choices: tuple | None = None):
    """A dataclass field that is also a command-line flag; `check` names its valid range."""
    return field(default=default, metadata={"help": help, "check": check, "choices": choices})


@dataclass
class Args:
    env_id: str = flag("CartPole-v0", "gymnasium env id (flat Box observation, Discrete or Box action)")
    num_envs: int = flag(4, "parallel training environments", "positive")
    vectorization: str = flag("sync", "run the envs in this process, or one process each", choices=("sync", "async"))
    seed: int = flag(1, "seed for python, numpy, torch and every environment", "nonnegative")
    device: str = flag("auto", "torch device: cpu, cuda, or auto (cuda when available)")
    threads: int = flag(1, "torch CPU threads; the tutorial's tiny networks run fastest on one", "positive")
    max_steps: int = flag(100_000, "rollout steps to train for (one step advances every env)", "positive")
    num_steps: int = flag(128, "rollout steps per env between two PPO updates", "positive")
    hidden_size: int = flag(32, "hidden units in each branch (actor, critic)", "positive")
    learning_rate: float = flag(1e-3, "Adam learning rate", "positive")
    mini_batch_size: int = flag(256, "samples per PPO mini-batch", "positive")
    ppo_epochs: int = flag(30, "passes over each rollout per update", "positive")
    clip_param: float = flag(0.2, "PPO clipping range of the probability ratio", "positive")
    gamma: float = flag(0.99, "discount factor", "probability")
    gae_lambda: float = flag(0.95, "GAE lambda (the tutorial's `tau`)", "probability")
    ent_coef: float = flag(0.001, "entropy bonus coefficient", "nonnegative")
    vf_coef: float = flag(0.5, "value loss coefficient", "nonnegative")
    truncation_as_termination: bool = flag(False, "treat time limits as failures, as the tutorial did")
    eval_interval: int = flag(100, "rollout steps between two evaluations", "positive")
    eval_episodes: int = flag(10, "episodes per evaluation, played in parallel", "positive")
    stop_at_return: float | None = flag(None, "stop once the eval mean return reaches this", "finite")
    runs_dir: str = flag("runs", "parent directory of the run directories")
    quiet: bool = flag(False, "no progress bar (for logs and CI)")
    resume: str | None = flag(None, "continue the interrupted run in this run directory from its last.pt")
    eval_only: str | None = flag(None, "play --eval-episodes episodes with this checkpoint and print the return")
    render: bool = flag(False, "with --eval-only: show one episode on screen")
    capture_video: bool = flag(False, "with --eval-only: write an mp4 of one episode beside the checkpoint")


# Flags that say what to do rather than how to train: not saved as the run's hyperparameters,
# and, with those below, the only ones a resumed run may change.
ACTION_FLAGS = ("quiet", "resume", "eval_only", "render", "capture_video")
RESUME_MAY_CHANGE = ("max_steps", "stop_at_return", "device", "threads")


@dataclass
class SpikingArgs(Args):
    T: int = flag(16, "time steps the observation is presented to the SNN", "positive")
    snn_impl: str = flag(
        "fast", "fast (exact, vectorized over T) or reference (step by step)", choices=("fast", "reference")
    )


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit status 2."""


CHECKS: dict[str, tuple[Callable[[float], bool], str]] = {
    "positive": (lambda x: math.isfinite(x) and x > 0, "a finite number > 0"),
    "nonnegative": (lambda x: math.isfinite(x) and x >= 0, "a finite number >= 0"),
    "probability": (lambda x: 0 < x <= 1, "in (0, 1]"),
    "finite": (lambda x: math.isfinite(x), "finite"),
}


def cli_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(message)


def build_parser(args_cls: type[Args], defaults: bool = True) -> OneLineParser:
    """The command line of `args_cls`; without defaults, parsing yields only the flags given."""
    parser = OneLineParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(args_cls):
        default = f.default if defaults else argparse.SUPPRESS
        if f.type == "bool":
            parser.add_argument(cli_flag(f.name), action="store_true", default=default, help=f.metadata["help"])
            continue
        kind = {"int": int, "float": float, "str": str, "float | None": float, "str | None": str}[f.type]
        parser.add_argument(
            cli_flag(f.name), type=kind, default=default, help=f.metadata["help"], choices=f.metadata["choices"]
        )
    return parser


def parse_args(args_cls: type[Args], argv: list[str] | None = None) -> Args:
    args = args_cls(**vars(build_parser(args_cls).parse_args(argv)))
    validate(args)
    return args


def given_flags(args_cls: type[Args], argv: list[str] | None = None) -> set[str]:
    return set(vars(build_parser(args_cls, defaults=False).parse_args(argv)))


def validate(args: Args) -> None:
    for f in dataclasses.fields(args):
        value, check = getattr(args, f.name), f.metadata["check"]
        if check and value is not None and not CHECKS[check][0](value):
            raise UsageError(f"{cli_flag(f.name)} must be {CHECKS[check][1]}, got {value}")
    batch = args.num_envs * args.num_steps
    if args.mini_batch_size > batch:
        raise UsageError(
            f"--mini-batch-size {args.mini_batch_size} is larger than a rollout "
            f"(--num-envs x --num-steps = {batch}); lower it or collect more steps"
        )
    if args.device not in ("auto", "cpu") and not args.device.startswith("cuda"):
        raise UsageError(f"--device must be cpu, cuda or auto, got {args.device!r}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but no CUDA device is available; use --device cpu")
    if (args.render or args.capture_video) and not args.eval_only:
        raise UsageError("--render and --capture-video replay a checkpoint: use them with --eval-only PATH")
    if args.render and sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        raise UsageError("--render needs a display and none is set (DISPLAY); use --capture-video instead")


# --------------------------------------------------------------------------------------
# The spiking actor-critic
# --------------------------------------------------------------------------------------
class NonSpikingLIFNode(neuron.SimpleLIFNode):
    """A LIF neuron that charges but never fires or resets: its membrane potential is its output.

    With ``decay_input=True`` and ``v_reset=0`` one step is ``v <- v + (x - v) / tau``.
    """

    def __init__(self, tau: float = 2.0):
        super().__init__(tau=tau, decay_input=True, v_reset=0.0)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        self.neuronal_charge(x)
        return self.v


def lif_readout_weights(tau: float, T: int) -> torch.Tensor:
    """w[t] such that a NonSpikingLIFNode fed x[0..T-1] from rest ends at sum_t w[t] * x[t].

    Unrolling v_t = (1 - 1/tau) v_{t-1} + x_t / tau gives w[t] = (1/tau) (1 - 1/tau)^(T-1-t).
    """
    decay = 1.0 - 1.0 / tau
    return torch.tensor([decay ** (T - 1 - t) / tau for t in range(T)], dtype=torch.float64)


# The IF layer of the fast path. Under a constant input h an IF neuron (hard reset to 0) is a
# scalar recurrence; what the network needs of it is the LIF-weighted spike count
# sum_t w[t] spike[t] and, for the gradient, the surrogate's argument alpha * (v[t] - threshold)
# at each step. On the CPU two numba kernels run the time loop, vectorized across neurons (torch
# would pay its per-op overhead at each of the T steps); on other devices the same loop runs as
# torch ops. Both add potentials in the neuron's own order, so the spikes are bit-identical to
# those of SpikingJelly's IFNode.
SURROGATE_ARG_LIMIT = 36.0  # sigmoid'(36) < 1e-15: clamping there changes nothing that float32 shows
# but keeps denormal floats, which slow arithmetic down tenfold, out of the far-below-threshold tail.


# float32 throughout (f32 constants): a float64 literal would widen the loop and stop LLVM from
# vectorizing it.
f32 = np.float32


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


NUMBA_ON_CPU = True  # False runs the portable torch kernels on the CPU too (the tests check both)


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


class ActorCritic(nn.Module):
    """The tutorial's spiking actor-critic; its state dict maps one-to-one onto the original's."""

    def __init__(
        self, num_inputs: int, num_outputs: int, hidden_size: int, T: int = 16, std: float = 0.0, impl: str = "fast"
    ):
        super().__init__()
        self.critic = nn.Sequential(
            nn.Linear(num_inputs, hidden_size), neuron.IFNode(), nn.Linear(hidden_size, 1), NonSpikingLIFNode(tau=2.0)
        )
        self.actor = nn.Sequential(
            nn.Linear(num_inputs, hidden_size),
            neuron.IFNode(),
            nn.Linear(hidden_size, num_outputs),
            NonSpikingLIFNode(tau=2.0),
        )
        self.log_std = nn.Parameter(torch.ones(1, num_outputs) * std)
        self.T = T
        self.impl = impl
        self._check_fast_path_applies()
        w = lif_readout_weights(self.actor[3].tau, T)
        # Derived from T and tau, not learned: kept out of the state dict.
        self.register_buffer("readout_w", w.float(), persistent=False)
        self.readout_w_sum = float(w.sum())
        # A plain tuple is not registered as submodules: quick access for the fast path, without
        # nn.Sequential's indexing and without duplicate state-dict keys.
        self._layers = (self.critic[0], self.actor[0], self.critic[2], self.actor[2], self.actor[1])

    def _check_fast_path_applies(self):
        """The fast path assumes the tutorial's neurons: hard reset to 0, sigmoid surrogate, and the
        same neuron parameters in both branches (it runs their IF layers as one)."""
        actor_if, actor_readout = self.actor[1], self.actor[3]
        for if_node, readout in ((self.critic[1], self.critic[3]), (actor_if, actor_readout)):
            assert if_node.v_reset == 0.0 and isinstance(if_node.surrogate_function, surrogate.Sigmoid)
            assert if_node.v_threshold == actor_if.v_threshold
            assert if_node.surrogate_function.alpha == actor_if.surrogate_function.alpha
            assert readout.v_reset == 0.0 and readout.decay_input and readout.tau == actor_readout.tau

    def forward(self, x: torch.Tensor) -> tuple[Normal, torch.Tensor]:
        mu, value = self.forward_fast(x) if self.impl == "fast" else self.forward_reference(x)
        std = self.log_std.exp().expand_as(mu)
        return Normal(mu, std, validate_args=False), value

    def forward_reference(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The tutorial's network, step by step: every module is called T times."""
        for _ in range(self.T):
            self.critic(x)
            self.actor(x)
        value, mu = self.critic[-1].v, self.actor[-1].v
        functional.reset_net(self)
        return mu, value

    def forward_fast(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The same function and gradients as `forward_reference`, with the T loop done in closed form.

        The first Linear sees the same x at every step, so it runs once; both branches' IF layers
        run as one; the LIF readout after T steps is a fixed weighted sum of its inputs, so the
        second Linear runs once on weighted spike counts (its bias counted sum(w) times).
        """
        critic_in, actor_in, critic_out, actor_out, if_node = self._layers
        h = torch.cat((critic_in(x), actor_in(x)), dim=-1)
        counts = IFSpikeCount.apply(h, self.readout_w, if_node.v_threshold, if_node.surrogate_function.alpha)
        critic_counts, actor_counts = counts.split(critic_in.out_features, dim=-1)
        value = self._readout(critic_out, critic_counts)
        mu = self._readout(actor_out, actor_counts)
        return mu, value

    def firing_rates(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each branch's hidden IF layer on the batch x: the fraction of the T steps each neuron fires."""
        per_step = torch.full((self.T,), 1.0 / self.T, device=x.device)
        return {
            name: if_forward(branch[0](x), branch[1].v_threshold, branch[1].surrogate_function.alpha, per_step)[0]
            for name, branch in (("actor", self.actor), ("critic", self.critic))
        }

    def _readout(self, linear: nn.Linear, counts: torch.Tensor) -> torch.Tensor:
        """sum_t w[t] (W spike[t] + b) = W counts + sum(w) b, in one op."""
        return torch.addmm(linear.bias, counts, linear.weight.t(), beta=self.readout_w_sum)


# --------------------------------------------------------------------------------------
# Environments
# --------------------------------------------------------------------------------------
@dataclass
class EnvSpec:
    """What the agents need to know of an env: its sizes and how a policy sample becomes an action."""

    env_id: str
    obs_dim: int
    num_actions: int  # Discrete: one Gaussian component per action; Box: the action's size
    action_space: gym.Space

    def to_env_action(self, sample: torch.Tensor) -> np.ndarray:
        if isinstance(self.action_space, gym.spaces.Discrete):
            # The tutorial's rule: the index of the largest component of the Gaussian sample.
            return sample.argmax(dim=-1).cpu().numpy() + int(self.action_space.start)
        # The Gaussian is the policy itself; the env gets the sample clipped to its bounds, PPO
        # keeps the log-probability of the unclipped sample.
        return np.clip(sample.cpu().numpy(), self.action_space.low, self.action_space.high)


def env_spec(env_id: str) -> EnvSpec:
    """The spec of env_id, or a UsageError naming what the agents cannot handle."""
    try:
        env = gym.make(env_id)
    except gym.error.Error as e:
        raise UsageError(f"--env-id {env_id!r}: {e}") from None
    obs_space, act_space = env.observation_space, env.action_space
    env.close()
    if not (isinstance(obs_space, gym.spaces.Box) and len(obs_space.shape) == 1):
        raise UsageError(f"--env-id {env_id!r}: observation space {obs_space} is not a flat Box")
    if isinstance(act_space, gym.spaces.Discrete):
        return EnvSpec(env_id, obs_space.shape[0], int(act_space.n), act_space)
    if isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1:
        return EnvSpec(env_id, obs_space.shape[0], act_space.shape[0], act_space)
    raise UsageError(f"--env-id {env_id!r}: action space {act_space} is neither Discrete nor a flat Box")


def make_envs(env_fns: list[Callable[[], gym.Env]], vectorization: str = "sync") -> gym.vector.VectorEnv:
    """Vector envs with the tutorial's semantics: an env whose episode ends resets in the same step
    (the final observation is in info["final_obs"])."""
    vector_env = gym.vector.SyncVectorEnv if vectorization == "sync" else gym.vector.AsyncVectorEnv
    return vector_env(env_fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def new_envs(env_id: str, num_envs: int, vectorization: str = "sync", **make_kwargs) -> gym.vector.VectorEnv:
    return make_envs([functools.partial(gym.make, env_id, **make_kwargs)] * num_envs, vectorization)


def new_eval_envs(env_id: str, num_envs: int, vectorization: str = "sync") -> gym.vector.VectorEnv:
    """Envs for evaluation, where only each env's first episode counts, so the autoreset mode does not
    matter: the env's own array-vectorized version when it has one (CartPole does), as it is faster."""
    if gym.spec(env_id).vector_entry_point is not None:
        return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    return new_envs(env_id, num_envs, vectorization)


def time_limit_cuts(terminated: np.ndarray, truncated: np.ndarray, truncation_as_termination: bool) -> np.ndarray:
    """The envs whose episode a time limit ended without failure: these are bootstrapped, not cut.
    None are with `truncation_as_termination`: a time limit then ends the return, as in the tutorial."""
    return np.zeros_like(truncated) if truncation_as_termination else truncated & ~terminated


def episode_end_targets(
    rewards: np.ndarray, done: np.ndarray, cut_by_time: np.ndarray, final_values: np.ndarray, gamma: float
) -> tuple[np.ndarray, np.ndarray]:
    """The (reward, mask) pair that GAE sees for one step of every env.

    mask is 0 wherever an episode ended, since the next observation belongs to a new episode; an
    episode a time limit cut did not fail, so its reward is bootstrapped with gamma times the
    critic's value of its final observation.
    """
    return rewards + gamma * np.where(cut_by_time, final_values, 0.0), (~done).astype(np.float32)


# --------------------------------------------------------------------------------------
# PPO
# --------------------------------------------------------------------------------------
def compute_gae(next_value, rewards, masks, values, gamma: float = 0.99, lam: float = 0.95) -> torch.Tensor:
    """Generalized advantage estimation; returns the lambda-returns (advantage + value).

    All arguments are tensors with time as the first axis; masks[t] is 0 where the episode
    ended at step t, so neither the value nor the advantage of the next state leaks across it.
    """
    returns = torch.empty_like(rewards)
    gae = torch.zeros_like(next_value)
    for t in reversed(range(len(rewards))):
        delta = rewards[t] + gamma * next_value * masks[t] - values[t]
        gae = delta + gamma * lam * masks[t] * gae
        returns[t] = gae + values[t]
        next_value = values[t]
    return returns


def ppo_iter(mini_batch_size: int, *tensors: torch.Tensor, generator: torch.Generator | None = None):
    """Random disjoint mini-batches of the rows of `tensors`; the last partial batch is dropped."""
    batch_size = tensors[0].shape[0]
    used = batch_size // mini_batch_size * mini_batch_size
    ids = torch.randperm(batch_size, generator=generator, device=tensors[0].device)[:used]
    shuffled = [t[ids] for t in tensors]  # one gather per tensor; the mini-batches are views
    for start in range(0, used, mini_batch_size):
        yield tuple(t[start : start + mini_batch_size] for t in shuffled)


class Adam:
    """`torch.optim.Adam(params, lr, fused=True)`: the same fused kernel and state dict, without the wrapper.

    Every torch.optim optimizer imports torch._dynamo, torch's compiler, when it is created: 1.3 s
    of start-up on a 2-core machine, for a compiler this script never uses. This class calls the
    fused update torch.optim.Adam runs (the tests hold the two against each other, step by step),
    and its state dict loads into torch.optim.Adam and back.
    """

    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.exp_avgs = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in self.params]
        self.steps = [torch.zeros((), device=p.device) for p in self.params]  # float32, as fused Adam keeps it

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        i = [k for k, p in enumerate(self.params) if p.grad is not None]  # unused parameters stay put
        steps = [self.steps[k] for k in i]
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(
            [self.params[k] for k in i],
            [self.params[k].grad for k in i],
            [self.exp_avgs[k] for k in i],
            [self.exp_avg_sqs[k] for k in i],
            [],
            steps,
            lr=self.lr,
            beta1=self.betas[0],
            beta2=self.betas[1],
            weight_decay=0.0,
            eps=self.eps,
            amsgrad=False,
            maximize=False,
        )

    def state_dict(self) -> dict:
        group = {"lr": self.lr, "betas": self.betas, "eps": self.eps, "weight_decay": 0.0, "amsgrad": False}
        group |= {"maximize": False, "fused": True, "params": list(range(len(self.params)))}
        state = {
            k: {"step": step.clone(), "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
            for k, (step, m, v) in enumerate(zip(self.steps, self.exp_avgs, self.exp_avg_sqs, strict=True))
            if step > 0
        }
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict: dict) -> None:
        (group,) = state_dict["param_groups"]
        self.lr, self.betas, self.eps = group["lr"], tuple(group["betas"]), group["eps"]
        for k, s in state_dict["state"].items():
            self.steps[k].copy_(s["step"])
            self.exp_avgs[k].copy_(s["exp_avg"])
            self.exp_avg_sqs[k].copy_(s["exp_avg_sq"])


def ppo_update(
    model,
    optimizer,
    args: Args,
    states,
    actions,
    log_probs,
    returns,
    advantages,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """The tutorial's PPO update. Returns loss statistics averaged over the last epoch's mini-batches,
    whose ratio and KL measure how far the whole update moved the policy."""
    stats = torch.zeros(6, device=states.device)
    n = 0
    for epoch in range(args.ppo_epochs):
        for state, action, old_log_probs, return_, advantage in ppo_iter(
            args.mini_batch_size, states, actions, log_probs, returns, advantages, generator=generator
        ):
            dist, value = model(state)
            entropy = dist.entropy().mean()
            new_log_probs = dist.log_prob(action)

            log_ratio = new_log_probs - old_log_probs
            ratio = log_ratio.exp()
            surr1 = ratio * advantage
            surr2 = torch.clamp(ratio, 1.0 - args.clip_param, 1.0 + args.clip_param) * advantage

            actor_loss = -torch.min(surr1, surr2).mean()
            critic_loss = (return_ - value).pow(2).mean()
            loss = args.vf_coef * critic_loss + actor_loss - args.ent_coef * entropy

            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

            if epoch == args.ppo_epochs - 1:
                with torch.no_grad():
                    approx_kl = ((ratio - 1) - log_ratio).mean()  # http://joschu.net/blog/kl-approx.html
                    clip_frac = ((ratio - 1).abs() > args.clip_param).float().mean()
                    stats += torch.stack([loss, actor_loss, critic_loss, entropy, approx_kl, clip_frac])
                n += 1
    names = ("loss", "actor_loss", "critic_loss", "entropy", "approx_kl", "clip_frac")
    return dict(zip(names, (stats / n).tolist(), strict=True))


# --------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------
@torch.inference_mode()
def evaluate(
    model: nn.Module, envs: gym.vector.VectorEnv, spec: EnvSpec, seed: int, device: torch.device
) -> np.ndarray:
    """Returns of one episode in each of the envs, played together with the stochastic policy.

    The env resets and the action noise come from `seed` alone, so an evaluation depends only
    on the model and the seed, never on how much randomness training has used.
    """
    rng = torch.Generator(device=device).manual_seed(seed)
    obs, _ = envs.reset(seed=seed)
    returns = np.zeros(envs.num_envs)
    done = np.zeros(envs.num_envs, dtype=bool)
    while not done.all():
        dist, _ = model(torch.as_tensor(obs, dtype=torch.float32, device=device))
        sample = torch.normal(dist.loc, dist.scale, generator=rng)
        obs, reward, terminated, truncated, _ = envs.step(spec.to_env_action(sample))
        returns += np.where(done, 0.0, reward)
        done |= terminated | truncated
    return returns


def eval_seed(seed: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0])


# --------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------
class CheckpointError(Exception):
    """A checkpoint that cannot be used: reported in one line, exit status 2."""


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write atomically: a crash mid-write leaves the previous file, never a truncated one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_checkpoint(path: str | Path, agent_name: str) -> dict:
    """A checkpoint of this project's `agent_name` agent, or a CheckpointError saying what it is not."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__})") from None
    if not (isinstance(ckpt, dict) and {"agent", "model", "args"} <= ckpt.keys()):
        raise CheckpointError(f"{path}: not a checkpoint written by this project")
    if ckpt["agent"] != agent_name:
        raise CheckpointError(f"{path}: a {ckpt['agent']} checkpoint, not {agent_name}")
    return ckpt


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------
@dataclass
class Agent:
    """What differs between the spiking agent and its ANN twin; everything else is shared."""

    name: str  # TensorBoard tag prefix, e.g. "Spiking-PPO"
    script: str  # run directory component, e.g. "Spiking_PPO"
    args_cls: type[Args]
    build: Callable[[int, int, Args], nn.Module]  # (observation size, action count, args) -> model
    # Extra scalars for TensorBoard, computed on each rollout's observations after the update.
    diagnostics: Callable[[nn.Module, torch.Tensor], dict[str, float]] | None = None


def hyperparameters(args: Args) -> dict:
    return {k: v for k, v in dataclasses.asdict(args).items() if k not in ACTION_FLAGS}


def load_agent(path: str | Path, agent: Agent) -> tuple[nn.Module, dict]:
    """Rebuild the model saved in a checkpoint: `model, ckpt = load_agent("runs/.../best.pt", AGENT)`."""
    ckpt = read_checkpoint(path, agent.name)
    model = agent.build(ckpt["obs_dim"], ckpt["num_actions"], agent.args_cls(**ckpt["args"]))
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError:
        raise CheckpointError(f"{path}: its weights do not fit the network of its own arguments") from None
    return model, ckpt


def check_flags_match(path: str, ckpt: dict, args: Args, given: set[str], may_change: tuple[str, ...]) -> None:
    """Refuse flags given on the command line that contradict the run the checkpoint belongs to."""
    for name in sorted(given - set(ACTION_FLAGS) - set(may_change)):
        if getattr(args, name) != ckpt["args"][name]:
            raise CheckpointError(
                f"{path} was made with {cli_flag(name)} {ckpt['args'][name]}, not {getattr(args, name)}"
            )


def keep_freed_memory_for_reuse() -> None:
    """Ask glibc to keep freed memory in the process instead of returning it to the kernel.

    The spiking network's [T, batch, hidden] temporaries are about 1 MB at mini-batch 256. By
    default glibc gives blocks that size back to the kernel when freed, and the next mini-batch
    page-faults them in again, which costs more than the arithmetic done on them. A no-op where
    the C library is not glibc.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 * 2**20)  # serve blocks up to 32 MB from the heap...
    mallopt(m_trim_threshold, 512 * 2**20)  # ...and keep up to 512 MB of it free for reuse


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def create_run_dir(args: Args, agent: Agent) -> Path:
    """runs/<env-id>__<script>__<seed>__<unix-time>, made unique if another run took the name."""
    base = Path(args.runs_dir) / f"{args.env_id}__{agent.script}__{args.seed}__{int(time.time())}"
    for i in range(1000):
        path = base if i == 0 else base.with_name(f"{base.name}-{i}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a run directory next to {base}")


def hyperparameter_table(args: Args) -> str:
    rows = "\n".join(f"|{k}|{v}|" for k, v in hyperparameters(args).items())
    return "|param|value|\n|-|-|\n" + rows


class Rollout:
    """Preallocated storage for one rollout: time first, then env."""

    def __init__(self, num_steps: int, num_envs: int, obs_dim: int, num_actions: int, device: torch.device):
        self.states = torch.zeros(num_steps, num_envs, obs_dim, device=device)
        self.actions = torch.zeros(num_steps, num_envs, num_actions, device=device)
        self.log_probs = torch.zeros(num_steps, num_envs, num_actions, device=device)
        self.values = torch.zeros(num_steps, num_envs, 1, device=device)
        self.rewards = np.zeros((num_steps, num_envs, 1), dtype=np.float32)
        self.masks = np.zeros((num_steps, num_envs, 1), dtype=np.float32)


class TrainingDiverged(Exception):
    """A non-finite loss or parameter: reported in one line, exit status 1."""


class StopSignals:
    """Turns SIGINT and SIGTERM into a request to stop after the current step.

    Only the main thread can handle signals; elsewhere (a Ray Tune trial) they are left alone.
    """

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._request) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _request(self, signum, frame):
        self.signum = signum

    def restore(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _the_env(env: gym.Env) -> gym.Env:
    return env


def train(
    args: Args, agent: Agent, resume_from: dict | None = None, on_eval: Callable[[dict], None] | None = None
) -> dict:
    """Train `agent` as `args` say, or continue the run that `resume_from` (a last.pt) left.

    `on_eval`, if given, receives each evaluation: step, eval_mean, best, elapsed_seconds and the
    latest diagnostics (sweep.py reports them to Ray Tune).
    """
    spec = env_spec(args.env_id)
    device = resolve_device(args.device)
    # Each op here is too small to split across threads: more threads only add the cost of waking
    # them, for every op (measured in the README: all three agents train faster on one).
    torch.set_num_threads(args.threads)
    keep_freed_memory_for_reuse()
    seed_everything(args.seed)
    rng = torch.Generator(device=device).manual_seed(args.seed)
    model = agent.build(spec.obs_dim, spec.num_actions, args).to(device)
    optimizer = Adam(model.parameters(), lr=args.learning_rate)
    rollout = Rollout(args.num_steps, args.num_envs, spec.obs_dim, spec.num_actions, device)

    if resume_from is None:
        run_dir = create_run_dir(args, agent)
        envs = new_envs(args.env_id, args.num_envs, args.vectorization)
        obs, _ = envs.reset(seed=args.seed)
        step_idx, best, last_eval, updates, elapsed = 0, -math.inf, math.nan, 0, 0.0
    else:
        run_dir, ckpt = Path(args.resume), resume_from
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        rng.set_state(ckpt["rng"]["train"])
        random.setstate(ckpt["rng"]["python"])
        np.random.set_state(ckpt["rng"]["numpy"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        for name, value in ckpt["rollout"].items():
            getattr(rollout, name)[...] = value
        if ckpt["envs"] is not None:  # the envs themselves, mid-episode, as they were
            envs = make_envs([functools.partial(_the_env, env) for env in ckpt["envs"]], args.vectorization)
            obs = ckpt["obs"]
        else:  # async envs live in other processes and were not saved: start new episodes
            envs = new_envs(args.env_id, args.num_envs, args.vectorization)
            obs, _ = envs.reset(seed=eval_seed(args.seed, ckpt["step"]))
        step_idx, best, last_eval, updates = ckpt["step"], ckpt["best"], ckpt["eval_mean"], ckpt["updates"]
        elapsed = ckpt["elapsed_seconds"]  # training time before the interruption

    # On resume, TensorBoard drops what the interrupted run logged after its last.pt.
    writer = SummaryWriter(str(run_dir), purge_step=step_idx + 1 if resume_from else None)
    if resume_from is None:
        writer.add_text("hyperparameters", hyperparameter_table(args))
    eval_envs = new_eval_envs(args.env_id, args.eval_episodes, args.vectorization)
    reward_tag = f"{agent.name}-{args.env_id}/Reward"
    info = {"agent": agent.name, "env_id": args.env_id, "obs_dim": spec.obs_dim, "num_actions": spec.num_actions}

    def checkpoint() -> dict:
        """Everything a resumed run needs to go on exactly as this one would have."""
        return {
            **info,
            "args": hyperparameters(args),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step_idx,
            "updates": updates,
            "best": best,
            "eval_mean": last_eval,
            "elapsed_seconds": training_seconds(),
            "rng": {
                "train": rng.get_state(),
                "python": random.getstate(),
                "numpy": np.random.get_state(),
                "torch": torch.get_rng_state(),
            },
            "rollout": {name: getattr(rollout, name) for name in vars(rollout)},
            "envs": list(envs.envs) if isinstance(envs, gym.vector.SyncVectorEnv) else None,
            "obs": obs,
        }

    def training_seconds() -> float:  # across interruptions
        return elapsed + time.perf_counter() - start

    state = torch.as_tensor(obs, dtype=torch.float32, device=device)
    start, start_step, diagnostics, target_reached = time.perf_counter(), step_idx, {}, False
    stop = StopSignals()
    bar = tqdm(total=args.max_steps, initial=step_idx, unit="step", disable=args.quiet or None, dynamic_ncols=True)
    try:
        while step_idx < args.max_steps and stop.signum is None:
            with torch.inference_mode():
                for i in range(step_idx % args.num_steps, args.num_steps):
                    dist, value = model(state)
                    action = torch.normal(dist.loc, dist.scale, generator=rng)
                    rollout.states[i] = state
                    rollout.actions[i] = action
                    rollout.log_probs[i] = dist.log_prob(action)
                    rollout.values[i] = value
                    obs, reward, terminated, truncated, env_info = envs.step(spec.to_env_action(action))
                    cut_by_time = time_limit_cuts(terminated, truncated, args.truncation_as_termination)
                    final_values = final_observation_values(model, env_info, cut_by_time, device)
                    rollout.rewards[i, :, 0], rollout.masks[i, :, 0] = episode_end_targets(
                        reward, terminated | truncated, cut_by_time, final_values, args.gamma
                    )
                    state = torch.as_tensor(obs, dtype=torch.float32, device=device)
                    step_idx += 1
                    bar.update(1)

                    if step_idx % args.eval_interval == 0:
                        returns = evaluate(model, eval_envs, spec, eval_seed(args.seed, step_idx), device)
                        last_eval = float(returns.mean())
                        sps = (step_idx - start_step) / (time.perf_counter() - start)
                        writer.add_scalar(reward_tag, last_eval, step_idx)
                        writer.add_scalar("charts/elapsed_seconds", training_seconds(), step_idx)
                        improved, best = last_eval > best, max(best, last_eval)
                        snapshot = checkpoint()
                        if improved:
                            save_checkpoint(run_dir / "best.pt", snapshot)
                        save_checkpoint(run_dir / "last.pt", snapshot)
                        bar.set_postfix(eval=f"{last_eval:.1f}", best=f"{best:.1f}")
                        if on_eval is not None:
                            report = {"step": step_idx, "eval_mean": last_eval, "best": best}
                            on_eval(report | {"elapsed_seconds": training_seconds()} | diagnostics)
                        bar.write(
                            f"step {step_idx:>7} | eval return {last_eval:7.2f} ± {returns.std():6.2f} | "
                            f"best {best:7.2f} | {sps:6.0f} steps/s"
                        )
                        target_reached = args.stop_at_return is not None and last_eval >= args.stop_at_return
                    if target_reached or stop.signum is not None:
                        break
                if target_reached or stop.signum is not None:
                    break  # no update on a rollout cut short
                _, next_value = model(state)
                rewards = torch.from_numpy(rollout.rewards).to(device)
                masks = torch.from_numpy(rollout.masks).to(device)
                returns = compute_gae(next_value, rewards, masks, rollout.values, args.gamma, args.gae_lambda)

            advantages = returns - rollout.values
            stats = ppo_update(
                model,
                optimizer,
                args,
                rollout.states.flatten(0, 1),
                rollout.actions.flatten(0, 1),
                rollout.log_probs.flatten(0, 1),
                returns.flatten(0, 1),
                advantages.flatten(0, 1),
                generator=rng,
            )
            updates += 1
            if not (math.isfinite(stats["loss"]) and all(p.isfinite().all() for p in model.parameters())):
                raise TrainingDiverged(
                    f"non-finite loss or parameters in update {updates} (rollout step {step_idx}); "
                    f"stopped, {run_dir}/best.pt and last.pt are from before it"
                )
            diagnostics = log_update(writer, model, agent, args, stats, rollout, returns, step_idx, start_step, start)

        save_checkpoint(run_dir / "last.pt", checkpoint())
    finally:
        bar.close()
        stop.restore()
        writer.close()
        envs.close()
        eval_envs.close()
    seconds = time.perf_counter() - start
    return {"run_dir": str(run_dir), "best": best, "steps": step_idx, "seconds": seconds, "signal": stop.signum}


def final_observation_values(model, env_info: dict, cut_by_time: np.ndarray, device) -> np.ndarray:
    """The critic's value of the final observation of each episode a time limit ended (else 0)."""
    values = np.zeros(len(cut_by_time), dtype=np.float32)
    if cut_by_time.any():
        final_obs = np.stack(env_info["final_obs"][cut_by_time])
        _, value = model(torch.as_tensor(final_obs, dtype=torch.float32, device=device))
        values[cut_by_time] = value[:, 0].cpu().numpy()
    return values


def log_update(writer, model, agent: Agent, args: Args, stats: dict, rollout, returns, step, start_step, start):
    """Per-update scalars, grouped by section: losses/, charts/ and the agent's own (returned)."""
    for name, value in stats.items():
        writer.add_scalar(f"losses/{name}", value, step)
    values, targets = rollout.values.flatten(), returns.flatten()
    writer.add_scalar("losses/explained_variance", float(1 - (targets - values).var() / targets.var()), step)
    writer.add_scalar("charts/learning_rate", args.learning_rate, step)
    writer.add_scalar("charts/steps_per_second", (step - start_step) / (time.perf_counter() - start), step)
    if agent.diagnostics is None:
        return {}
    with torch.inference_mode():
        diagnostics = agent.diagnostics(model, rollout.states.flatten(0, 1))
    for name, value in diagnostics.items():
        writer.add_scalar(name, value, step)
    return diagnostics


def replay(args: Args, agent: Agent, given: set[str]) -> None:
    """--eval-only: play a checkpoint's agent and print the mean and std of its return."""
    model, ckpt = load_agent(args.eval_only, agent)
    check_flags_match(args.eval_only, ckpt, args, given, ("eval_episodes", "seed", "device", "vectorization"))
    spec, device = env_spec(ckpt["env_id"]), resolve_device(args.device)
    model.to(device).eval()
    seed = eval_seed(args.seed, 0)
    if args.render:
        with closing(new_envs(spec.env_id, 1, render_mode="human")) as envs:
            evaluate(model, envs, spec, seed, device)
    if args.capture_video:
        folder = Path(args.eval_only).parent / "videos"
        record = functools.partial(record_video, spec.env_id, folder, Path(args.eval_only).stem)
        with closing(make_envs([record])) as envs:
            evaluate(model, envs, spec, seed, device)
        print(f"video: {folder}")
    with closing(new_eval_envs(spec.env_id, args.eval_episodes, args.vectorization)) as envs:
        returns = evaluate(model, envs, spec, seed, device)
    print(
        f"{args.eval_only} (step {ckpt['step']}): {len(returns)} episodes of {spec.env_id}, "
        f"return {returns.mean():.2f} ± {returns.std():.2f} (mean ± std)"
    )


def record_video(env_id: str, folder: Path, name: str) -> gym.Env:
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # draw off-screen, without asking for a display
    env = gym.make(env_id, render_mode="rgb_array")
    return gym.wrappers.RecordVideo(env, str(folder), name_prefix=name, episode_trigger=lambda episode: episode == 0)


def main(agent: Agent, argv: list[str] | None = None) -> int:
    # The tutorial's env is CartPole-v0 on purpose; gymnasium's advice to move to v1 is noise here.
    warnings.filterwarnings("ignore", message=".*is out of date", category=DeprecationWarning)
    try:
        args = parse_args(agent.args_cls, argv)
        given = given_flags(agent.args_cls, argv)
        if args.eval_only:
            replay(args, agent, given)
            return 0
        resume_from = None
        if args.resume:
            resume_from = read_checkpoint(Path(args.resume) / "last.pt", agent.name)
            check_flags_match(args.resume, resume_from, args, given, RESUME_MAY_CHANGE)
            saved = {k: v for k, v in resume_from["args"].items() if k not in given}
            args = dataclasses.replace(args, **saved)
        summary = train(args, agent, resume_from)
    except (UsageError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if summary["signal"] is not None:
        name = signal.Signals(summary["signal"]).name
        print(
            f"stopped by {name} at step {summary['steps']}; saved {summary['run_dir']}/last.pt and the TensorBoard log"
        )
        return 128 + summary["signal"]
    print(
        f"done: {summary['steps']} steps in {summary['seconds']:.1f} s, best eval return {summary['best']:.2f}; "
        f"run directory {summary['run_dir']}"
    )
    return 0


def exit_now(status: int) -> NoReturn:
    """End the process with `status`, skipping the interpreter's teardown.

    With torch loaded, Python's shutdown takes 0.5 to 0.9 s on a 2-core machine (freeing torch's
    modules and C++ state). By the time `main` returns, everything the script writes (log,
    checkpoints, videos) is closed and its env processes are stopped, so the teardown has
    nothing left to do but cost time.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def build_spiking_agent(num_inputs: int, num_actions: int, args: SpikingArgs) -> ActorCritic:
    return ActorCritic(num_inputs, num_actions, args.hidden_size, T=args.T, impl=args.snn_impl)


def spiking_diagnostics(model: ActorCritic, states: torch.Tensor) -> dict[str, float]:
    """Mean firing rate of each hidden IF layer, and the fraction of its neurons silent on the whole batch."""
    scalars = {}
    for branch, rates in model.firing_rates(states).items():
        scalars[f"snn/firing_rate/{branch}"] = float(rates.mean())
        scalars[f"snn/never_firing_fraction/{branch}"] = float((rates.amax(dim=0) == 0).float().mean())
    return scalars


AGENT = Agent(
    name="Spiking-PPO",
    script="Spiking_PPO",
    args_cls=SpikingArgs,
    build=build_spiking_agent,
    diagnostics=spiking_diagnostics,
)

if __name__ == "__main__":
    exit_now(main(AGENT))
