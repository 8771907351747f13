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

This file is the algorithm, in the tutorial's order. The machinery around it (command line,
fast kernels, environments, checkpoints, how a training session starts and ends, the run's files
and signals) is the `machinery` package. ``PPO.py`` imports this file's training loop and swaps
in an ANN, so that the two agents differ in the network only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import numpy as np
import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, neuron
from torch.distributions import Normal

from machinery import commands, cost, envs, fast_if, presets, run, session, speed
from machinery.cli import flag
from machinery.run import Agent
from machinery.speed import Adam, clip_grad_norm_, exit_now
from machinery.stats import explained_variance


# ---- Hyperparameters: each field is a command-line flag (--env-id, --num-envs, ...); the defaults are the tutorial's.
# --preset replaces defaults with CleanRL's or ours (machinery/presets.py); flags given on the command line override it.
@dataclass
class Args:
    env_id: str = flag("CartPole-v0", "gymnasium env id (flat Box observation, Discrete or Box action)")
    num_envs: int = flag(4, "parallel training environments", "positive")
    vectorization: str = flag("sync", "run the envs in this process, or one process each", choices=("sync", "async"))
    seed: int = flag(1, "seed for python, numpy, torch and every environment", "seed")
    device: str = flag("cpu", "torch device: cpu (the fastest for these small networks), cuda, or auto")
    threads: int = flag(1, "torch CPU threads; the tutorial's tiny networks run fastest on one", "positive")
    compile: bool = flag(
        False, "torch.compile the mini-batch step and the policy step (the SNN's: one numba kernel); needs g++ or $CXX"
    )
    max_steps: int = flag(100_000, "rollout steps to train for (one step advances every env)", "positive")
    num_steps: int = flag(128, "rollout steps per env between two PPO updates", "positive")
    preset: str = flag(
        "tutorial",
        "defaults: the tutorial's, CleanRL's or ours (machinery/presets.py; flags given override it)",
        choices=presets.NAMES,
    )
    hidden_size: int = flag(32, "hidden units per layer in each branch (actor, critic)", "positive")
    hidden_layers: int = flag(1, "hidden layers in each branch (the tutorial has one)", "positive")
    ortho_init: bool = flag(False, "orthogonal weights (gain sqrt 2; actor output 0.01, critic output 1), zero biases")
    init_log_std: float = flag(0.0, "initial log std of the policy's Gaussian (tutorial, CleanRL: 0)", "finite")
    learning_rate: float = flag(1e-3, "Adam learning rate", "positive")
    anneal_lr: bool = flag(False, "decay the learning rate linearly to 0 over --max-steps")
    adam_eps: float = flag(1e-8, "Adam epsilon", "positive")
    mini_batch_size: int = flag(256, "samples per PPO mini-batch", "positive")
    ppo_epochs: int = flag(30, "passes over each rollout per update", "positive")
    target_kl: float | None = flag(None, "stop an update's epochs once the approximate KL exceeds this", "positive")
    clip_param: float = flag(0.2, "PPO clipping range of the probability ratio", "positive")
    joint_ratio: bool = flag(False, "one probability ratio per action (log-probs and entropies summed over its dims)")
    norm_adv: bool = flag(False, "normalize the advantages of each mini-batch to mean 0, std 1")
    clip_vloss: bool = flag(False, "clip the value change to --clip-param as the policy's, keep the larger loss")
    max_grad_norm: float | None = flag(None, "clip the global gradient norm to this", "positive")
    gamma: float = flag(0.99, "discount factor", "unit_interval")
    gae_lambda: float = flag(0.95, "GAE lambda (the tutorial's `tau`); 0 gives one-step TD advantages", "unit_interval")
    ent_coef: float = flag(0.001, "entropy bonus coefficient", "nonnegative")
    vf_coef: float = flag(0.5, "value loss coefficient (the loss is the plain mean squared error)", "nonnegative")
    norm_obs: bool = flag(False, "normalize observations by their running mean and variance (kept in checkpoints)")
    obs_clip: float = flag(10.0, "with --norm-obs: clip normalized observations to [-this, this]", "positive")
    norm_reward: bool = flag(False, "scale rewards by the running std of the discounted return")
    reward_clip: float = flag(10.0, "with --norm-reward: clip scaled rewards to [-this, this]", "positive")
    truncation_as_termination: bool = flag(False, "treat time limits as failures, as the tutorial did")
    eval_interval: int = flag(100, "rollout steps between two evaluations", "positive")
    eval_episodes: int = flag(10, "episodes per evaluation, played in parallel", "positive")
    cost_interval: int = flag(
        5000, "rollout steps between two measurements of the cost per decision (0: none)", "nonnegative"
    )
    stop_at_return: float | None = flag(None, "stop once the eval mean return reaches this", "finite")
    runs_dir: str = flag("runs", "parent directory of the run directories", metavar="DIR")
    quiet: bool = flag(False, "no progress bar (for logs and CI)")
    resume: str | None = flag(
        None,
        "continue the run in RUN_DIR from its last.pt (a finished one: with a larger --max-steps)",
        metavar="RUN_DIR",
    )
    eval_only: str | None = flag(
        None, "play --eval-episodes episodes of a checkpoint, print the return", metavar="CHECKPOINT"
    )
    render: bool = flag(False, "with --eval-only: show one episode on screen")
    mean_action: bool = flag(False, "with --eval-only: play the policy's mean action instead of a sample of it")
    capture_video: bool = flag(False, "with --eval-only: write an mp4 of one episode beside the checkpoint")
    report: str | None = flag(
        None, "with --eval-only: write returns and cost per decision as JSON", metavar="FILE.json"
    )

    # Flags that say what to do rather than how to train: not saved with the run, and, with those
    # after them, the only ones a resumed run may change.
    ACTION_FLAGS: ClassVar[tuple[str, ...]] = (
        "quiet", "resume", "eval_only", "render", "mean_action", "capture_video", "report"
    )  # fmt: skip
    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = ("max_steps", "stop_at_return", "device", "threads", "compile")


@dataclass
class SpikingArgs(Args):
    T: int = flag(16, "time steps the observation is presented to the SNN", "positive")
    readout_tau: float = flag(
        2.0, "time constant of the LIF readout, in steps: the tutorial's 2 weighs the last steps most", "time_constant"
    )
    soft_reset: bool = flag(False, "IF neurons subtract the threshold when they fire (tutorial: reset to 0)")
    snn_impl: str = flag(
        "fast", "fast (exact, closed form over T) or reference (step by step)", choices=("fast", "reference")
    )
    export_nir: str | None = flag(None, "write the checkpoint's actor as a NIR graph, <name>.nir", metavar="CHECKPOINT")

    ACTION_FLAGS: ClassVar[tuple[str, ...]] = (*Args.ACTION_FLAGS, "export_nir")


# ---- The spiking actor-critic ------------------------------------------------------------------
class NonSpikingLIFNode(neuron.SimpleLIFNode):
    """A LIF neuron that charges but never fires or resets: its membrane potential is its output.

    With ``decay_input=True`` and ``v_reset=0`` one step is ``v <- v + (x - v) / tau``.
    """

    def __init__(self, tau: float = 2.0):
        super().__init__(tau=tau, decay_input=True, v_reset=0.0)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        self.neuronal_charge(x)
        return self.v


class ActorCritic(nn.Module):
    """The tutorial's spiking actor-critic; its state dict maps one-to-one onto the original's."""

    def __init__(
        self, num_inputs: int, num_outputs: int, hidden_size: int, T: int = 16, std: float = 0.0, impl="fast",
        hidden_layers: int = 1, readout_tau: float = 2.0, soft_reset: bool = False,
    ):  # fmt: skip
        super().__init__()
        v_reset = None if soft_reset else 0.0  # SpikingJelly's soft reset: v <- v - threshold on a spike

        def branch(num_out: int) -> nn.Sequential:  # the tutorial's has one hidden layer: Linear, IF
            hidden = [nn.Linear(num_inputs, hidden_size), neuron.IFNode(v_reset=v_reset)]
            for _ in range(hidden_layers - 1):
                hidden += [nn.Linear(hidden_size, hidden_size), neuron.IFNode(v_reset=v_reset)]
            return nn.Sequential(*hidden, nn.Linear(hidden_size, num_out), NonSpikingLIFNode(tau=readout_tau))

        self.critic = branch(1)
        self.actor = branch(num_outputs)
        self.log_std = nn.Parameter(torch.ones(1, num_outputs) * std)
        self.T, self.impl = T, impl
        if impl == "fast":
            self.prepare_fast_path()

    def prepare_fast_path(self) -> None:
        """Check that the fast path computes this network, and keep what it needs."""
        fast_if.check_fast_path_applies(self, NonSpikingLIFNode)
        w = fast_if.lif_readout_weights(self.actor[-1].tau, self.T)
        self.register_buffer("readout_w", w.float(), persistent=False)  # derived from T and tau, not learned
        self.readout_w_sum = float(w.sum())
        # A (named) tuple is not registered as submodules: the fast path reaches its layers without
        # nn.Sequential's indexing (microseconds a call) and without duplicate state-dict keys.
        self._layers = fast_if.FastPathLayers(
            self.critic[0], self.actor[0], self.critic[-2], self.actor[-2], self.actor[1]
        )
        hidden = zip(self.critic[:-2:2], self.actor[:-2:2], strict=True)
        self._hidden = tuple(linear for pair in hidden for linear in pair)  # every hidden Linear, critic's first

    def forward(self, x: torch.Tensor) -> tuple[Normal, torch.Tensor]:
        mu, value = self.forward_fast(x) if self.impl == "fast" else self.forward_reference(x)
        std = self.log_std.exp().expand_as(mu)
        return Normal(mu, std, validate_args=False), value

    def forward_reference(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The tutorial's network, step by step: every module is called T times, then the network
        is reset (an SNN is stateful: the next call must not start from these potentials)."""
        for _ in range(self.T):
            self.critic(x)
            self.actor(x)
        value, mu = self.critic[-1].v, self.actor[-1].v
        functional.reset_net(self)
        return mu, value

    def forward_fast(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The same function and gradients as `forward_reference`, with the T loop in closed form
        (derived in machinery/fast_if.py). The LIF readout after T steps is a fixed weighted sum of
        its inputs, so the last Linear runs once, on the last hidden layer's weighted spike counts."""
        if_node, critic_out, actor_out = self._layers.if_node, self._layers.critic_out, self._layers.actor_out
        neurons = if_node.v_threshold, if_node.surrogate_function.alpha, if_node.v_reset is None
        if len(self._hidden) > 2:  # --hidden-layers 2 or more: layers that see spikes changing over T
            critic_counts, actor_counts = fast_if.deep_spike_counts(x, self._hidden, self.readout_w, self.T, neurons)
        else:
            critic_counts, actor_counts = self.spike_counts(x, neurons)
        # sum_t w[t] (W spike[t] + b) = W counts + sum(w) b, in one op
        value = torch.addmm(critic_out.bias, critic_counts, critic_out.weight.t(), beta=self.readout_w_sum)
        mu = torch.addmm(actor_out.bias, actor_counts, actor_out.weight.t(), beta=self.readout_w_sum)
        return mu, value

    def spike_counts(self, x: torch.Tensor, neurons: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        """The weighted spike counts sum_t w[t] spike[t] of the critic's and the actor's hidden layer
        (the tutorial's one): the first Linear sees the same x at every step, so it runs once, and
        both branches' IF neurons run as one, in closed form."""
        critic_in, actor_in = self._layers.critic_in, self._layers.actor_in
        counts = fast_if.if_spike_count(torch.cat((critic_in(x), actor_in(x)), dim=-1), self.readout_w, *neurons)
        return counts.split(critic_in.out_features, dim=-1)


# ---- PPO ---------------------------------------------------------------------------------------
def compute_gae(next_value, rewards, masks, values, gamma: float = 0.99, lam: float = 0.95) -> torch.Tensor:
    """Generalized advantage estimation; returns the lambda-returns (advantage + value).

    All arguments are tensors with time as the first axis; masks[t] is 0 where the episode
    ended at step t, so neither the value nor the advantage of the next state leaks across it.
    """
    next_values = torch.cat((values[1:], next_value[None]))
    deltas = rewards + gamma * next_values * masks - values  # the TD errors, every step at once
    decays = gamma * lam * masks
    # The recursion itself runs over numpy rows: a torch op on rows this small costs microseconds,
    # a numpy one a fraction of that, in the same arithmetic (19 of a HalfCheetah-v5 environment
    # step's 480 us at the cleanrl preset, compiled, went here; docs/results.md, "GAE's recursion").
    deltas, decays = deltas.cpu().numpy(), decays.cpu().numpy()
    advantages, gae = np.empty_like(deltas), np.zeros_like(deltas[0])
    for t in reversed(range(len(deltas))):
        gae = deltas[t] + decays[t] * gae
        advantages[t] = gae
    return torch.from_numpy(advantages).to(values.device) + values


def ppo_iter(mini_batch_size: int, *tensors: torch.Tensor, generator: torch.Generator | None = None):
    """Random disjoint mini-batches of the rows of `tensors`; the last partial batch is dropped."""
    batch_size = tensors[0].shape[0]
    used = batch_size // mini_batch_size * mini_batch_size
    ids = torch.randperm(batch_size, generator=generator, device=tensors[0].device)[:used]
    shuffled = [t[ids] for t in tensors]  # one gather per tensor; the mini-batches are views
    for start in range(0, used, mini_batch_size):
        yield tuple(t[start : start + mini_batch_size] for t in shuffled)


def ppo_loss(model, args: Args, state, action, old_log_probs, return_, advantage, old_value):
    """The loss of one mini-batch (clipped surrogate, value error, entropy bonus), and the terms
    its statistics come from: actor loss, critic loss, entropy, probability ratio and its log."""
    dist, value = model(state)
    entropy = dist.entropy()  # before log_prob, as the tutorial: autograd sums their gradients in this order
    new_log_probs = dist.log_prob(action)
    if args.joint_ratio:  # the action's probability is the product of its dimensions'
        new_log_probs, old_log_probs = new_log_probs.sum(-1, keepdim=True), old_log_probs.sum(-1, keepdim=True)
        entropy = entropy.sum(-1)
    entropy = entropy.mean()
    if args.norm_adv:
        advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)

    log_ratio = new_log_probs - old_log_probs
    ratio = log_ratio.exp()
    surr1 = ratio * advantage
    surr2 = torch.clamp(ratio, 1.0 - args.clip_param, 1.0 + args.clip_param) * advantage

    actor_loss = -torch.min(surr1, surr2).mean()
    critic_loss = value_loss(value, old_value, return_, args)
    loss = args.vf_coef * critic_loss + actor_loss - args.ent_coef * entropy
    return loss, (actor_loss, critic_loss, entropy, ratio, log_ratio)


def gradient_step(model, optimizer, args: Args, *mini_batch):
    """One step of the optimizer on one mini-batch's loss; returns the loss and its terms."""
    loss, terms = ppo_loss(model, args, *mini_batch)
    optimizer.zero_grad()
    loss.backward()
    if args.max_grad_norm is not None:
        clip_grad_norm_(optimizer.params, args.max_grad_norm)
    optimizer.step()
    return loss, terms


def ppo_update(
    model, optimizer, args: Args, states, actions, log_probs, returns, advantages, values, generator=None,
    step_fn=gradient_step,
) -> dict[str, float]:  # fmt: skip
    """The tutorial's PPO update, with the standard details its flags turn on (all off by default).
    Returns loss statistics averaged over the last epoch's mini-batches, whose ratio and KL measure
    how far the whole update moved the policy. `step_fn` is `gradient_step` or its compiled equivalent."""
    for epoch in range(args.ppo_epochs):
        last_epoch = epoch == args.ppo_epochs - 1
        stats, n = torch.zeros(6, device=states.device), 0
        for mini_batch in ppo_iter(
            args.mini_batch_size, states, actions, log_probs, returns, advantages, values, generator=generator
        ):
            loss, terms = step_fn(model, optimizer, args, *mini_batch)
            if last_epoch or args.target_kl is not None:
                batch_stats = loss_statistics(loss, *terms, args.clip_param)
                stats += batch_stats
                n += 1
        if args.target_kl is not None and batch_stats[4] > args.target_kl:  # the last mini-batch's KL, as CleanRL
            break
    names = ("loss", "actor_loss", "critic_loss", "entropy", "approx_kl", "clip_frac")
    return dict(zip(names, (stats / n).tolist(), strict=True)) | {"epochs": epoch + 1}


@torch.no_grad()
def loss_statistics(loss, actor_loss, critic_loss, entropy, ratio, log_ratio, clip_param: float) -> torch.Tensor:
    """One mini-batch's loss, actor loss, critic loss, entropy, approximate KL and clip fraction."""
    approx_kl = ((ratio - 1) - log_ratio).mean()  # http://joschu.net/blog/kl-approx.html
    clip_frac = ((ratio - 1).abs() > clip_param).float().mean()
    return torch.stack([loss, actor_loss, critic_loss, entropy, approx_kl, clip_frac])


def value_loss(value, old_value, return_, args: Args) -> torch.Tensor:
    """Mean squared error of the critic; with --clip-vloss, the larger of it and the error of the
    value moved at most --clip-param from the rollout's (PPO's clipping, applied to the critic)."""
    loss = (return_ - value).pow(2)
    if args.clip_vloss:
        clipped = old_value + torch.clamp(value - old_value, -args.clip_param, args.clip_param)
        loss = torch.max(loss, (return_ - clipped).pow(2))
    return loss.mean()


def annealed_learning_rate(args: Args, updates_done: int) -> float:
    """The learning rate for the next update: with --anneal-lr, linear from the full rate at the first
    update to 0 after the last one (the one that reaches --max-steps), as CleanRL anneals it."""
    if not args.anneal_lr:
        return args.learning_rate
    total_updates = run.last_step(args) // args.num_steps
    return args.learning_rate * max(0.0, 1.0 - updates_done / total_updates)


def orthogonal_init(model: nn.Module) -> None:
    """--ortho-init: orthogonal weights with gain sqrt(2) in the hidden layers, 0.01 at the actor's
    output (the first actions' means are near 0) and 1 at the critic's; biases 0 (Huang et al. 2022)."""
    for branch, output_gain in ((model.actor, 0.01), (model.critic, 1.0)):
        linears = [m for m in branch if isinstance(m, nn.Linear)]
        for layer in linears:
            nn.init.orthogonal_(layer.weight, output_gain if layer is linears[-1] else math.sqrt(2))
            nn.init.zeros_(layer.bias)


# ---- Evaluation --------------------------------------------------------------------------------
@torch.inference_mode()
def evaluate(
    model: nn.Module, eval_envs, spec: envs.EnvSpec, seed: int, device, visited=None, mean_action: bool = False
) -> np.ndarray:
    """Returns of one episode in each of the envs, played together with the stochastic policy (or,
    with `mean_action`, its mean: --eval-only --mean-action).

    The env resets and the action noise come from `seed` alone, so an evaluation depends only
    on the model and the seed, never on how much randomness training has used. `visited`, a list
    if given, receives the observations the policy decided on (what its cost is measured on).
    """
    rng = torch.Generator(device=device).manual_seed(seed)
    obs, _ = eval_envs.reset(seed=seed)
    returns, done = np.zeros(eval_envs.num_envs), np.zeros(eval_envs.num_envs, dtype=bool)
    while not done.all():
        state = torch.as_tensor(obs, dtype=torch.float32, device=device)
        if visited is not None:
            visited.append(state[torch.from_numpy(~done).to(device)])
        dist, _ = model(state)
        action = dist.loc if mean_action else torch.normal(dist.loc, dist.scale, generator=rng)
        obs, reward, terminated, truncated, _ = eval_envs.step(spec.to_env_action(action))
        returns += np.where(done, 0.0, reward)
        done |= terminated | truncated
    return returns


# ---- Training ----------------------------------------------------------------------------------
class Rollout:
    """Preallocated storage for one rollout (the tutorial's lists): time first, then env."""

    def __init__(self, num_steps: int, num_envs: int, obs_dim: int, num_actions: int, device: torch.device):
        self.states = torch.zeros(num_steps, num_envs, obs_dim, device=device)
        self.actions = torch.zeros(num_steps, num_envs, num_actions, device=device)
        self.log_probs = torch.zeros(num_steps, num_envs, num_actions, device=device)
        self.values = torch.zeros(num_steps, num_envs, 1, device=device)
        self.rewards = np.zeros((num_steps, num_envs, 1), dtype=np.float32)
        self.masks = np.zeros((num_steps, num_envs, 1), dtype=np.float32)


def act(model: nn.Module, obs: torch.Tensor, noise: torch.Tensor):
    """The policy's decision in each env: its Gaussian's mean plus std times `noise` (standard
    normal draws: torch.normal's own arithmetic), the action's log-probability, and the value."""
    dist, value = model(obs)
    action = dist.loc + dist.scale * noise
    return action, dist.log_prob(action), value


def collect_rollout(t: session.Training, act_fn=act) -> bool:
    """Step every env until the rollout is full (True), or until the run must stop (False): on a
    signal, or when an evaluation reaches the target. `act_fn` is `act` or a compiled copy of it."""
    args, rollout, device = t.args, t.rollout, t.obs.device

    def value_of(final_obs: np.ndarray) -> np.ndarray:  # for the episodes a time limit cut
        return t.model(torch.as_tensor(final_obs, dtype=torch.float32, device=device))[1][:, 0].cpu().numpy()

    with torch.inference_mode():
        for i in range(t.step % args.num_steps, args.num_steps):
            noise = torch.randn(args.num_envs, t.spec.num_actions, generator=t.rng, device=device)
            action, rollout.log_probs[i], rollout.values[i] = act_fn(t.model, t.obs, noise)
            rollout.states[i], rollout.actions[i] = t.obs, action
            obs, reward, terminated, truncated, info = t.envs.step(t.spec.to_env_action(action))
            rollout.rewards[i, :, 0], rollout.masks[i, :, 0] = envs.step_targets(
                value_of, reward, terminated, truncated, info, args.gamma, args.truncation_as_termination
            )
            t.obs = torch.as_tensor(obs, dtype=torch.float32, device=device)
            t.step += 1
            t.log_finished_episodes(info)
            t.run.bar.update(1)
            if t.step % args.eval_interval == 0 and evaluate_log_checkpoint(t):
                return False
            if t.run.stopping:
                return False
    return True


def evaluate_log_checkpoint(t: session.Training) -> bool:
    """Evaluate the policy, log the return, write best.pt and last.pt; True if it reached the target."""
    seed, visited = run.eval_seed(t.args.seed, t.step), [] if cost.due(t.step, t.args) else None
    if t.args.norm_obs:  # evaluation normalizes observations with the statistics training has so far
        envs.use_obs_statistics(t.eval_envs, envs.obs_statistics(t.envs))
    with t.run.abandonable():  # a signal ends an evaluation at once; last.pt stays the previous one
        returns = evaluate(t.model, t.eval_envs, t.spec, seed, t.obs.device, visited)
        if visited:
            t.run.log(cost.actor_scalars(t.model, torch.cat(visited), seed), t.step)
    t.eval_mean = float(returns.mean())
    improved, t.best = t.eval_mean > t.best, max(t.best, t.eval_mean)
    t.run.evaluated(t.step, f"{t.agent.name}-{t.args.env_id}/Reward", returns, t.best)
    t.save(improved)
    t.report_evaluation()
    return t.args.stop_at_return is not None and t.eval_mean >= t.args.stop_at_return


def update(t: session.Training, step_fn=gradient_step) -> dict[str, float]:
    """GAE over the full rollout, then the PPO update (its mini-batch step `gradient_step` or its
    compiled equivalent); returns the scalars TensorBoard shows for it."""
    args, r = t.args, t.rollout
    with torch.inference_mode():
        _, next_value = t.model(t.obs)
        rewards, masks = (torch.from_numpy(a).to(t.obs.device) for a in (r.rewards, r.masks))
        returns = compute_gae(next_value, rewards, masks, r.values, args.gamma, args.gae_lambda)
    advantages = returns - r.values
    batch = (r.states, r.actions, r.log_probs, returns, advantages, r.values)
    t.optimizer.lr = annealed_learning_rate(args, t.updates)
    stats = ppo_update(t.model, t.optimizer, args, *(x.flatten(0, 1) for x in batch), generator=t.rng, step_fn=step_fn)
    t.updates += 1
    t.check_finite(stats["loss"])  # a diverged run stops here, its last.pt from before the update
    scalars = {f"losses/{name}": value for name, value in stats.items()}
    scalars["losses/explained_variance"] = explained_variance(r.values.flatten(), returns.flatten())
    scalars["charts/learning_rate"] = t.optimizer.lr
    if t.agent.diagnostics is not None:
        with torch.inference_mode():
            scalars |= t.agent.diagnostics(t.model, r.states.flatten(0, 1))
    return scalars


def train(args: Args, agent: Agent, resume_from: dict | None = None, on_eval: Callable[[dict], None] | None = None):
    """Train `agent` as `args` say (`presets.resolve` makes them from a command line, with --preset
    applied), or continue the run that `resume_from` (a last.pt) left; returns how it ended
    (machinery/session.py). `on_eval`, if given, receives each evaluation: step, eval_mean, best,
    elapsed_seconds and the latest diagnostics (sweep.py reports them to Ray Tune).
    """
    spec, device = session.prepare(args)  # checks the machine can run it, seeds python, numpy and torch
    model = agent.build(spec.obs_dim, spec.num_actions, args).to(device)
    if args.ortho_init:
        orthogonal_init(model)
    optimizer = Adam(model.parameters(), lr=args.learning_rate, eps=args.adam_eps)
    rollout = Rollout(args.num_steps, args.num_envs, spec.obs_dim, spec.num_actions, device)
    # the loop's two hottest functions, as they are or, with --compile, fused by torch.compile
    act_fn, step_fn = speed.hot_path(act, gradient_step, ppo_loss, model, optimizer, args, spec)
    # The envs, the run directory and its signals; a resumed run's state is put back here.
    with session.training(args, agent, spec, model, optimizer, rollout, resume_from, on_eval) as t:
        while t.step < args.max_steps and not t.run.stopping and collect_rollout(t, act_fn):
            with t.run.abandonable():  # a signal ends an update at once; last.pt stays the previous one
                t.diagnostics = update(t, step_fn)
            t.run.log(t.diagnostics | {"charts/steps_per_second": t.run.steps_per_second(t.step)}, t.step)
    return t.summary()


def main(agent: Agent, argv: list[str] | None = None) -> int:
    """The command line: train, resume (--resume), replay (--eval-only) or export (--export-nir)."""
    return commands.main(agent, argv, train, evaluate)


# ---- The spiking agent -------------------------------------------------------------------------
def build_spiking_agent(num_inputs: int, num_actions: int, args: SpikingArgs) -> ActorCritic:
    return ActorCritic(
        num_inputs, num_actions, args.hidden_size, args.T, std=args.init_log_std, impl=args.snn_impl,
        hidden_layers=args.hidden_layers, readout_tau=args.readout_tau, soft_reset=args.soft_reset,
    )  # fmt: skip


AGENT = Agent(
    "Spiking-PPO", "Spiking_PPO", SpikingArgs, build_spiking_agent, __doc__.split("\n\n")[0],
    diagnostics=partial(cost.firing_rates, readout_cls=NonSpikingLIFNode),  # TensorBoard's snn/ scalars
)  # fmt: skip

if __name__ == "__main__":
    exit_now(main(AGENT))
